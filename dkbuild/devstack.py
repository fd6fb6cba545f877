"""The local development stack (`dkb dev`): a Docker Compose project as plain data.

Redpanda (Kafka API), MinIO (S3), Marquez (OpenLineage API + web UI) and the Postgres that Marquez
needs. `compose_model` is a pure function of the settings; `up`/`down`/`status` drive it through
python-on-whales, imported lazily so that nothing else pays for it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dkbuild.config_model import DevSettings

COMPOSE_DIR = Path(".dkb") / "dev"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"

# Pinned: a stack that changes under you is not a reproducible dev environment.
IMAGES: dict[str, str] = {
    "redpanda": "docker.redpanda.com/redpandadata/redpanda:v24.2.7",
    "minio": "quay.io/minio/minio:RELEASE.2024-10-13T13-34-11Z",
    "postgres": "postgres:14.13",
    "marquez": "marquezproject/marquez:0.50.0",
    "marquez-web": "marquezproject/marquez-web:0.50.0",
}
SERVICES = tuple(IMAGES)




class DevStackError(Exception):
    """Docker (or its compose plugin) is missing or unusable; `hint` says what to do."""

    def __init__(self, message: str, hint: str = "", exit_code: int = 2):
        super().__init__(message)
        self.hint = hint
        self.exit_code = exit_code


def dev_settings(workspace: Any) -> DevSettings:
    """`[dev]` of the workspace config (validated with the rest of workspace.toml)."""
    return workspace.config.dev


def project_name(workspace_name: str) -> str:
    """`dkb-<workspace name>`, folded to what Compose accepts ([a-z0-9_-], starting alphanumeric)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", workspace_name.lower()).strip("-_") or "workspace"
    return f"dkb-{slug}"


def compose_model(name: str, settings: DevSettings | None = None) -> dict[str, Any]:
    """The Compose project as a dict (dumped to YAML). `name` is the Compose project name."""
    s = settings or DevSettings()
    image = {**IMAGES, **s.images}
    b = f"{s.bind_address}:" if s.bind_address else ""
    pg = {"POSTGRES_USER": "marquez", "POSTGRES_PASSWORD": "marquez", "POSTGRES_DB": "marquez"}
    return {
        "name": name,
        "services": {
            "redpanda": {
                "image": image["redpanda"],
                "command": [
                    "redpanda", "start", "--mode", "dev-container", "--smp", "1", "--overprovisioned",
                    "--kafka-addr", "internal://0.0.0.0:29092,external://0.0.0.0:9092",
                    "--advertise-kafka-addr", f"internal://redpanda:29092,external://localhost:{s.kafka_port}",
                ],
                "ports": [f"{b}{s.kafka_port}:9092"],
                "volumes": ["redpanda-data:/var/lib/redpanda/data"],
                "healthcheck": _health(["CMD-SHELL", "rpk cluster health | grep -E 'Healthy:.+true' || exit 1"]),
            },
            "minio": {
                "image": image["minio"],
                "command": ["server", "/data", "--console-address", ":9001"],
                "environment": {"MINIO_ROOT_USER": s.minio_user, "MINIO_ROOT_PASSWORD": s.minio_password},
                "ports": [f"{b}{s.minio_port}:9000", f"{b}{s.minio_console_port}:9001"],
                "volumes": ["minio-data:/data"],
                "healthcheck": _health(["CMD", "mc", "ready", "local"]),
            },
            "postgres": {
                "image": image["postgres"],
                "environment": pg,
                "ports": [f"{b}{s.postgres_port}:5432"],
                "volumes": ["postgres-data:/var/lib/postgresql/data"],
                "healthcheck": _health(["CMD-SHELL", "pg_isready -U marquez -d marquez"]),
            },
            "marquez": {
                "image": image["marquez"],
                "environment": {
                    "MARQUEZ_PORT": "5000", "MARQUEZ_ADMIN_PORT": "5001", "SEARCH_ENABLED": "false",
                    "POSTGRES_HOST": "postgres", "POSTGRES_PORT": "5432", **pg,
                },
                "ports": [f"{b}{s.marquez_port}:5000", f"{b}{s.marquez_admin_port}:5001"],
                "depends_on": {"postgres": {"condition": "service_healthy"}},
                "healthcheck": _health(["CMD-SHELL", "curl -fsS http://localhost:5001/healthcheck || exit 1"],
                                       start_period="30s"),
            },
            "marquez-web": {
                "image": image["marquez-web"],
                "environment": {"MARQUEZ_HOST": "marquez", "MARQUEZ_PORT": "5000", "WEB_PORT": "3000"},
                "ports": [f"{b}{s.marquez_web_port}:3000"],
                "depends_on": {"marquez": {"condition": "service_healthy"}},
                "healthcheck": _health(["CMD-SHELL", "wget -qO- http://localhost:3000/ >/dev/null || exit 1"]),
            },
        },
        "volumes": {"redpanda-data": {}, "minio-data": {}, "postgres-data": {}},
    }


def _health(test: list[str], start_period: str = "10s") -> dict[str, Any]:
    return {"test": test, "interval": "5s", "timeout": "5s", "retries": 30, "start_period": start_period}


def compose_yaml(model: dict[str, Any]) -> str:
    import yaml

    header = "# Generated by `dkb dev`; edit [dev] in workspace.toml instead.\n"
    return header + yaml.safe_dump(model, sort_keys=False, default_flow_style=False)


def endpoints(settings: DevSettings) -> dict[str, str]:
    return {
        "lineage": f"http://localhost:{settings.marquez_port}",
        "marquez_web": f"http://localhost:{settings.marquez_web_port}",
        "kafka": f"localhost:{settings.kafka_port}",
        "s3": f"http://localhost:{settings.minio_port}",
        "minio_console": f"http://localhost:{settings.minio_console_port}",
        "postgres": f"postgresql://marquez:marquez@localhost:{settings.postgres_port}/marquez",
    }


