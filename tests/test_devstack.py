"""`dkb dev`: the Compose model, and how it drives python-on-whales.

No Docker daemon (nor the Compose plugin) exists on this machine, so the stack is never really
started here. The Compose model is tested as data; the up/down/status tests replace
`python_on_whales.DockerClient` with a recording fake and check the exact calls dkb makes. Whether
these images really become healthy with these healthchecks is NOT verified by this suite. The
missing-Docker tests do run the real `dkb` with no `docker` on PATH.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from dkbuild import devstack
from dkbuild.cli.main import cli
from dkbuild.devstack import (
    DevSettings,
    DevStack,
    compose_model,
    dev_endpoints,
    project_name,
)

# --- the model -----------------------------------------------------------------------------------

def test_services_images_are_pinned() -> None:
    model = compose_model("dkb-acme")
    assert model["name"] == "dkb-acme"
    assert set(model["services"]) == {"redpanda", "minio", "postgres", "marquez", "marquez-web"}
    for name, service in model["services"].items():
        image = service["image"]
        tag = image.rsplit(":", 1)[-1]
        assert ":" in image and tag not in ("latest", "") and "@" not in tag, (name, image)
        assert any(ch.isdigit() for ch in tag), (name, image)


def test_default_ports_are_the_faq_ones_on_localhost() -> None:
    services = compose_model("p")["services"]
    assert services["redpanda"]["ports"] == ["127.0.0.1:9092:9092"]
    assert services["minio"]["ports"] == ["127.0.0.1:9000:9000", "127.0.0.1:9001:9001"]
    assert "127.0.0.1:5000:5000" in services["marquez"]["ports"]
    assert services["marquez-web"]["ports"] == ["127.0.0.1:3000:3000"]
    assert services["postgres"]["ports"] == ["127.0.0.1:5432:5432"]


def test_ports_and_images_come_from_settings() -> None:
    settings = DevSettings(kafka_port=19092, minio_port=19000, minio_console_port=19001, marquez_port=15000,
                           marquez_web_port=13000, postgres_port=15432, bind_address="",
                           images={"postgres": "postgres:16.4"})
    services = compose_model("p", settings)["services"]
    assert services["redpanda"]["ports"] == ["19092:9092"]
    # Kafka clients on the host must be told the host port, not the container's.
    assert "external://localhost:19092" in " ".join(services["redpanda"]["command"])
    assert services["minio"]["ports"] == ["19000:9000", "19001:9001"]
    assert "15000:5000" in services["marquez"]["ports"]
    assert services["marquez-web"]["ports"] == ["13000:3000"]
    assert services["postgres"]["ports"] == ["15432:5432"]
    assert services["postgres"]["image"] == "postgres:16.4"


def test_healthchecks_dependencies_and_volumes() -> None:
    model = compose_model("p")
    for name, service in model["services"].items():
        check = service["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and check["retries"] > 0, name
    assert model["services"]["marquez"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert model["services"]["marquez-web"]["depends_on"] == {"marquez": {"condition": "service_healthy"}}
    assert set(model["volumes"]) == {"redpanda-data", "minio-data", "postgres-data"}
    mounted = {v.split(":")[0] for s in model["services"].values() for v in s.get("volumes", [])}
    assert mounted == set(model["volumes"])
    pg = model["services"]["postgres"]["environment"]
    mq = model["services"]["marquez"]["environment"]
    assert (mq["POSTGRES_HOST"], mq["POSTGRES_DB"], mq["POSTGRES_USER"]) == ("postgres", pg["POSTGRES_DB"],
                                                                            pg["POSTGRES_USER"])


def test_project_name() -> None:
    assert project_name("acme-data") == "dkb-acme-data"
    assert project_name("Acme Data!") == "dkb-acme-data"
    assert project_name("") == "dkb-workspace"


def test_compose_file_is_written_under_dkb_dev(tmp_path: Path) -> None:
    stack = DevStack(tmp_path, "dkb-x")
    path = stack.write()
    assert path == tmp_path / ".dkb" / "dev" / "compose.yaml"
    assert yaml.safe_load(path.read_text()) == compose_model("dkb-x")


def test_dev_settings_come_from_workspace_toml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dkbuild.diagnostics import DkbError
    from dkbuild.workspace import load_workspace

    (tmp_path / "workspace.toml").write_text("[dev]\nmarquez_port = 5555\n")
    assert devstack.dev_settings(load_workspace(tmp_path)).marquez_port == 5555
    (tmp_path / "workspace.toml").write_text("[dev]\nkafka_prot = 1\n")
    with pytest.raises(DkbError) as err:
        load_workspace(tmp_path)
    assert "kafka_port" in err.value.diagnostics[0].hint


# --- driving Docker through a recording fake -----------------------------------------------------

def _container(service: str, status: str = "running", health: str | None = "healthy") -> Any:
    return SimpleNamespace(name=f"dkb-ws-{service}-1",
                           state=SimpleNamespace(status=status,
                                                 health=SimpleNamespace(status=health) if health else None),
                           config=SimpleNamespace(labels={"com.docker.compose.service": service}))


class FakeCompose:
    def __init__(self, log: list[Any], containers: list[Any], installed: bool = True, fail: Exception | None = None):
        self.log, self.containers, self.installed, self.fail = log, containers, installed, fail

    def is_installed(self) -> bool:
        return self.installed

    def _call(self, name: str, **kwargs: Any) -> Any:
        self.log.append((name, kwargs))
        if self.fail is not None:
            raise self.fail

    def up(self, **kwargs: Any) -> None:
        self._call("up", **kwargs)

    def down(self, **kwargs: Any) -> None:
        self._call("down", **kwargs)

    def ps(self, **kwargs: Any) -> list[Any]:
        self._call("ps", **kwargs)
        return self.containers


@pytest.fixture
def fake_docker(monkeypatch: pytest.MonkeyPatch) -> Any:
    import python_on_whales

    state = SimpleNamespace(clients=[], calls=[], containers=[], installed=True, fail=None)

    class FakeDockerClient:
        def __init__(self, **kwargs: Any):
            state.clients.append(kwargs)
            self.compose = FakeCompose(state.calls, state.containers, state.installed, state.fail)

    monkeypatch.setattr(python_on_whales, "DockerClient", FakeDockerClient)
    monkeypatch.setattr(devstack.shutil, "which", lambda name: "/usr/bin/docker" if name == "docker" else None)
    return state


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "workspace.toml").write_text('[workspace]\nname = "acme-data"\n')
    return tmp_path


def _invoke(ws: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["-C", str(ws), "dev", *args])


def test_up_writes_compose_file_and_waits(ws: Path, fake_docker: Any) -> None:
    result = _invoke(ws, "up")
    assert result.exit_code == 0, result.output
    compose_file = ws / ".dkb" / "dev" / "compose.yaml"
    assert fake_docker.clients == [{"compose_files": [str(compose_file)], "compose_project_name": "dkb-acme-data"}]
    assert fake_docker.calls == [("up", {"detach": True, "wait": True})]
    assert yaml.safe_load(compose_file.read_text())["name"] == "dkb-acme-data"
    assert "http://localhost:5000" in result.output


@pytest.mark.parametrize("args, volumes", [(["down"], False), (["down", "--volumes"], True)])
def test_down(ws: Path, fake_docker: Any, args: list[str], volumes: bool) -> None:
    result = _invoke(ws, *args)
    assert result.exit_code == 0, result.output
    assert fake_docker.calls == [("down", {"volumes": volumes})]


def test_status_json_reports_each_service(ws: Path, fake_docker: Any) -> None:
    fake_docker.containers[:] = [_container(s) for s in ("redpanda", "minio", "postgres", "marquez")] + [
        _container("marquez-web", "running", "starting")]
    result = _invoke(ws, "status", "--output", "json")
    assert fake_docker.calls == [("ps", {"all": True})]
    doc = json.loads(result.output)
    assert result.exit_code == 1        # marquez-web is still starting
    assert doc["project"] == "dkb-acme-data" and doc["up"] is False
    assert {s["service"]: (s["state"], s["health"]) for s in doc["services"]} == {
        "redpanda": ("running", "healthy"), "minio": ("running", "healthy"), "postgres": ("running", "healthy"),
        "marquez": ("running", "healthy"), "marquez-web": ("running", "starting")}


def test_status_text_when_up_and_when_absent(ws: Path, fake_docker: Any) -> None:
    fake_docker.containers[:] = [_container(s) for s in devstack.SERVICES]
    result = _invoke(ws, "status")
    assert result.exit_code == 0, result.output
    assert "marquez-web" in result.output and "healthy" in result.output and "http://localhost:5000" in result.output
    fake_docker.containers.clear()
    result = _invoke(ws, "status")
    assert result.exit_code == 1 and "absent" in result.output and "dkb dev up" in result.output


def test_ports_from_dev_section(ws: Path, fake_docker: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devstack, "dev_settings", lambda workspace: DevSettings(marquez_port=5999))
    fake_docker.containers[:] = [_container(s) for s in devstack.SERVICES]
    result = _invoke(ws, "status", "-o", "json")
    assert json.loads(result.output)["endpoints"]["lineage"] == "http://localhost:5999"


def test_dev_endpoints(ws: Path, fake_docker: Any) -> None:
    from dkbuild.workspace import load_workspace

    workspace = load_workspace(ws)
    assert dev_endpoints(workspace) is None          # never started here: no compose file, no docker call
    assert fake_docker.calls == []
    DevStack.of(workspace).write()
    assert dev_endpoints(workspace) is None          # nothing running
    fake_docker.containers[:] = [_container(s) for s in devstack.SERVICES]
    assert dev_endpoints(workspace)["lineage"] == "http://localhost:5000"
    fake_docker.fail = RuntimeError("boom")          # anything going wrong means "no stack"
    assert dev_endpoints(workspace) is None


def test_compose_plugin_missing_is_a_clear_error(ws: Path, fake_docker: Any) -> None:
    fake_docker.installed = False
    result = _invoke(ws, "up")
    assert result.exit_code == 2
    assert "Compose" in result.output and "install" in result.output
    assert fake_docker.calls == []


def test_daemon_unreachable_is_a_clear_error(ws: Path, fake_docker: Any) -> None:
    from python_on_whales.exceptions import DockerException

    fake_docker.fail = DockerException(["docker", "compose", "up"], 1, b"",
                                       b"Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
    result = _invoke(ws, "up")
    assert result.exit_code == 2
    assert "cannot reach the Docker daemon" in result.output and "start Docker" in result.output


def test_unhealthy_stack_fails_with_exit_1(ws: Path, fake_docker: Any) -> None:
    from python_on_whales.exceptions import DockerException

    fake_docker.fail = DockerException(["docker", "compose", "up"], 1, b"",
                                       b"dependency failed to start: container dkb-acme-data-postgres-1 is unhealthy")
    result = _invoke(ws, "up")
    assert result.exit_code == 1 and "unhealthy" in result.output


@pytest.mark.parametrize("args", [["up"], ["down", "--volumes"], ["status"]])
def test_missing_docker_says_what_to_install(ws: Path, dkb: Any, tmp_path: Path, args: list[str]) -> None:
    """The real CLI with no `docker` anywhere on PATH."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = dkb("-C", str(ws), "dev", *args, env={"PATH": str(empty)})
    assert result.code == 2, result
    assert "docker" in result.err and "install Docker" in result.err
    assert "Traceback" not in result.err
