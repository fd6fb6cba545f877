"""Run one Transform package and wrap it in OpenLineage runtime events.

START before the process starts, RUNNING heartbeats while it runs, then COMPLETE (exit 0) or FAIL
(non-zero exit, timeout, or failure to start) with an `errorMessage`. All events of one run share one
UUIDv7 run id. Sending goes through an Emitter, which never raises: a lineage backend that is down
never fails the run; its warnings are surfaced in the result.

Local mode runs generic-python packages only, as a subprocess in the package directory with
`PYTHONPATH=<pkg>/src`. Container mode runs any image through python-on-whales (Docker).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dkbuild.lineage.storeenv import StoreEnvError, mask, resolve_store_env

LOCAL_RUNTIMES = ("generic-python",)
DEFAULT_TIMEOUT_S = 30 * 60.0   # dk's local runner default (its --timeout flag)
EXIT_TIMEOUT = 124              # as coreutils `timeout`
EXIT_NOT_STARTED = 127          # as a shell's "command not found"


class RunError(Exception):
    """The run could not be prepared (bad target, unsupported runtime, unset secret, no Docker)."""


@dataclass
class RunResult:
    run_id: str
    exit_code: int
    events: list[dict[str, Any]]
    command: list[str]
    warnings: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)   # the variables dkb adds, safe to print
    cwd: str = ""
    image: str | None = None
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "exit_code": self.exit_code, "dry_run": self.dry_run,
                "command": self.command, "cwd": self.cwd, "image": self.image, "env": self.env,
                "events": self.events, "warnings": self.warnings}


@dataclass(frozen=True)
class RunPlan:
    transform_id: str
    package_dir: Path
    command: list[str]
    env: dict[str, str]           # variables dkb adds (spec.env, store env, PYTHONPATH)
    display_env: dict[str, str]   # the same with secrets masked
    timeout: float | None
    warnings: list[str]


def plan_run(loaded: Any, transform_id: str, *, container: bool = False, timeout: float | None = None,
             extra_env: Mapping[str, str] | None = None, extra_args: list[str] | None = None,
             placeholders: bool = False) -> RunPlan:
    graph = loaded.graph
    node = graph.nodes.get(transform_id)
    if node is None or node.kind != "Transform":
        what = "not a target" if node is None else f"a {node.kind}"
        raise RunError(f"{transform_id} is {what}; `dkb run` runs Transforms (a package's dk.yaml)")
    spec = node.manifest.model.spec
    runtime = spec.runtime
    if not container and runtime not in LOCAL_RUNTIMES:
        need = {"dbt": " (it needs dbt and dk-profiles)", "cloudquery": " (it needs the CloudQuery CLI and plugins)"}
        raise RunError(f"{transform_id} has runtime {runtime or '(none)'}{need.get(runtime, '')}; only "
                       f"{', '.join(LOCAL_RUNTIMES)} runs locally. Use --container to run its image.")
    package_dir = loaded.workspace.root / node.package
    warnings: list[str] = []

    environ = {**os.environ, **(extra_env or {})}
    try:
        stores = resolve_store_env(graph, transform_id, environ, placeholders=placeholders)
    except StoreEnvError as exc:
        raise RunError(str(exc)) from None
    if stores.unresolved:
        warnings.append("unset secret variable(s) left as placeholders: " + ", ".join(stores.unresolved))

    env: dict[str, str] = {}
    for var in spec.env:
        if var.value is not None and var.name:
            env[var.name] = var.value if isinstance(var.value, str) else str(var.value)
        elif var.name:
            warnings.append(f"env {var.name}: valueFrom is only resolved in a cluster; not set locally")
    env.update(stores.env)
    if not container:
        src = str(package_dir / "src")
        env["PYTHONPATH"] = src + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")
    env.update(extra_env or {})

    command = list(spec.command) if spec.command else ([] if container else _default_command(package_dir))
    if not container and command and command[0] in ("python", "python3"):
        command[0] = sys.executable      # the interpreter (and venv) dkb itself runs under
    command += list(extra_args or ())

    if timeout is None:
        timeout = _spec_timeout(spec.timeout, transform_id)
    secret_names = set(stores.env) | set(extra_env or {})
    display = {k: (mask(v, stores.secret_values) if k in stores.env else ("***" if k in secret_names else v))
               for k, v in env.items()}
    return RunPlan(transform_id, package_dir, command, env, display, timeout, warnings)


def _default_command(package_dir: Path) -> list[str]:
    """`python -m <pkg>` for the single package under src/ (`<pkg>.main` without a __main__), else
    `python main.py`."""
    src = package_dir / "src"
    packages = sorted(p for p in src.iterdir() if (p / "__init__.py").is_file() or (p / "__main__.py").is_file()) \
        if src.is_dir() else []
    if len(packages) == 1:
        pkg = packages[0]
        if (pkg / "__main__.py").is_file():
            return [sys.executable, "-m", pkg.name]
        if (pkg / "main.py").is_file():
            return [sys.executable, "-m", f"{pkg.name}.main"]
    if (package_dir / "main.py").is_file():
        return [sys.executable, "main.py"]
    found = ", ".join(p.name for p in packages) or "none"
    raise RunError(f"{package_dir}: cannot tell what to run (packages under src/: {found}); set spec.command "
                   "in dk.yaml, e.g. [python, -m, mypkg.main]")


def _spec_timeout(value: Any, transform_id: str) -> float:
    from dkbuild.governance.values import parse_duration

    if value is None or value == "":
        return DEFAULT_TIMEOUT_S
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    seconds = parse_duration(str(value))
    if seconds is None:
        raise RunError(f"{transform_id}: spec.timeout {value!r} is not a duration like 30m or 1h30m")
    return seconds


def run_package(loaded: Any, transform_id: str, *, dry_run: bool = False, container: bool = False,
                emitter: Any = None, heartbeat_seconds: float = 30, timeout: float | None = None,
                extra_env: Mapping[str, str] | None = None, extra_args: list[str] | None = None,
                stdout: Any = None) -> RunResult:
    """Run the Transform `transform_id` (a graph node id) and return what happened.

    Raises RunError when the run cannot be prepared; once START is sent, every outcome is a result
    (FAIL with exit code 124 on timeout, 127 when the process cannot start). `stdout` redirects the
    local process's standard output (e.g. to stderr when dkb prints JSON)."""
    from dkbuild.lineage.events import new_run_id, run_event

    plan = plan_run(loaded, transform_id, container=container, timeout=timeout, extra_env=extra_env,
                    extra_args=extra_args, placeholders=dry_run)
    graph, workspace = loaded.graph, loaded.workspace
    run_id = new_run_id()
    image = _image_of(loaded, transform_id) if container else None
    warnings = list(plan.warnings)
    result = RunResult(run_id, 0, [], plan.command, warnings, plan.display_env, str(plan.package_dir), image, dry_run)

    def event(kind: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        return run_event(kind, graph, transform_id, run_id, workspace, error=error)

    if dry_run:
        result.events = [event("START"), event("COMPLETE")]
        return result
    if emitter is None:
        raise RunError("run_package needs an emitter (see dkbuild.lineage.transport.make_emitter)")
    if container:
        check_docker()

    lock = threading.Lock()

    def send(ev: dict[str, Any]) -> None:
        with lock:
            result.events.append(ev)
            emitter.emit(ev)

    send(event("START"))
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(stop, heartbeat_seconds, lambda: send(event("RUNNING"))),
                            name=f"dkb-heartbeat-{run_id}", daemon=True)
    beat.start()
    try:
        if container:
            assert image is not None
            code, message = _run_container(image, plan)
        else:
            code, message = _run_local(plan, stdout)
    finally:
        stop.set()
        beat.join()
    result.exit_code = code
    send(event("COMPLETE") if code == 0 else event("FAIL", {"message": message, "exit_code": code}))
    warnings.extend(w for w in getattr(emitter, "warnings", []) if w not in warnings)
    return result