# --- driving Docker -----------------------------------------------------------------------------

@dataclass
class DevStack:
    """One workspace's stack: where its compose file lives and what it is called."""
    root: Path
    name: str
    settings: DevSettings = field(default_factory=DevSettings)

    @classmethod
    def of(cls, workspace: Any, settings: DevSettings | None = None) -> DevStack:
        return cls(Path(workspace.root), project_name(workspace.name), settings or dev_settings(workspace))

    @property
    def compose_file(self) -> Path:
        return self.root / COMPOSE_FILE

    def model(self) -> dict[str, Any]:
        return compose_model(self.name, self.settings)

    def write(self) -> Path:
        """Write the compose file (only when it changed, so its mtime means something)."""
        text = compose_yaml(self.model())
        path = self.compose_file
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        return path


def docker_client(stack: DevStack, *, check_compose: bool = True) -> Any:
    """A python-on-whales DockerClient for the stack, or DevStackError saying what to install."""
    try:
        from python_on_whales import DockerClient
    except ImportError:  # pragma: no cover - it is a declared dependency
        raise DevStackError("python-on-whales is not installed",
                            "pip install python-on-whales (it comes with dkbuild)") from None
    if shutil.which("docker") is None:
        raise DevStackError(
            "the `docker` command was not found; `dkb dev` runs the local stack with Docker Compose",
            "install Docker Engine with the Compose plugin (https://docs.docker.com/engine/install/) "
            "or Docker Desktop, and make sure `docker compose version` works")
    client = DockerClient(compose_files=[str(stack.compose_file)], compose_project_name=stack.name)
    if check_compose and not client.compose.is_installed():
        raise DevStackError(
            "Docker Compose v2 is not installed (`docker compose version` fails)",
            "install the Compose plugin: apt-get install docker-compose-plugin, or see "
            "https://docs.docker.com/compose/install/")
    return client


def _docker_failure(exc: Exception, doing: str) -> DevStackError:
    parts = [getattr(exc, attr, None) for attr in ("stderr", "stdout")]
    text = " ".join(p.decode(errors="replace") if isinstance(p, bytes) else str(p) for p in parts if p) or str(exc)
    if "Cannot connect to the Docker daemon" in text or "docker daemon" in text.lower() \
            or "permission denied" in text.lower():
        return DevStackError(f"cannot reach the Docker daemon while {doing}",
                             "start Docker (systemctl start docker, or open Docker Desktop) and check "
                             "that your user may use it (`docker info`)")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return DevStackError(f"docker compose failed while {doing}: {lines[-1] if lines else exc}",
                         "see `docker compose logs` for the failing service", exit_code=1)


def _guard(doing: str, call: Callable[[], Any]) -> Any:
    try:
        from python_on_whales.exceptions import DockerException
    except ImportError:  # pragma: no cover
        DockerException = RuntimeError  # type: ignore[misc,assignment]
    try:
        return call()
    except DockerException as exc:
        raise _docker_failure(exc, doing) from None


def up(stack: DevStack) -> Path:
    """Write the compose file and start the stack, waiting until every healthcheck passes."""
    path = stack.write()
    client = docker_client(stack)
    _guard("starting the stack", lambda: client.compose.up(detach=True, wait=True))
    return path


def down(stack: DevStack, volumes: bool = False) -> None:
    stack.write()
    client = docker_client(stack)
    _guard("stopping the stack", lambda: client.compose.down(volumes=volumes))


@dataclass(frozen=True)
class ServiceState:
    service: str
    container: str | None
    state: str            # running, exited, ..., or "absent" when no container exists
    health: str | None    # healthy, unhealthy, starting, or None when there is no healthcheck

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "container": self.container, "state": self.state, "health": self.health}


def status(stack: DevStack) -> list[ServiceState]:
    """Each service of the model, in order, with its container's state and health."""
    stack.write()
    client = docker_client(stack)
    containers = _guard("reading the stack's status", lambda: client.compose.ps(all=True))
    by_service: dict[str, ServiceState] = {}
    for container in containers or []:
        service = _service_of(container)
        state = getattr(container, "state", None)
        health = getattr(state, "health", None)
        by_service[service] = ServiceState(service, getattr(container, "name", None),
                                           str(getattr(state, "status", None) or "unknown"),
                                           getattr(health, "status", None) if health else None)
    return [by_service.pop(name, ServiceState(name, None, "absent", None)) for name in stack.model()["services"]] \
        + list(by_service.values())


def _service_of(container: Any) -> str:
    labels = getattr(getattr(container, "config", None), "labels", None) or {}
    return labels.get("com.docker.compose.service") or str(getattr(container, "name", "?"))


def is_up(states: list[ServiceState]) -> bool:
    return bool(states) and all(s.state == "running" and s.health in (None, "healthy") for s in states
                                if s.service in SERVICES)


def dev_endpoints(workspace: Any) -> dict[str, str] | None:
    """The stack's endpoints (`["lineage"]` is the Marquez URL for OpenLineage) when its Marquez is
    running and healthy, else None. Never raises: callers use it only to pick defaults. Cheap when
    `dkb dev up` was never run here (no compose file, no docker call)."""
    try:
        stack = DevStack.of(workspace)
        if not stack.compose_file.is_file():
            return None
        states = {s.service: s for s in status(stack)}
    except Exception:  # noqa: BLE001 - no Docker, no daemon, bad [dev]: there is no dev stack
        return None
    marquez = states.get("marquez")
    if marquez is None or marquez.state != "running" or marquez.health not in (None, "healthy"):
        return None
    return endpoints(stack.settings)
