"""Run one Transform package and wrap it in OpenLineage runtime events.

START before the process starts, RUNNING heartbeats while it runs, then COMPLETE (exit 0) or FAIL
(non-zero exit, timeout, or failure to start) with an `errorMessage`. All events of one run share one
UUIDv7 run id. Sending goes through an Emitter, which never raises: a lineage backend that is down
never fails the run; its warnings are surfaced in the result.

Each runtime (dkbuild.lineage.runtimes) says how to run its packages: locally when its toolchain
is on PATH, else in the package's image through Docker or Podman (dkbuild.lineage.container). The
steps of a run (e.g. `go build`, then the binary) share one deadline; a timeout kills the whole
process group. Store secrets resolve from the environment, then the dev profile (dkbuild.devprofile).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dkbuild.lineage.container import Engine, NoEngine, find_engine, run_argv, stop
from dkbuild.lineage.runtimes import RUNTIMES, runtime_named
from dkbuild.lineage.runtimes.base import RunContext, RuntimeError_, Step, find_tools
from dkbuild.lineage.storeenv import StoreEnvError, mask, resolve_store_env

DEFAULT_TIMEOUT_S = 30 * 60.0   # dk's --timeout default
EXIT_TIMEOUT = 124              # as coreutils `timeout`
EXIT_NOT_STARTED = 127          # as a shell's "command not found"
ENGINE_EXIT_CODES = (125, 126, 127)   # docker/podman run: the engine, not the program, failed
RUN_DIR = Path(".dkb") / "run"  # per-package scratch: Go binaries, dbt profiles, CloudQuery specs


class RunError(Exception):
    """The run could not be prepared (bad target, unknown runtime, unset secret, nothing to run it with)."""


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
    mode: str = "local"
    runtime: str = ""
    timeout: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "exit_code": self.exit_code, "dry_run": self.dry_run,
                "runtime": self.runtime, "mode": self.mode, "timeout_seconds": self.timeout,
                "command": self.command, "cwd": self.cwd,
                "image": self.image, "env": self.env, "events": self.events, "warnings": self.warnings}


@dataclass(frozen=True)
class RunPlan:
    transform_id: str
    package_dir: Path
    command: list[str]            # the program's own command line (the last step), for display
    env: dict[str, str]           # variables dkb adds (spec.env, store env, dev-profile secrets, -e)
    display_env: dict[str, str]   # the same with secrets masked
    timeout: float | None
    warnings: list[str]
    runtime: str = ""
    mode: str = "local"           # local | container
    steps: tuple[Step, ...] = ()
    image: str | None = None
    engine: Engine | None = None
    container_name: str = ""
    context: RunContext | None = None
    secret_values: tuple[str, ...] = ()


def plan_run(loaded: Any, transform_id: str, *, container: bool = False, timeout: float | None = None,
             extra_env: Mapping[str, str] | None = None, extra_args: list[str] | None = None,
             placeholders: bool = False, values_files: list[Path] | None = None, sets: list[str] | None = None,
             cell: str | None = None, kube_context: str | None = None) -> RunPlan:
    """Everything about a run that can be wrong, found before anything is sent or written.

    Local when the runtime's toolchain is found and `container` is off; else the package's image
    through Docker or Podman; else RunError naming what to install."""
    graph = loaded.graph
    node = graph.nodes.get(transform_id)
    if node is None or node.kind != "Transform":
        what = "not a target" if node is None else f"a {node.kind}"
        raise RunError(f"{transform_id} is {what}; `dkb run` runs Transforms (a package's dk.yaml)")
    model = _effective_model(node, values_files or [], sets or [])
    spec = model.spec
    runtime = runtime_named(spec.runtime)
    if runtime is None:
        raise RunError(f"{transform_id} has runtime {spec.runtime or '(none)'}; `dkb run` runs "
                       f"{', '.join(RUNTIMES)}")
    root = loaded.workspace.root
    package_dir = root / node.package
    warnings: list[str] = []
    datasets = _datasets(spec) if (values_files or sets) else None

    environ = {**os.environ, **(extra_env or {})}
    profile = _dev_profile(root, warnings)
    replacements: Mapping[str, Any] = profile.stores
    if cell:
        replacements = _cell_stores(graph, transform_id, datasets, cell, kube_context)
    try:
        stores = resolve_store_env(graph, transform_id, environ, placeholders=placeholders, profile=profile.secrets,
                                   replacements=replacements, datasets=datasets,
                                   replaced_by=f"cell {cell}" if cell else "dev profile")
    except StoreEnvError as exc:
        raise RunError(str(exc)) from None
    if stores.unresolved:
        warnings.append("unset secret variable(s) left as placeholders: " + ", ".join(stores.unresolved))
    for store in stores.stores:
        if store.origin != "workspace":
            warnings.append(f'store "{store.name}" is {store.type} from the {store.origin} for this run')

    env: dict[str, str] = {}
    for var in spec.env:
        if var.value is not None and var.name:
            env[var.name] = var.value if isinstance(var.value, str) else str(var.value)
        elif var.name:
            warnings.append(f"env {var.name}: valueFrom is only resolved in a cluster; not set locally")
    env.update(stores.env)
    env.update(stores.profile_env)      # a tool's own config may refer to the variable (dbt env_var)
    env.update(extra_env or {})

    ctx = RunContext(transform_id, model.metadata.name, package_dir, root, spec, env, stores.stores,
                     _models(graph, spec.outputs), _models(graph, spec.inputs),
                     root / RUN_DIR / node.package, graph, list(extra_args or ()))
    if timeout is None or timeout == 0:
        spec_timeout = _spec_timeout(spec.timeout, transform_id)
        timeout = spec_timeout if spec_timeout is not None else (None if timeout == 0 else DEFAULT_TIMEOUT_S)
    secret_names = set(stores.env) | set(stores.profile_env) | set(extra_env or {})
    secret_values = tuple(stores.secret_values) + tuple(stores.profile_env.values())
    display = {k: (mask(v, secret_values) if k in stores.env else ("***" if k in secret_names else v))
               for k, v in env.items()}
    common = dict(transform_id=transform_id, package_dir=package_dir, env=env, display_env=display,
                  timeout=timeout, warnings=warnings, runtime=runtime.name, context=ctx,
                  secret_values=secret_values)

    tools, missing = find_tools(runtime)
    try:
        if not container and not missing:
            steps = runtime.local_steps(ctx, tools)
            return RunPlan(command=steps[-1].argv, steps=tuple(steps), **common)
        engine, why = _engine()
        if engine is None and (not container or not placeholders):
            raise RunError(_cannot_run(transform_id, runtime, missing, container, why))
        image = getattr(runtime, "image", None) or _image_of(model)
        command = runtime.container_command(ctx)
        if not container:
            warnings.append(f"{', '.join(missing)} not on PATH: running {transform_id} in its image {image}"
                            + (f" with {engine.name}" if engine else ""))
        name = f"dkb-{model.metadata.name}-{os.getpid()}"
        mounts = {package_dir: "/app/package"}
        if ctx.files:
            mounts[ctx.work_dir] = "/dkb-run"
        argv = run_argv(engine or Engine("docker", "docker"), image, name, sorted(env), mounts, command)
        return RunPlan(command=argv, mode="container", image=image, engine=engine, container_name=name,
                       steps=(Step(argv, package_dir, what=f"{engine.name if engine else 'docker'} run"),), **common)
    except RuntimeError_ as exc:
        raise RunError(str(exc)) from None


def _engine() -> tuple[Engine | None, str]:
    try:
        return find_engine(), ""
    except NoEngine as exc:
        return None, str(exc)


def _cannot_run(transform_id: str, runtime: Any, missing: list[str], container: bool, why: str) -> str:
    engines = "Docker (with its daemon running) or Podman"
    if container:
        return f"--container needs {engines} to run {transform_id}'s image, and none is usable: {why}"
    return (f"{transform_id} (runtime {runtime.name}) cannot run here: {', '.join(missing)} is not on PATH, and "
            f"its image cannot run either ({why}). Install {runtime.install}; or {engines} to run its image")


def _effective_model(node: Any, files: list[Path], sets: list[str]) -> Any:
    """The Transform's model with `-f` files and `--set` values applied as dk applies them (lint's
    overrides); dk rewrites dk.yaml in place, dkb never touches it."""
    if not files and not sets:
        return node.manifest.model
    from pydantic import ValidationError

    from dkbuild.diagnostics import DkbError
    from dkbuild.governance.overrides import parse_overrides
    from dkbuild.manifests.models import MODEL_OF_KIND

    try:
        data = parse_overrides([str(f) for f in files], sets, Path.cwd()).apply(node.manifest.data)
    except DkbError as exc:
        raise RunError(_diagnostics_text(exc)) from None
    try:
        return MODEL_OF_KIND["Transform"].model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise RunError(f"{node.manifest.file} with the overrides: {field}: {first['msg']}") from None


def _diagnostics_text(exc: Any) -> str:
    return "; ".join(f"{d.location()}: {d.message}" + (f" (hint: {d.hint})" if d.hint else "")
                     for d in exc.diagnostics)


def _datasets(spec: Any) -> list[str]:
    return [ref.dataset for ref in [*spec.inputs, *spec.outputs] if ref.dataset]


def _models(graph: Any, refs: list[Any]) -> list[Any]:
    nodes = (graph.lookup("DataSet", ref.dataset) for ref in refs if ref.dataset)
    return [n.manifest.model for n in nodes if n is not None]


def _dev_profile(root: Path, warnings: list[str]) -> Any:
    """The dev profile; without one, the workspace's template (so a fresh checkout runs)."""
    from dkbuild.devprofile import PROFILE, TEMPLATE, load_profile, parse_profile
    from dkbuild.diagnostics import DkbError

    try:
        profile = load_profile(root)
        template = root / TEMPLATE
        if not profile.exists and template.is_file():
            profile = parse_profile(root, template, template.read_text(encoding="utf-8"))
            warnings.append(f"no {PROFILE} yet: using {TEMPLATE} (`dkb dev profile` writes one to edit)")
    except DkbError as exc:
        raise RunError(_diagnostics_text(exc)) from None
    return profile


