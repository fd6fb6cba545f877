"""The warm path (DESIGN §4, §8): persisted loads, keyed by the exact content of a workspace.

A *snapshot* is what loading one workspace state produced: the manifests, their diagnostics and the
graph. It is stored under `.dkb/cache/graph/<fingerprint>.graph`, where the fingerprint hashes every
file's content id (git blob ids, or sha256 outside git), the parsed workspace.toml and dkb's own
version; never an mtime. Beside it, as the commands need them, sit the content keys (per set of
build rules) and lint reports (per selection). A command on a workspace whose content ids are
unchanged therefore reads a few pickles instead of parsing YAML, and on a changed workspace the most
recent snapshot still serves as the parse cache: files whose content id and place are unchanged are
not parsed again, whichever branch or checkout they came from.

Everything here is a cache: an unreadable or foreign snapshot is a miss, a failed write is ignored,
and `DKB_SNAPSHOT=0` turns the whole warm path off.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dkbuild import __version__
from dkbuild.graph.keys import KeyComponents, Keys
from dkbuild.graph.model import Graph
from dkbuild.sources import FileIndex
from dkbuild.workspace import Workspace

if TYPE_CHECKING:   # the loader pulls in the manifest models, which a warm command never needs
    from dkbuild.manifests.result import LoadResult

SCHEMA = "dkb-snapshot-v5"   # v5: manifests redacted at load (no secret values), configuration by digest;
                             # unlabelable names and unreadable files are load errors (issue 18)
KEEP = 4                 # workspace states kept: the tree, the merge base, a branch or two
ENV_SWITCH = "DKB_SNAPSHOT"
_SUFFIX = ".graph"          # one workspace state: file ids, diagnostics, and the name of its body
_BODY = ".body"             # manifests and graph, shared by states that differ only in other files
_USES = ".uses"             # the name of the body a state uses, for pruning (no state unpickled)
# Bodies read in this process, by (store, name): the most recent two (a head and a base).
_BODIES: dict[tuple[Path, str], tuple[list[Any], Graph]] = {}


def fingerprint(files: FileIndex, workspace: Workspace) -> str:
    """The identity of one workspace state: content ids and configuration, nothing else."""
    h = hashlib.sha256()
    h.update(f"{SCHEMA}\0{__version__}\0{sys.version_info[:2]}\0{files.in_git}\0".encode())
    h.update(workspace.settings.json.encode())
    for path in sorted(files.digests):
        h.update(f"\0{path}\0{files.digests[path]}".encode("utf-8", "surrogateescape"))
    h.update(b"\0links\0" + "\0".join(files.escaping_links).encode("utf-8", "surrogateescape"))
    # What the index saw but did not read is warned about (W530, W531): part of the state too.
    for path, why in (*files.special_files, *files.unfollowed_links):
        h.update(f"\0skipped\0{path}\0{why}".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def load_state(store: SnapshotStore | None, workspace: Workspace, files: FileIndex, source: Any = None,
               known: Snapshot | None = None, fp: str | None = None) -> Snapshot:
    """Manifests and graph of the workspace whose files are `files` (read through `source`, default
    the disk): from its snapshot when there is one, else loaded and stored for next time. A load
    takes from `known` (default: the most recently used snapshot) every file whose content id and
    place are unchanged, and, when no manifest changed at all, its graph and stored body too.
    `fp` is the fingerprint, if the caller has it."""
    if store is not None:
        fp = fp or fingerprint(files, workspace)
        hit = store.get(fp, files)
        if hit is not None:
            return hit
    # Only a miss needs the YAML and model machinery.
    from dkbuild.graph.build import build_graph
    from dkbuild.graph.declared_secrets import redact_declared_secrets
    from dkbuild.manifests.loader import load_manifests, parsed_files

    if known is None and store is not None:
        known = store.latest(workspace)
    result = load_manifests(workspace, files, source, parsed_files(known.result) if known is not None else None)
    graph = (same_graph(known, result) if known is not None else None) or build_graph(result.manifests)
    redact_declared_secrets(graph)
    if store is None:
        return Snapshot("", result, graph)
    taken_over = known is not None and graph is known.graph
    snapshot = store.put(fp or "", workspace, result, graph, known.body if known is not None and taken_over else None)
    if known is not None and known.config == snapshot.config:
        snapshot.derived_from = known      # its keys are a start for this one's
    return snapshot


def same_graph(known: Snapshot, result: LoadResult) -> Graph | None:
    """The graph of `known` when `result` holds the very same manifest objects (no manifest
    changed): the graph is a pure function of them."""
    if len(known.result.manifests) != len(result.manifests):
        return None
    if all(a is b for a, b in zip(known.result.manifests, result.manifests)):
        return known.graph
    return None


def selection_digest(*parts: Any) -> str:
    """A short name for what a result kept beside a snapshot depends on beyond the state."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


