"""Load every manifest of a workspace into typed Manifest records plus diagnostics.

Anything that makes a document unusable (bad YAML, not a mapping, unknown kind, wrong types, too
big) is an error diagnostic and the document is skipped; everything else still loads, so one bad
file never hides the problems of the others.
"""

from __future__ import annotations

import difflib
import gc
import multiprocessing
import os
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from dkbuild.diagnostics import Diagnostic, error, warning
from dkbuild.fsutil import read_regular
from dkbuild.graph.labels import label_problem
from dkbuild.manifests.layout import ManifestFile, manifest_files
from dkbuild.manifests.manifest import FieldPath, Manifest, format_field, value_at
from dkbuild.manifests.models import API_VERSIONS, KINDS, MODEL_OF_KIND, unknown_fields
from dkbuild.manifests.result import LOAD_ERROR_CODES, LoadResult  # noqa: F401 - re-exported
from dkbuild.manifests.secret_findings import secret_warnings
from dkbuild.manifests.yamlsource import Document, parse_documents
from dkbuild.redaction import redact_document
from dkbuild.sources import FileIndex, path_selector
from dkbuild.workspace import Workspace


class Source(Protocol):
    """Where manifest bytes come from: the working tree, or a git revision (gitrev.RevisionTree)."""

    def read(self, path: str) -> bytes: ...

    def size(self, path: str) -> int: ...


@dataclass(frozen=True)
class DiskSource:
    root: Path

    def read(self, path: str) -> bytes:
        return read_regular(os.path.join(self.root, path))

    def size(self, path: str) -> int:
        return os.stat(os.path.join(self.root, path)).st_size


# Already-parsed files, by (content id, where the file sits): the same bytes in the same place parse
# to the same manifests, whichever revision they come from.
Parsed = Mapping[tuple[str, ManifestFile], tuple[list[Manifest], list[Diagnostic]]]


def load_manifests(workspace: Workspace, files: FileIndex, source: Source | None = None,
                   parsed: Parsed | None = None, *, workers: int | None = None) -> LoadResult:
    """Every selected manifest of `files`, read through `source` (default: the files on disk).
    Files found in `parsed` (same content id and place) are taken from it instead of re-read.

    Files on disk are read and parsed by `workers` processes when that pays (default: one per
    core up to MAX_WORKERS, from PARALLEL_MIN_FILES files to parse; 1 means here); models are
    validated here either way, and the result is the same as a serial load, file for file."""
    source = source or DiskSource(workspace.root)
    cfg = workspace.config.workspace
    selected = path_selector(cfg.packages, cfg.exclude)
    manifests: list[Manifest] = []
    diagnostics: list[Diagnostic] = []
    for link in files.escaping_links:
        if selected(link):
            diagnostics.append(warning("W111", link, "symlink points outside the workspace; not followed",
                                       hint="copy the file into the workspace or remove the link"))
    diagnostics.extend(skipped_file_warnings(files, selected))
    found_files = manifest_files(p for p in files.digests if selected(p))
    todo = [mf for mf in found_files if (files.digests[mf.path], mf) not in (parsed or {})]
    prefetch = getattr(source, "prefetch", None)
    if prefetch is not None and todo:
        prefetch(mf.path for mf in todo if source.size(mf.path) <= cfg.max_manifest_bytes)
    with _gc_paused():
        stream = _parse_in_workers(todo, source, cfg.max_manifest_bytes, workers)
        try:
            for mf in found_files:
                known = parsed.get((files.digests[mf.path], mf)) if parsed else None
                if known is None and stream is not None:
                    path, outcome = next(stream)
                    if path != mf.path:     # the workers answer in order; anything else is a bug here
                        raise RuntimeError(f"parallel load out of step: {path} for {mf.path}")
                    # None: the worker could not parse it; parsing it here gives its diagnostics or
                    # raises its error, as a serial load would.
                    known = _manifests_of(*outcome, mf) if outcome is not None else None
                found, problems = known if known is not None else load_file(workspace, mf, source)
                manifests.extend(found)
                diagnostics.extend(problems)
        finally:
            if stream is not None:
                stream.close()
    diagnostics.extend(_duplicate_labels(manifests))
    return LoadResult(manifests, diagnostics, files)


