"""Plan build actions from the graph and run them: cache lookups, parallel execution, keep-going,
clean interruption, and tagging of every artifact in the local OCI layout."""

from __future__ import annotations

import datetime
import os
import re
import socket
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dkbuild import __version__
from dkbuild.engine.action import Action, ActionResult, action_key
from dkbuild.engine.cache import ActionCache, CacheEntry
from dkbuild.engine.counts import BUILD_STATUSES, DRY_RUN_STATUSES, count_statuses
from dkbuild.engine.history import TargetHistory
from dkbuild.engine.progress import Progress
from dkbuild.engine.rules import RuleSet
from dkbuild.engine.target import BuildTarget
from dkbuild.gitinfo import git_output
from dkbuild.graph.keys import Keys
from dkbuild.graph.shard import Shard
from dkbuild.graph.model import Graph
from dkbuild.oci.layout import OciLayout
from dkbuild.workspace import Workspace

DEFAULT_TAG = "latest"     # dk's tag for a package without metadata.version and no --tag


@dataclass(frozen=True)
class BuildOptions:
    jobs: int = os.cpu_count() or 2
    keep_going: bool = False
    dry_run: bool = False
    stamp: bool = False
    image_backend: str = "auto"
    image_failure: str = "auto"          # [build] image_failure: auto | fail | warn
    tag: str | None = None               # dk's `build --tag`: the local tag of each package
    shard: Shard | None = None           # --shard k/N: build only this part of the selection
    # --remote-executor: a dkbuild.remote.reapi.execution.RemoteExecutor that builds Dockerfile
    # images on a REAPI server's workers (package artifacts are always built here).
    remote_executor: Any = None


@dataclass
class LocalStore:
    """`.dkb/` at the workspace root: the OCI layout, the action cache, the per-target history."""
    root: Path
    layout: OciLayout = field(init=False)
    cache: ActionCache = field(init=False)
    history: TargetHistory = field(init=False)

    def __post_init__(self) -> None:
        self.layout = OciLayout(self.root / "oci")
        self.cache = ActionCache(self.root, self.layout)
        self.history = TargetHistory(self.root)


def ref_name(label: str) -> str:
    """An OCI layout ref name per label, valid under the image-layout grammar:
    //pipelines/enrich -> pipelines/enrich, //a:b -> a/b, and //:name (a package at the
    workspace root) -> name."""
    path, _, name = label.lstrip("/").partition(":")
    return "/".join(c for c in (_ref_component(p) for p in [*path.split("/"), name]) if c)


def dk_ref(namespace: str | None, name: str, tag: str) -> str:
    """dk's repository and tag for a package, `<namespace>/<name>:<tag>`, as a layout ref name."""
    return "/".join(c for c in (_ref_component(namespace or ""), _ref_component(name)) if c) + f":{tag}"


def _ref_component(text: str) -> str:
    # Separators stand alone between alphanumerics; any other run of characters becomes one '-'.
    return re.sub(r"[^A-Za-z0-9]+", lambda m: m[0] if m[0] in ".-_" else "-", text).strip("._-")