@dataclass
class Snapshot:
    """One stored workspace state. `files` is the caller's index (equal digests, current root)."""
    fingerprint: str
    result: LoadResult
    graph: Graph
    store: SnapshotStore | None = field(default=None, repr=False)
    config: str = ""                  # the digest of the workspace configuration it was loaded under
    body: str = ""                    # the name of its manifests-and-graph file, shared by states
    # The snapshot this one was loaded from (same configuration; its manifests where unchanged,
    # its graph if no manifest changed): its keys are a start for this one's
    # (graph.keys.compute_keys' `previous`).
    derived_from: Snapshot | None = field(default=None, repr=False)

    def keys(self, rules_identity: str) -> Keys | None:
        return self.store.read_keys(self, rules_identity) if self.store else None

    def save_keys(self, rules_identity: str, keys: Keys) -> None:
        if self.store:
            self.store.write_keys(self, rules_identity, keys)

    def lint(self, selection: str) -> Any:
        return self.store.read_extra(self.fingerprint, "lint-" + selection) if self.store else None

    def save_lint(self, selection: str, report: Any) -> None:
        if self.store:
            self.store.write_extra(self.fingerprint, "lint-" + selection, report)


def lint_selection(patterns: list[str], current_package: str, options: str, rules_identity: str) -> str:
    """What a lint report depends on beyond the workspace state (whose fingerprint covers
    workspace.toml, [lint.severity] and [policy] included): `options` is LintOptions.key()."""
    return selection_digest(patterns, current_package, options, rules_identity)