PARALLEL_MIN_FILES = 200
MAX_WORKERS = 4
_CHUNK = 64     # files per task: small enough that validation here starts early and workers stay even


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic GC while loading: the load builds hundreds of thousands of long-lived, acyclic
    containers, and each full collection would walk all of them again (about 40% of a cold load
    at 10,000 packages). The collector runs normally again afterwards."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# What a worker sends back for one file: the documents as plain (data, line, positions) tuples and
# the file's diagnostics, or None when it failed.
_Outcome = tuple[list[tuple[Any, int, dict[FieldPath, tuple[int, int]]]], list[Diagnostic]] | None


def _parse_in_workers(todo: list[ManifestFile], source: Source, limit: int,
                      workers: int | None) -> Iterator[tuple[str, _Outcome]] | None:
    """(path, outcome) for each file of `todo`, in order, parsed by worker processes; None when the
    files are better parsed here: few files, one core, not the disk (a git revision is read through
    one reader), no fork, or other threads running (forking those is unsafe)."""
    if type(source) is not DiskSource:
        return None
    # Past a few workers this process, validating every model, is the bottleneck.
    count = min(_cpus(), MAX_WORKERS) if workers is None else workers
    if count < 2 or not todo or (workers is None and len(todo) < PARALLEL_MIN_FILES):
        return None
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return None
    chunks = [[mf.path for mf in todo[i:i + _CHUNK]] for i in range(0, len(todo), _CHUNK)]
    try:
        executor = ProcessPoolExecutor(min(count, len(chunks)), mp_context=multiprocessing.get_context("fork"))
    except Exception:   # noqa: BLE001 - no process pool here (no semaphores, say): parse here
        return None
    return _results(executor, str(source.root), limit, chunks)


def _results(executor: ProcessPoolExecutor, root: str, limit: int,
             chunks: list[list[str]]) -> Iterator[tuple[str, _Outcome]]:
    done = 0
    try:
        for outcomes in executor.map(_parse_chunk, [(root, limit, chunk) for chunk in chunks]):
            yield from outcomes
            done += 1
    except Exception:   # noqa: BLE001 - a worker died or its answer did not arrive: parse the rest here
        for chunk in chunks[done:]:
            for path in chunk:
                yield path, None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _parse_chunk(task: tuple[str, int, list[str]]) -> list[tuple[str, _Outcome]]:
    """In a worker: read and parse files into plain data (no models: they are costly to unpickle)."""
    root, limit, paths = task
    source = DiskSource(Path(root))
    out: list[tuple[str, _Outcome]] = []
    for path in paths:
        try:
            documents, problems = _parse_file(path, source, limit)
            out.append((path, ([(d.data, d.line, d.positions) for d in documents], problems)))
        except Exception:   # noqa: BLE001 - the parent parses this file again and sees the error itself
            out.append((path, None))
    return out


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def parsed_files(result: LoadResult) -> dict[tuple[str, ManifestFile], tuple[list[Manifest], list[Diagnostic]]]:
    """The per-file results of a load, for reuse by another load (see `parsed` above)."""
    by_file: dict[str, tuple[list[Manifest], list[Diagnostic]]] = {}
    places: dict[str, ManifestFile] = {}
    for m in result.manifests:
        places.setdefault(m.file, ManifestFile(m.file, m.package, m.layout))
        by_file.setdefault(m.file, ([], []))[0].append(m)
    for d in result.diagnostics:
        if d.file in by_file and d.code not in _WORKSPACE_WIDE_CODES:
            by_file[d.file][1].append(d)
    return {(result.files.digests[path], places[path]): found for path, found in by_file.items()
            if path in result.files.digests}


# Diagnostics that load_manifests adds across files, never part of one file's own result.
_WORKSPACE_WIDE_CODES = frozenset({"E110", "W111", "W530", "W531"})


def skipped_file_warnings(files: FileIndex, selected: Any) -> list[Diagnostic]:
    """What the index saw but left out, said instead of dropped silently: FIFOs, sockets and
    devices (W530), and links inside the workspace that loop, dangle or name a directory (W531)."""
    found = [warning("W530", path, f"{what}, not a regular file; skipped (never read)",
                     hint="remove it from the workspace, or list it in a .dkbignore file")
             for path, what in files.special_files if selected(path)]
    found += [warning("W531", path, f"symlink not followed: {why}",
                      hint="replace the link with the file itself, or list it in a .dkbignore file")
              for path, why in files.unfollowed_links if selected(path)]
    return found