def _heartbeat(stop: threading.Event, seconds: float, beat: Any) -> None:
    if seconds is None or seconds <= 0:
        return
    while not stop.wait(seconds):
        beat()


def _run_local(plan: RunPlan, stdout: Any = None) -> tuple[int, str]:
    env = {**os.environ, **plan.env}
    try:
        proc = subprocess.Popen(plan.command, cwd=plan.package_dir, env=env, stdout=stdout,
                                start_new_session=True)
    except OSError as exc:
        return EXIT_NOT_STARTED, f"could not start {plan.command[0]!r}: {exc.strerror or exc}"
    try:
        code = proc.wait(timeout=plan.timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        return EXIT_TIMEOUT, f"timed out after {plan.timeout:g}s (spec.timeout); the process was killed"
    except BaseException:      # Ctrl-C: do not leave the job running
        _kill(proc)
        raise
    if code == 0:
        return 0, ""
    if code < 0:
        return 128 - code, f"killed by signal {-code}"
    return code, f"process exited with code {code}"


def _kill(proc: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _image_of(loaded: Any, transform_id: str) -> str:
    """spec.image (with ${VAR} expanded from the environment), else the local image name dk builds
    (`dk/<name>:<version>`, contract §3.5)."""
    model = loaded.graph.nodes[transform_id].manifest.model
    if model.spec.image:
        return os.path.expandvars(model.spec.image)
    return f"dk/{model.metadata.name}:{model.metadata.version or 'latest'}"


def check_docker() -> None:
    if shutil.which("docker") is None:
        raise RunError("--container needs Docker, but no `docker` CLI is on PATH; install Docker or run "
                       "without --container (local mode runs generic-python)")
    try:
        from python_on_whales import docker
        from python_on_whales.exceptions import DockerException
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise RunError(f"--container needs python-on-whales: {exc}") from None
    try:
        docker.info()
    except DockerException as exc:
        raise RunError(f"--container needs a running Docker daemon, which is not reachable: "
                       f"{_why(exc)}") from None


def _run_container(image: str, plan: RunPlan) -> tuple[int, str]:
    from python_on_whales import docker
    from python_on_whales.exceptions import DockerException

    try:
        docker.run(image, plan.command, envs=plan.env, remove=True)
    except DockerException as exc:
        code = getattr(exc, "return_code", 1) or 1
        return code, f"container {image} failed with code {code}: {_why(exc)}"
    return 0, ""


def _why(exc: BaseException) -> str:
    """The useful line of a python-on-whales error: the CLI's stderr, not the command echo."""
    text = getattr(exc, "stderr", None) or str(exc)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
