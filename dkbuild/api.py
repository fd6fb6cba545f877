"""The library entry points the CLI (and tests) call: load a workspace into a graph, lint, query."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from dkbuild.engine.snapshot import Snapshot, SnapshotStore, fingerprint, load_state
from dkbuild.graph.model import Graph
from dkbuild.manifests.result import LoadResult
from dkbuild.sources import FileIndex, index_files
from dkbuild.workspace import Workspace, load_workspace


@dataclass(frozen=True)
class Loaded:
    """A workspace, its file index and (read on first use) its manifests and graph. A command that
    a remembered answer can serve (a no-op build) never needs the manifests or the graph."""
    workspace: Workspace
    files: FileIndex
    current_package: str     # the cwd relative to the root, for relative labels
    store: SnapshotStore | None = None
    fingerprint: str = ""    # of the workspace state; "" when snapshots are off

    @cached_property
    def snapshot(self) -> Snapshot:
        """Where keys and lint results are kept warm (engine.snapshot)."""
        return load_state(self.store, self.workspace, self.files, fp=self.fingerprint or None)

    @property
    def result(self) -> LoadResult:
        return self.snapshot.result

    @property
    def graph(self) -> Graph:
        return self.snapshot.graph

    @property
    def diagnostics(self):  # type: ignore[no-untyped-def]
        return self.result.diagnostics


def load(start: Path | str = ".", *, deferred: bool = False) -> Loaded:
    """Index the workspace at or above `start` and load its manifests and graph (from the snapshot
    of this exact state when there is one). `deferred` leaves that load to the first use, so its
    errors surface there."""
    start = Path(start).resolve()
    workspace = load_workspace(start)
    files = index_files(workspace.root)
    store = SnapshotStore.of(workspace)
    rel = posixpath.normpath(start.relative_to(workspace.root).as_posix()) if start != workspace.root else ""
    loaded = Loaded(workspace, files, "" if rel == "." else rel, store,
                    fingerprint(files, workspace) if store is not None else "")
    if not deferred:
        loaded.snapshot  # noqa: B018 - load now, so errors surface here
    return loaded


def compute_keys(loaded: Loaded, rules: Any = None):  # type: ignore[no-untyped-def]
    """Content keys of every target (needs the rule registry for rule identities; pass it when the
    caller has loaded it already)."""
    from dkbuild.engine.rules import load_rules
    from dkbuild.graph.keys import compute_keys as _compute

    rules = load_rules(loaded.workspace) if rules is None else rules
    identity = rules.fingerprint(loaded.workspace)
    keys = loaded.snapshot.keys(identity)
    if keys is None:
        base = loaded.snapshot.derived_from
        keys = _compute(loaded.graph, loaded.files, loaded.workspace, rules.for_node(loaded.workspace),
                        *((base.keys(identity), base.graph) if base is not None else ()))
        loaded.snapshot.save_keys(identity, keys)
    return keys


def lint_workspace(loaded: Loaded, patterns: list[str], strict: bool = False, *,  # type: ignore[no-untyped-def]
                   rules: Any = None, keys: Any = None, options: Any = None):
    """Lint with the build rules' runtime checks included. A caller that already has the rules and
    keys (a build) passes them, so they are not loaded and computed twice. `options` is a
    governance.options.LintOptions (its `strict` wins over `strict`)."""
    from dkbuild.engine.rules import load_rules
    from dkbuild.engine.snapshot import lint_selection
    from dkbuild.governance.options import LintOptions

    options = LintOptions(strict=strict) if options is None else options
    rules = load_rules(loaded.workspace) if rules is None else rules
    selection = lint_selection(patterns, loaded.current_package, options.key(), rules.fingerprint(loaded.workspace))
    cached = loaded.snapshot.lint(selection)
    if cached is not None:
        return cached
    from dkbuild.engine.schemafiles import check_schema_files
    from dkbuild.engine.target import BuildTarget
    from dkbuild.governance.lint import lint

    keys = compute_keys(loaded, rules) if keys is None else keys
    result, graph = loaded.result, loaded.graph
    if options.overrides:
        from dkbuild.governance.overrides import overridden
        from dkbuild.graph.build import build_graph
        from dkbuild.graph.select import select

        selected = select(graph, patterns, loaded.current_package)
        result = overridden(result, {graph.nodes[n].package for n in selected}, options.overrides, loaded.workspace)
        graph = build_graph(result.manifests)
    defaults = set(graph.package_default.values())

    def runtime_checks(node):  # type: ignore[no-untyped-def]
        rule = rules.rule_of(node)
        if rule is None or node.id not in keys.keys:   # an override renamed it: no key to check against
            return []
        files = keys.components[node.id].files if node.id in defaults else {}
        target = BuildTarget(node, keys.keys[node.id], loaded.workspace, files, graph)
        return check_schema_files(target) + rule.check(target)

    report = lint(result, graph, loaded.workspace.config, patterns, loaded.current_package,
                  options.strict, runtime_checks, skip_pii=options.skip_pii, runtimes=rules.runtimes)
    loaded.snapshot.save_lint(selection, report)
    return report


@dataclass
class BuildOutcome:
    """What `dkb build` did: the lint report that gated it, the results, and the JSON report."""
    loaded: Loaded
    lint: Any
    results: list[Any]
    report: dict[str, Any]
    store: Any
    interrupted: bool
    warnings: list[str]

    @property
    def failed(self) -> bool:
        return bool(self.lint.errors) or any(r.status == "failed" for r in self.results)


def build(loaded: Loaded, patterns: list[str], options: Any, *, since: str | None = None,
          stamp: bool = False, remote: Any = None, progress: Any = None) -> BuildOutcome:
    """Lint the selection, then build it (only what changed since `since`, if given).

    Pattern and git problems raise (PatternError, DkbError). A lint error, or a manifest that
    cannot be loaded, fails its own target and the targets that depend on it (results with no
    action key); the rest is built. `remote` is RemoteCacheSettings or None; `progress` a Progress or None (silent)."""
    import time

    from dkbuild.engine.build import (
        LocalStore,
        cached_result,
        execute,
        plan,
        report,
        run_action,
        stamp_info,
        tag_results,
    )
    from dkbuild.engine.action import ActionResult
    from dkbuild.engine.rules import load_rules
    from dkbuild.governance.failures import blocked_targets, select_with_unloadable, unloadable_packages

    started = time.monotonic()
    unloadable = unloadable_packages(loaded.result, loaded.graph)
    selected, broken = select_with_unloadable(loaded.graph, patterns, loaded.current_package, unloadable)
    rules = load_rules(loaded.workspace)
    memo = _memo_name(loaded, rules, patterns, options, since, stamp, remote)
    keys = compute_keys(loaded, rules)
    if since is not None:
        from dkbuild.affected_api import affected_targets

        selected &= set(affected_targets(loaded, since, "none", head_keys=keys).labels)
    lint_scope = patterns
    if options.shard is not None:
        from dkbuild.engine.shard import shard_selection

        # Shard what was selected (broken packages too, so each is reported by exactly one shard);
        # each shard lints only its own part, so one error is not reported N times.
        mine = shard_selection(options.shard, loaded.workspace, loaded.graph, keys, rules, selected | set(broken))
        selected &= mine
        broken = {label: why for label, why in broken.items() if label in mine}
        lint_scope = sorted(selected)
    if lint_scope or options.shard is None:
        lint_report = lint_workspace(loaded, _lint_patterns(loaded.graph, lint_scope, selected), rules=rules,
                                     keys=keys)
    else:                                   # an empty shard: nothing to lint (not "everything")
        from dkbuild.governance.lintreport import LintReport
        lint_report = LintReport([], [], [])
    # A problem fails its own target and what depends on it; everything else is built.
    blocked = {**blocked_targets(loaded.graph, loaded.result, lint_report.diagnostics), **broken}
    refused = [ActionResult(label, "", keys.keys.get(label, ""), "failed", errors=list(b.reasons),
                            note="not built: fix the errors named here (`dkb lint` shows them all)")
               for label, b in sorted(blocked.items())
               if label in broken or (label in selected and rules.rule_of(loaded.graph.nodes[label]) is not None)]
    selected -= set(blocked)
    if refused and not any(rules.rule_of(loaded.graph.nodes[n]) is not None for n in selected):
        # Nothing left to build: write nothing, not even an empty store.
        document = report(refused, time.monotonic() - started, False, options.shard, dry_run=options.dry_run)
        return BuildOutcome(loaded, lint_report, refused, document, None, False, [])
    store = LocalStore(loaded.workspace.cache_dir)
    stamp_data = stamp_info(loaded.workspace) if stamp else None
    actions = plan(loaded.workspace, loaded.graph, keys, rules, selected, options, stamp_data)
    cache = None
    if remote is not None:
        from dkbuild.engine.remote_cache import RemoteCache
        cache = RemoteCache.connect(remote)

    def run(action):  # type: ignore[no-untyped-def]
        return run_action(action, store, rules, options, stamp_data, keys, cache)

    from dkbuild.engine.progress import Silent

    # The local cache answers most actions of a typical build: one pass, then a pool for the rest.
    answered = {} if cache is not None else \
        {a.label: r for a in actions if (r := cached_result(a, store, options, keys)) is not None}
    todo = [a for a in actions if a.label not in answered]
    reporter = progress(len(todo)) if progress is not None and todo else Silent()
    ran, interrupted = execute(todo, run, options.jobs, options.keep_going, reporter)
    answered.update((r.label, r) for r in ran)
    results = sorted([answered[a.label] for a in actions] + refused, key=lambda r: r.label)
    store.history.flush()
    if not options.dry_run:
        tag_results(store, results)
    document = report(results, time.monotonic() - started, interrupted, options.shard, dry_run=options.dry_run)
    if memo is not None and not interrupted and not any(a.probes_host for a in actions) \
            and all(r.status in ("cached", "hit") and (r.image or {}).get("status") != "failed" for r in results):
        from dkbuild.engine.buildmemo import remember
        remember(loaded.store, loaded.fingerprint, memo, lint_report, results, store)
    warnings = list(cache.warnings) if cache else []
    if warnings:
        document["warnings"] = warnings
    return BuildOutcome(loaded, lint_report, results, document, store, interrupted, warnings)


def _lint_patterns(graph: Graph, patterns: list[str], selected: set[str]) -> list[str]:
    """What a build lints: its patterns, and the targets they depend on outside them (whose
    manifests the artifacts pack), named by label."""
    seen, stack = set(selected), list(selected)
    while stack:
        for dep in graph.dependencies(stack.pop()):
            if dep not in seen and not graph.nodes[dep].external:
                seen.add(dep)
                stack.append(dep)
    return (patterns or ["//..."]) + sorted(seen - selected)


def recall_build(loaded: Loaded, patterns: list[str], options: Any, *, since: str | None = None,
                 stamp: bool = False, remote: Any = None) -> BuildOutcome | None:
    """The outcome of this exact build when it built nothing last time and nothing it rests on has
    changed since (engine.buildmemo); None means: build. Needs neither the manifests nor the graph."""
    import time

    from dkbuild.engine.rules import load_rules

    started = time.monotonic()
    memo = _memo_name(loaded, load_rules(loaded.workspace), patterns, options, since, stamp, remote)
    if memo is None or loaded.store is None:
        return None
    from dkbuild.engine.buildmemo import recall

    noop = recall(loaded.store, loaded.fingerprint, memo)
    if noop is None:
        return None
    from dkbuild.engine.build import LocalStore, report

    store = LocalStore(loaded.workspace.cache_dir)
    document = report(noop.results, time.monotonic() - started, False, dry_run=options.dry_run)
    return BuildOutcome(loaded, noop.lint, noop.results, document, store, False, [])


def _memo_name(loaded: Loaded, rules: Any, patterns: list[str], options: Any, since: str | None, stamp: bool,
               remote: Any) -> str | None:
    """Under which name a build is remembered, or None for builds whose answer depends on more
    than the workspace state, the rules and the options (see engine.buildmemo)."""
    import os

    if loaded.store is None or since is not None or stamp or remote is not None or getattr(options, "tag", None) \
            or getattr(options, "shard", None) \
            or os.environ.get("SOURCE_DATE_EPOCH"):     # part of action keys, not of the memo's name
        return None
    from dkbuild.engine.buildmemo import memo_name

    store_root = str(loaded.workspace.cache_dir)
    return memo_name(rules.fingerprint(loaded.workspace), patterns, loaded.current_package, options.dry_run,
                     options.image_backend, store_root)


def service_workspace(workspace: Workspace) -> Workspace:
    """The workspace with environment and personal (user config) settings layered in, for talking
    to services: registries, caches, lineage backends. Never for content keys, which must not
    depend on who runs the build."""
    from dkbuild.userpaths import has_personal_settings

    if not has_personal_settings():
        return workspace           # nothing to layer in: the workspace's own configuration
    from dkbuild.userconfig import effective_config

    config, _origins = effective_config(workspace.root)
    return Workspace(workspace.root, config)


def lineage_emitter(workspace: Workspace, transport: str | None = None, url: str | None = None) -> Any:
    """The OpenLineage emitter for `dkb run` and `dkb lineage emit`: flags, then environment and
    configuration, then the `dkb dev` stack's Marquez when it is up, then the file transport."""
    import os

    from dkbuild.lineage.transport import make_emitter

    service = service_workspace(workspace)
    if transport is None and url is None and service.config.lineage.url is None \
            and not os.environ.get("OPENLINEAGE_URL"):
        from dkbuild.devstack import dev_endpoints

        endpoints = dev_endpoints(service)
        if endpoints:
            transport, url = "composite", endpoints["lineage"]     # file + the stack's Marquez
    return make_emitter(service, transport=transport, url=url)