def stamp_info(workspace: Workspace) -> dict[str, str]:
    """Only with --stamp: when, where and from which commit (never part of an unstamped build)."""
    info = {"timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "builder": f"dkb/{__version__}", "host": socket.gethostname()}
    for key, args in (("gitCommit", ["rev-parse", "HEAD"]), ("gitBranch", ["rev-parse", "--abbrev-ref", "HEAD"]),
                      ("gitTag", ["describe", "--tags", "--exact-match"])):
        value = git_output(workspace.root, *args)
        if value:
            info[key] = value
    return info


def plan(workspace: Workspace, graph: Graph, keys: Keys, rules: RuleSet, targets: set[str],
         options: BuildOptions, stamp: dict[str, str] | None = None) -> list[Action]:
    """One build action per selected Transform (other kinds have nothing to build). Its key covers
    what the content key does not and the artifact depends on: the artifact format,
    SOURCE_DATE_EPOCH, a stamp (only with --stamp), and the image backend. The package artifact
    alone has a key of its own (`package_key`)."""
    from dkbuild.oci.package import PACKAGE_FORMAT
    from dkbuild.oci.tarball import source_date_epoch

    default_of = {node: pkg for pkg, node in graph.package_default.items()}
    epoch = source_date_epoch()
    actions = []
    for label in sorted(targets):
        node = graph.nodes[label]
        rule = rules.rule_of(node)
        if rule is None:
            continue
        files_of = keys.components[label].files if label in default_of else {}
        target = BuildTarget(node, keys.keys[label], workspace, files_of, graph)
        steps = ["package artifact"]
        extra: dict[str, Any] = {"rule": rule.name, "rule_version": rule.version, "format": PACKAGE_FORMAT}
        if epoch:
            extra["source_date_epoch"] = epoch
        if stamp:
            extra["stamp"] = stamp
        package_key = key = action_key(target.key, "build", extra)
        request = rule.image_request(target)
        if request is not None:
            backend, why = _backend_name(rule, target, options)
            steps.append(f"container image ({why or backend})")
            key = action_key(target.key, "build", {**extra, "image_backend": backend})
        actions.append(Action(target, key, tuple(steps), package_key=package_key,
                              probes_host=request is not None and request.dockerfile is not None))
    return actions


def _backend_name(rule: Any, target: BuildTarget, options: BuildOptions) -> tuple[str, str]:
    """The image backend that will run (part of the action key), or the user's preference and the
    reason it cannot run; the action then fails with that reason, other actions go on."""
    try:
        return image_backend(rule.image_request(target), options).name, ""
    except Exception as exc:
        return options.image_backend, f"unavailable: {exc}"


def image_backend(request: Any, options: BuildOptions) -> Any:
    """The backend that builds `request`: remote workers for a Dockerfile image when there is a
    remote executor (under the same backend name, so the key does not change), else a local one."""
    if options.remote_executor is not None and request.dockerfile is not None:
        from dkbuild.oci.backends.remote import remote_backend

        return remote_backend(options.remote_executor, options.image_backend)
    from dkbuild.oci.backends import choose_backend

    return choose_backend(request, options.image_backend)


def cached_result(action: Action, store: LocalStore, options: BuildOptions, keys: Keys) -> ActionResult | None:
    """The result of an action the local cache answers, else None. A build asks this of every action
    first, in one pass without the thread pool, so a no-op build costs one lookup per target."""
    started = time.monotonic()
    lookup = store.cache.lookup(action.action_key)
    if lookup.entry is None:
        return None
    result = _result(action, "hit" if options.dry_run else "cached")
    _complete(result, lookup.entry, action, store, options, keys)
    result.duration = time.monotonic() - started
    return result


def _result(action: Action, status: str) -> ActionResult:
    result = ActionResult(action.label, action.action_key, action.target.key, status, steps=action.steps)
    if action.package_key and action.package_key != action.action_key:
        result.image = {"status": status}
    return result


def run_action(action: Action, store: LocalStore, rules: RuleSet, options: BuildOptions,
               stamp: dict[str, str] | None, keys: Keys, remote: Any = None) -> ActionResult:
    """Local cache, then the remote cache (if any), then build. Every outcome is data in the result."""
    started = time.monotonic()
    result = _result(action, "built")
    try:
        lookup = store.cache.lookup(action.action_key)
        entry = lookup.entry
        result.note = lookup.problem
        if entry is not None:
            result.status = "hit" if options.dry_run else "cached"
            if remote is not None and not options.dry_run:
                remote.upload(entry, store)
        elif remote is not None and not options.dry_run:
            entry = remote.fetch(action.action_key, store)
            if entry is not None:
                result.status, result.note = "remote", "fetched from the remote cache"
        if entry is None and options.dry_run:
            result.status = "miss"
        if result.image is not None:
            result.image = {"status": result.status}
        if entry is None and not options.dry_run:
            entry = _produce(action, store, rules, stamp, options, result)
            if remote is not None and entry.action_key == action.action_key:
                remote.upload(entry, store)
        if entry is not None:
            _complete(result, entry, action, store, options, keys)
    except Exception as exc:  # one target's failure is data in the report, not a crash
        result.status = "failed"
        result.errors.append(f"{type(exc).__name__}: {exc}")
    result.duration = time.monotonic() - started
    return result


def _complete(result: ActionResult, entry: CacheEntry, action: Action, store: LocalStore, options: BuildOptions,
              keys: Keys) -> None:
    """Fill in the artifacts and remember what this build of the target was made of (for `dkb why`),
    unless that is already what the history holds."""
    result.artifacts = {name: desc["digest"] for name, desc in entry.artifacts.items()}
    result.descriptors = entry.artifacts
    result.blobs = [blob["digest"] for blob in entry.blobs]
    result.refs = local_refs(action.label, entry.artifacts.get("package"), options.tag)
    if not options.dry_run and not store.history.is_current(action.label, action.action_key):
        components = keys.components[action.label].to_json()
        references = {ref.id: keys.components[ref.id].to_json() for ref in action.target.references}
        store.history.record(action.label, action.action_key, components, references)


def _produce(action: Action, store: LocalStore, rules: RuleSet, stamp: dict[str, str] | None,
             options: BuildOptions, result: ActionResult) -> CacheEntry:
    """Build what the cache lacks: the package artifact first (cached on its own when the target
    also has an image), then the image. A failed image leaves the package built and cached; the
    entry returned then is the package's, and the image is tried again by the next build."""
    target = action.target
    rule = rules.rule_of(target.node)
    assert rule is not None
    request = rule.image_request(target)
    package_entry = store.cache.lookup(action.package_key).entry if request is not None else None
    if package_entry is None:
        # YAML and tar machinery: imported only when something is actually built.
        from dkbuild.engine.packaging import package_inputs
        from dkbuild.oci.package import write_package

        package = write_package(store.layout, package_inputs(target, rule.extra_manifest_files(target), stamp))
        if request is None:
            return store.cache.store(action.action_key, action.label, target.key, {"package": package.descriptor},
                                     package.blobs)
        package_entry = store.cache.store(action.package_key, action.label, target.key,
                                          {"package": package.descriptor}, package.blobs)
    elif result.image is not None:
        result.status = "cached"
    assert result.image is not None
    from dkbuild.oci.backends.failure import classify

    try:
        image = image_backend(request, options).build(request, store.layout)
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            raise
        result.image = failure.to_json(options.image_failure)
        if failure.blocks(options.image_failure):
            result.status = "failed"
            result.errors.append(f"image: {failure.reason}\n  fix: {failure.fix}")
        return package_entry
    result.status = "built"
    result.image = {"status": "built", "backend": image.backend, **({"remote": image.remote} if image.remote else {})}
    blobs = [b["digest"] for b in package_entry.blobs] + image.blobs
    return store.cache.store(action.action_key, action.label, target.key,
                             {**package_entry.artifacts, "image": image.descriptor}, blobs)


def execute(actions: list[Action], run: Callable[[Action], ActionResult], jobs: int, keep_going: bool,
            progress: Progress) -> tuple[list[ActionResult], bool]:
    """Run actions on a thread pool. Without keep-going the first failure cancels what has not
    started; Ctrl-C cancels what has not started and lets running actions finish their atomic
    writes. Returns the results (skipped for the cancelled) and whether it was interrupted."""
    results: dict[str, ActionResult] = {}

    def job(action: Action) -> ActionResult:
        progress.started(action)
        return run(action)

    interrupted = False
    pool = ThreadPoolExecutor(max_workers=max(jobs, 1))
    futures: dict[Future[ActionResult], Action] = {pool.submit(job, a): a for a in actions}
    pending = set(futures)
    try:
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for fut in done:
                if fut.cancelled():
                    continue
                result = fut.result()
                results[result.label] = result
                progress.finished(result)
                if result.status == "failed" and not keep_going:
                    for other in pending:
                        other.cancel()
    except KeyboardInterrupt:
        interrupted = True
        for fut in futures:
            fut.cancel()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        progress.close()
    for fut, action in futures.items():
        if action.label not in results:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                results[action.label] = fut.result()
            else:
                results[action.label] = ActionResult(action.label, action.action_key, action.target.key,
                                                     "skipped", steps=action.steps,
                                                     note="interrupted" if interrupted else "an earlier action failed")
    return [results[a.label] for a in actions], interrupted


def local_refs(label: str, package: dict[str, Any] | None, tag: str | None) -> tuple[str, ...]:
    """The package's refs in the local layout: its label's, and dk's `<namespace>/<name>:<tag>`
    (tag: --tag, else metadata.version, else latest), read from the descriptor's annotations so
    that answering from the cache never opens a manifest."""
    notes = (package or {}).get("annotations") or {}
    name = notes.get("org.opencontainers.image.title")
    if not name:
        return (ref_name(label),)
    version = tag or notes.get("org.opencontainers.image.version") or DEFAULT_TAG
    return ref_name(label), dk_ref(notes.get("io.infoblox.dk.namespace"), name, version)


def tag_results(store: LocalStore, results: list[ActionResult]) -> None:
    """Tag each artifact in the local layout: under its label's ref, and the package (and image)
    under dk's `<namespace>/<name>:<tag>` as well."""
    wanted = {}
    for result in results:
        refs = result.refs or (ref_name(result.label),)
        for name, desc in result.descriptors.items():
            for ref in refs:
                wanted[_artifact_ref(ref, name)] = desc
    if wanted:
        store.layout.tag_many(wanted)


def _artifact_ref(ref: str, artifact: str) -> str:
    if artifact == "package":
        return ref
    repository, colon, tag = ref.rpartition(":")
    return f"{repository}/{artifact}:{tag}" if colon else f"{ref}.{artifact}"


def report(results: list[ActionResult], duration: float, interrupted: bool,
           shard: Shard | None = None, *, dry_run: bool = False) -> dict[str, Any]:
    """The build report. Its summary counts every status (zeros too) and the images not built."""
    summary = count_statuses((r.status for r in results), DRY_RUN_STATUSES if dry_run else BUILD_STATUSES)
    summary["images_not_built"] = sum((r.image or {}).get("status") == "failed" for r in results)
    document = {"version": 1, "dkb": __version__, "duration_s": round(duration, 3), "interrupted": interrupted,
                "summary": {"total": len(results), **summary},
                "targets": [r.to_json() for r in results]}
    if shard is not None:
        document["shard"] = str(shard)
    return document