def _cell_stores(graph: Any, transform_id: str, datasets: list[str] | None, cell: str,
                 kube_context: str | None) -> Mapping[str, Any]:
    from dkbuild.lineage.cellstores import CellError, cell_stores
    from dkbuild.lineage.storeenv import stores_of

    try:
        return cell_stores(cell, [s.name for s in stores_of(graph, transform_id, datasets)], kube_context)
    except (CellError, StoreEnvError) as exc:
        raise RunError(str(exc)) from None


def _spec_timeout(value: Any, transform_id: str) -> float | None:
    from dkbuild.governance.values import parse_go_duration

    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    seconds = parse_go_duration(str(value))
    if seconds is None:
        raise RunError(f"{transform_id}: spec.timeout {value!r} is not a duration like 30m or 1h30m")
    return seconds if seconds > 0 else None


def run_package(loaded: Any, transform_id: str, *, dry_run: bool = False, container: bool = False,
                emitter: Any = None, heartbeat_seconds: float = 30, timeout: float | None = None,
                extra_env: Mapping[str, str] | None = None, extra_args: list[str] | None = None,
                stdout: Any = None, values_files: list[Path] | None = None, sets: list[str] | None = None,
                cell: str | None = None, kube_context: str | None = None,
                plan: RunPlan | None = None) -> RunResult:
    """Run the Transform `transform_id` (a graph node id) and return what happened.

    Raises RunError when the run cannot be prepared; once START is sent, every outcome is a result
    (FAIL with exit code 124 on timeout, 127 when the process cannot start). `stdout` redirects the
    program's standard output (e.g. to stderr when dkb prints JSON). `plan` reuses a plan_run."""
    from dkbuild.lineage.events import new_run_id, run_event

    if plan is None:
        plan = plan_run(loaded, transform_id, container=container, timeout=timeout, extra_env=extra_env,
                        extra_args=extra_args, placeholders=dry_run, values_files=values_files, sets=sets,
                        cell=cell, kube_context=kube_context)
    graph, workspace = loaded.graph, loaded.workspace
    run_id = new_run_id()
    warnings = list(plan.warnings)
    result = RunResult(run_id, 0, [], plan.command, warnings, plan.display_env, str(plan.package_dir), plan.image,
                       dry_run, plan.mode, plan.runtime, plan.timeout)

    def event(kind: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        return run_event(kind, graph, transform_id, run_id, workspace, error=error)

    if dry_run:
        result.events = [event("START"), event("COMPLETE")]
        return result
    if emitter is None:
        raise RunError("run_package needs an emitter (see dkbuild.lineage.transport.make_emitter)")

    lock = threading.Lock()

    def send(ev: dict[str, Any]) -> None:
        with lock:
            result.events.append(ev)
            emitter.emit(ev)

    send(event("START"))
    stop_beat = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(stop_beat, heartbeat_seconds, lambda: send(event("RUNNING"))),
                            name=f"dkb-heartbeat-{run_id}", daemon=True)
    beat.start()
    try:
        code, message = _prepare(plan, warnings)
        if code == 0:
            code, message = _run_steps(plan, stdout)
    finally:
        stop_beat.set()
        beat.join()
    result.exit_code = code
    message = mask(message, plan.secret_values)
    send(event("COMPLETE") if code == 0 else event("FAIL", {"message": message, "exit_code": code}))
    warnings.extend(w for w in getattr(emitter, "warnings", []) if w not in warnings)
    return result