def load_file(workspace: Workspace, mf: ManifestFile,
              source: Source | None = None) -> tuple[list[Manifest], list[Diagnostic]]:
    source = source or DiskSource(workspace.root)
    documents, diagnostics = _parse_file(mf.path, source, workspace.config.workspace.max_manifest_bytes)
    return _manifests_of(documents, diagnostics, mf)


def _parse_file(path: str, source: Source, limit: int) -> tuple[list[Document], list[Diagnostic]]:
    """The documents of one file, or why it has none (too big, not UTF-8, bad YAML)."""
    try:
        size = source.size(path)
        raw = source.read(path) if size <= limit else b""
    except OSError as exc:      # unreadable, gone, or swapped for a FIFO since it was indexed
        return [], [error("E530", path, f"cannot read manifest file: {exc.strerror or exc}",
                          hint="make it readable by the user running dkb (or remove it), then run again")]
    if size > limit:
        return [], [error("E106", path, f"manifest file is {size:,} bytes, over the {limit:,}-byte limit; not loaded",
                          hint="manifests are small; if this is data, move it out of the manifest "
                               "(or raise [workspace] max_manifest_bytes)")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [error("E112", path, f"manifest is not UTF-8 text (byte {exc.start})",
                          hint="save the file as UTF-8")]
    return parse_documents(text, path)


def _manifests_of(documents: list[Any], diagnostics: list[Diagnostic],
                  mf: ManifestFile) -> tuple[list[Manifest], list[Diagnostic]]:
    """Validated manifests of parsed documents (Document records, or a worker's plain tuples)."""
    diagnostics = list(diagnostics)
    manifests = []
    for index, doc in enumerate(documents):
        if not isinstance(doc, Document):
            doc = Document(*doc)
        manifest, problems = _manifest_of(doc, index, mf)
        diagnostics.extend(problems)
        if manifest is not None:
            manifests.append(manifest)
    return manifests, diagnostics


def _manifest_of(doc: Document, index: int, mf: ManifestFile) -> tuple[Manifest | None, list[Diagnostic]]:
    # Secrets go first, before any message can quote a value: nothing after this sees them.
    data, found = redact_document(doc.data)

    def at(path: FieldPath) -> dict[str, int]:
        line, col = doc.positions.get(path, (doc.line, 1))
        return {"line": line, "column": col}

    if not isinstance(data, dict):
        return None, [error("E101", mf.path, f"manifest is not a mapping (got {_type_name(data)})", line=doc.line,
                            column=1, hint="a manifest is a mapping with apiVersion, kind, metadata and spec")]
    kind = data.get("kind")
    if kind is None:
        return None, [error("E102", mf.path, "manifest is missing required 'kind' field", line=doc.line, column=1,
                            field="kind", hint=f"add 'kind:' with one of {', '.join(KINDS)}")]
    if kind not in KINDS:
        close = difflib.get_close_matches(str(kind), KINDS, n=1, cutoff=0.6)
        hint = (f"did you mean '{close[0]}'?" if close else
                "'Pipeline' and 'Asset' are historical kinds: a pipeline is a query over Transforms and DataSets"
                if kind in ("Pipeline", "Asset", "DataPackage") else f"use one of {', '.join(KINDS)}")
        return None, [error("E002", mf.path, f'unsupported manifest kind "{kind}": must be Connector, Store, '
                            "DataSet, DataSetGroup, or Transform", field="kind", hint=hint, **at(("kind",)))]
    if "metadata" not in data:
        return None, [error("E104", mf.path, "manifest is missing required 'metadata' mapping", line=doc.line,
                            column=1, field="metadata", hint="add 'metadata:' with at least 'name:'")]
    secrets = secret_warnings(found, data, mf.path, at)
    problems: list[Diagnostic] = list(secrets)
    # dk reads a document by its kind alone: a missing or unknown apiVersion is said, not fatal.
    api = data.get("apiVersion")
    if api is None:
        problems.append(warning("E103", mf.path, "manifest is missing the 'apiVersion' field", line=doc.line,
                                column=1, field="apiVersion", hint=f"add 'apiVersion: {API_VERSIONS[0]}'"))
    elif api not in API_VERSIONS:
        problems.append(warning("E111", mf.path, f"unsupported apiVersion '{api}'", field="apiVersion",
                                hint=f"use one of {', '.join(API_VERSIONS)}", **at(("apiVersion",))))
    try:
        model = MODEL_OF_KIND[kind].model_validate(data)
    except ValidationError as exc:
        return None, secrets + _type_errors(exc, data, mf.path, at)
    unlabelled = label_problem(mf.package, model.metadata.name or "")
    if unlabelled:      # dk rejects such a name too (E001); in the graph it would be a label no one can name
        return None, secrets + [error("E532", mf.path, f"{unlabelled}; not loaded", field="metadata.name",
                            hint="rename it: lowercase letters, digits and '-' suit dk and every tool",
                            **at(("metadata", "name")))]
    for path in unknown_fields(model):
        problems.append(warning("W100", mf.path, f"unknown field '{format_field(path)}' (not part of the "
                                f"{kind} contract; ignored)", field=format_field(path),
                                hint=_closest_field(model, path), **at(path)))
    manifest = Manifest(kind=kind, name=model.metadata.name, file=mf.path, doc_index=index, line=doc.line,
                        package=mf.package, layout=mf.layout, data=data, model=model,
                        positions=doc.positions, redacted=bool(found))
    if found:
        manifest.__dict__["_original"] = doc.data    # this process's only, never pickled (see original_data)
    return manifest, problems


def original_data(manifest: Manifest, root: Path | None) -> dict[str, Any]:
    """A manifest's document with its secrets, for what must connect with them (`dkb run`): kept
    from this process's load, else read again from the file under `root`; the redacted data when
    neither is possible. Never stored, never printed."""
    if not manifest.redacted:
        return manifest.data
    original = manifest.__dict__.get("_original")
    if original is None and root is not None:
        try:
            documents, _ = parse_documents((root / manifest.file).read_text(encoding="utf-8-sig"), manifest.file)
        except (OSError, UnicodeDecodeError):
            documents = []
        if manifest.doc_index < len(documents) and isinstance(documents[manifest.doc_index].data, dict):
            original = documents[manifest.doc_index].data
    return original if original is not None else manifest.data


def _type_errors(exc: ValidationError, data: Any, file: str, at: Any) -> list[Diagnostic]:
    seen: dict[FieldPath, Diagnostic] = {}
    for err in exc.errors():
        path = _data_path(data, err["loc"])
        if path in seen:
            continue
        value = value_at(data, path)
        got = f" (got {_type_name(value)} {value!r})" if not isinstance(value, (dict, list)) else \
            f" (got {_type_name(value)})"
        hint = "quote the value to make it a string" if "string" in err["msg"] and isinstance(value, (int, float)) \
            else "check the field's type in the manifest reference"
        seen[path] = error("E105", file, f"{format_field(path) or '(document)'}: {err['msg']}{got}",
                           field=format_field(path), hint=hint, **at(path))
    return list(seen.values())


def _data_path(data: Any, loc: tuple[Any, ...]) -> FieldPath:
    """The prefix of a pydantic error location that exists in the data (drops union member tags)."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and part in current:
            current = current[part]
            path.append(part)
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
            path.append(part)
        else:
            break
    return tuple(path)


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__)


def _closest_field(model: BaseModel, path: FieldPath) -> str:
    parent: Any = model
    for part in path[:-1]:
        if isinstance(parent, BaseModel):
            fields = type(parent).model_fields
            name = next((n for n, f in fields.items() if (f.alias or n) == part), part)
            parent = getattr(parent, str(name), None)
        elif isinstance(parent, (list, dict)):
            parent = parent[part] if isinstance(parent, dict) else parent[int(part)]
    if not isinstance(parent, BaseModel):
        return "remove the field"
    valid = [f.alias or n for n, f in type(parent).model_fields.items()]
    close = difflib.get_close_matches(str(path[-1]), valid, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else f"valid fields here: {', '.join(valid)}"


def _duplicate_labels(manifests: list[Manifest]) -> list[Diagnostic]:
    first: dict[str, Manifest] = {}
    problems = []
    for m in manifests:
        if not m.name:
            continue
        other = first.setdefault(m.label, m)
        if other is not m:
            problems.append(error("E110", m.file, f"duplicate label {m.label}: also defined in {other.file}:"
                                  f"{other.line}", line=m.line, column=1, field="metadata.name",
                                  related=(other.file,),
                                  hint="names must be unique within a package; rename one of them"))
    return problems