class SnapshotStore:
    def __init__(self, directory: Path):
        self.dir = directory

    @classmethod
    def of(cls, workspace: Workspace) -> SnapshotStore | None:
        if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "off", "false", "no"):
            return None
        return cls(workspace.cache_dir / "cache" / "graph")

    # --- graph snapshots ---------------------------------------------------------------------

    def get(self, fp: str, files: FileIndex) -> Snapshot | None:
        state = self._read(self.dir / (fp + _SUFFIX))
        if state is None or state.get("fingerprint") != fp:
            return None
        snapshot = self._snapshot(state, files)
        if snapshot is not None:
            self.touch(fp)
        return snapshot

    def latest(self, workspace: Workspace) -> Snapshot | None:
        """The most recently used snapshot, whatever its state: a parse cache for a changed tree."""
        try:
            candidates = sorted(self.dir.glob("*" + _SUFFIX), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        except OSError:
            return None
        for path in candidates[:1]:
            state = self._read(path)
            # Parsing depends on the size limit only; a snapshot parsed under another is no use.
            if state is not None and state["max_manifest_bytes"] == _size_limit(workspace):
                return self._snapshot(state, None)
        return None

    def put(self, fp: str, workspace: Workspace, result: LoadResult, graph: Graph, body: str | None = None) -> Snapshot:
        """Store a state. `body` names the stored manifests and graph when `result` and `graph` are
        those of another state (only files changed, not manifests): then they are not written again."""
        # The file index is not stored: the fingerprint pins its digests, and its root is the caller's.
        # The configuration only by digest: workspace.toml may hold credentials (a lineage URL's).
        config = hashlib.sha256(workspace.settings.json.encode()).hexdigest()
        if body is None or not (self.dir / (body + _BODY)).is_file():
            body = fp
            written = self._write(self.dir / (body + _BODY), {"schema": SCHEMA, "manifests": result.manifests,
                                                              "graph": graph})
            if written:
                _remember_body(self.dir, body, (result.manifests, graph))
        state = {"schema": SCHEMA, "dkb": __version__, "fingerprint": fp, "body": body,
                 "diagnostics": result.diagnostics, "digests": dict(result.files.digests),
                 "max_manifest_bytes": _size_limit(workspace), "config": config}
        snapshot = Snapshot(fp, result, graph, self, config, body)
        # Which body the state names, for pruning to read without unpickling the state. Written
        # first: a state whose note is missing or damaged only loses its body, which is then a miss.
        if self._mark(fp, body) and self._write(self.dir / (fp + _SUFFIX), state):
            self._prune()
        return snapshot

    def _snapshot(self, state: dict[str, Any], files: FileIndex | None) -> Snapshot | None:
        from dkbuild.manifests.result import LoadResult

        found = self._body(state["body"])
        if found is None:
            return None
        manifests, graph = found
        index = files if files is not None else FileIndex(Path("."), state["digests"], True)
        result = LoadResult(manifests, state["diagnostics"], index)
        return Snapshot(state["fingerprint"], result, graph, self, state["config"], state["body"])

    def _body(self, name: str) -> tuple[list[Any], Graph] | None:
        """The manifests and graph stored as `name`; read once per process (a command that loads
        two states with the same manifests, like `dkb affected` after a source change, reads them
        once, and both states then share the very same objects)."""
        found = _BODIES.get((self.dir, name))
        if found is None:
            state = self._read(self.dir / (name + _BODY))
            if state is None:
                return None
            found = (state["manifests"], state["graph"])
            _remember_body(self.dir, name, found)
        return found

    # --- keys and other per-snapshot results ---------------------------------------------------

    def read_keys(self, snapshot: Snapshot, rules_identity: str) -> Keys | None:
        state = self._read(self._extra_path(snapshot.fingerprint, "keys-" + rules_identity))
        if state is None:
            return None
        nodes = snapshot.graph.nodes
        try:
            with _no_gc():
                components = {node_id: KeyComponents.bound(nodes[node_id].manifest, *parts)
                              for node_id, parts in state["components"].items()}
        except KeyError:
            return None
        return Keys(state["keys"], components, state.get("order"))

    def write_keys(self, snapshot: Snapshot, rules_identity: str, keys: Keys) -> None:
        # The manifest component is the node's manifest data: bound again on read, not stored twice.
        state = {"schema": SCHEMA, "keys": keys.keys, "order": keys.order,
                 "components": {node_id: (c.kind, c.files, c.refs, c.rule, c.config)
                                for node_id, c in keys.components.items()}}
        self._write(self._extra_path(snapshot.fingerprint, "keys-" + rules_identity), state)

    def read_extra(self, fp: str, name: str) -> Any:
        """A result kept beside the snapshot `fp` (which it is pruned with), or None."""
        state = self._read(self._extra_path(fp, name))
        return None if state is None else state.get("value")

    def write_extra(self, fp: str, name: str, value: Any) -> None:
        self._write(self._extra_path(fp, name), {"schema": SCHEMA, "value": value})

    def touch(self, fp: str) -> None:
        """Count the snapshot `fp` as used (pruning keeps the most recently used)."""
        _touch(self.dir / (fp + _SUFFIX))

    def _extra_path(self, fp: str, name: str) -> Path:
        return self.dir / f"{fp}.{name}"

    # --- files ---------------------------------------------------------------------------------

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        try:
            with _no_gc():
                state = pickle.loads(raw)
        except Exception:  # noqa: BLE001 - a torn or foreign file, whatever the error, is a miss
            _remove(path)
            return None
        if not isinstance(state, dict) or state.get("schema") != SCHEMA:
            _remove(path)
            return None
        return state

    def _write(self, path: Path, state: dict[str, Any]) -> bool:
        from dkbuild.fsutil import atomic_write

        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write(path, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        except (OSError, pickle.PicklingError, RecursionError):
            return False    # a cache that cannot be written is only slower
        return True

    def _mark(self, fp: str, body: str) -> bool:
        from dkbuild.fsutil import atomic_write

        try:
            atomic_write(self.dir / (fp + _USES), body.encode())
        except OSError:
            return False
        return True

    def _used_body(self, fp: str) -> str | None:
        try:
            return (self.dir / (fp + _USES)).read_text()
        except (OSError, UnicodeDecodeError):
            return None

    def _prune(self) -> None:
        """Keep the KEEP most recently used states, their results, and the bodies they name."""
        try:
            graphs = sorted(self.dir.glob("*" + _SUFFIX), key=lambda p: p.stat().st_mtime_ns, reverse=True)
            kept = {path.name[:-len(_SUFFIX)] for path in graphs[:KEEP]}
            named = {self._used_body(fp) for fp in kept}
            for path in self.dir.iterdir():
                # Results of states no longer kept (or removed as damaged), and unnamed bodies;
                # not another process's file being written (.tmp-*).
                fp, _, kind = path.name.partition(".")
                if not fp:
                    continue
                if (kind == _BODY[1:] and fp not in named) or (kind != _BODY[1:] and fp not in kept):
                    _remove(path)
        except OSError:
            pass


def _remember_body(directory: Path, name: str, body: tuple[list[Any], Graph]) -> None:
    _BODIES[(directory, name)] = body
    while len(_BODIES) > 2:
        del _BODIES[next(iter(_BODIES))]


def _size_limit(workspace: Workspace) -> int:
    return int(workspace.settings.get("workspace", "max_manifest_bytes"))


@contextmanager
def _no_gc() -> Iterator[None]:
    """Unpickling creates hundreds of thousands of objects, none of them garbage; collecting while
    it runs costs more than the unpickling itself. Afterwards they are frozen out of the collector's
    view: they live as long as the command, and later collections need not walk them again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