def _prepare(plan: RunPlan, notes: list[str]) -> tuple[int, str]:
    """Write the runtime's generated files (dbt profile, CloudQuery spec) and run its setup, inside
    the run: a failure here is the run's FAIL."""
    ctx = plan.context
    if ctx is None:
        return 0, ""
    try:
        for path, text in ctx.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        for action in ctx.setup:
            notes.extend(action())
    except Exception as exc:  # noqa: BLE001 - any setup failure is reported as the run's failure
        return 1, f"preparing the run failed: {exc}"
    return 0, ""


def _heartbeat(stop_beat: threading.Event, seconds: float, beat: Any) -> None:
    if seconds is None or seconds <= 0:
        return
    while not stop_beat.wait(seconds):
        beat()


def _run_steps(plan: RunPlan, stdout: Any = None) -> tuple[int, str]:
    """Each step in turn under one deadline; the first that fails ends the run."""
    deadline = None if plan.timeout is None else time.monotonic() + plan.timeout
    for index, step in enumerate(plan.steps):
        last = index == len(plan.steps) - 1
        left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        code, message = _run_step(plan, step, left, stdout if last else sys.stderr)
        if code != 0 and plan.mode == "container" and code in ENGINE_EXIT_CODES:
            runtime = RUNTIMES[plan.runtime]
            message += (f"; {step.what} could not start the container (image {plan.image}). To run it locally "
                        f"instead, install {runtime.install}")
        if code != 0:
            return code, message if last or code == EXIT_TIMEOUT else f"{step.what} failed: {message}"
    return 0, ""


def _run_step(plan: RunPlan, step: Step, timeout: float | None, stdout: Any) -> tuple[int, str]:
    env = {**os.environ, **plan.env, **step.env}
    try:
        proc = subprocess.Popen(step.argv, cwd=step.cwd, env=env, stdout=stdout, start_new_session=True)
    except OSError as exc:
        return EXIT_NOT_STARTED, f"could not start {step.argv[0]!r}: {exc.strerror or exc}"
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(plan, proc)
        return EXIT_TIMEOUT, (f"timed out after {plan.timeout:g}s (--timeout, else spec.timeout); "
                              "the process group was killed")
    except BaseException:      # Ctrl-C: do not leave the job running
        _kill(plan, proc)
        raise
    if code == 0:
        return 0, ""
    if code < 0:
        return 128 - code, f"killed by signal {-code}"
    return code, f"process exited with code {code}"


def _kill(plan: RunPlan, proc: subprocess.Popen[Any]) -> None:
    """Kill the whole process group (a shell's or a build tool's children too), and the container."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()
    if plan.engine is not None and plan.container_name:
        stop(plan.engine, plan.container_name)


def _image_of(model: Any) -> str:
    """spec.image (with ${VAR} expanded from the environment), else the local image name dk builds
    (`dk/<name>:<version>`, contract §3.5)."""
    if model.spec.image:
        return os.path.expandvars(model.spec.image)
    return f"dk/{model.metadata.name}:{model.metadata.version or 'latest'}"
