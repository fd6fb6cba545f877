"""One loaded manifest document: its location, its raw data, its typed model.

A manifest pickles lean: its location as plain fields and its body (data and positions) as one
opaque bytes value, unpickled only when something reads it; the typed model is never pickled but
validated again from the data on first use. That is what makes the persisted graph snapshot cheap
to load when a command touches only labels, edges and keys (see engine/snapshot.py).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:   # the models' module is costly to import; a snapshot's manifests rarely need it
    from dkbuild.manifests.models import Envelope

FieldPath = tuple[str | int, ...]


def format_field(path: FieldPath) -> str:
    """`("spec", "inputs", 0, "dataset")` -> `spec.inputs[0].dataset`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def value_at(data: Any, path: FieldPath) -> Any:
    """The value at a field path of a document (the path must exist)."""
    for part in path:
        data = data[part]
    return data


def canonical_json(data: Any) -> str:
    """The one serialization used for hashing and comparing: sorted keys, no whitespace."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, eq=False)
class Manifest:
    kind: str
    name: str
    file: str                 # workspace-relative posix path
    doc_index: int            # position in a multi-document file
    line: int                 # first line of the document
    package: str              # owning package directory
    layout: str               # "dk.yaml" | "flat" | "scaffold"
    data: dict[str, Any]      # the document as parsed (JSON-compatible)
    model: Envelope
    positions: dict[FieldPath, tuple[int, int]] = field(repr=False, default_factory=dict)
    redacted: bool = False    # secrets were taken out of `data` at load (dkbuild.redaction)

    def __post_init__(self) -> None:
        spec = self.data.get("spec") if self.kind == "Transform" else None
        runtime = spec.get("runtime") if isinstance(spec, dict) else None
        self.__dict__["runtime"] = runtime if isinstance(runtime, str) else None
        metadata = self.data.get("metadata")
        namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
        self.__dict__["namespace"] = namespace if isinstance(namespace, str) else ""

    @property
    def namespace(self) -> str:
        """metadata.namespace ("" when unset): part of a target's identity, kept with the location
        so that building a graph never unpickles a body."""
        return self.__dict__["namespace"]

    @property
    def runtime(self) -> str | None:
        """A Transform's runtime, which picks its build rule; kept with the location, so choosing
        rules never unpickles a body."""
        return self.__dict__["runtime"]

    def __getattr__(self, name: str) -> Any:
        # Only reached for fields a snapshot left unpickled (see __reduce__).
        body = self.__dict__.get("_body")
        if body is None or name not in ("data", "positions", "model"):
            raise AttributeError(name)
        if name == "model":
            from dkbuild.manifests.models import MODEL_OF_KIND

            model = MODEL_OF_KIND[self.kind].model_validate(self.data)   # valid: it was when first loaded
            self.__dict__["model"] = model
            return model
        data, positions = pickle.loads(body)
        self.__dict__.update(data=data, positions=positions)
        return data if name == "data" else positions

    def __reduce__(self) -> tuple[Any, ...]:
        body = self.__dict__.get("_body")
        if body is None:
            body = pickle.dumps((self.data, self.positions), protocol=pickle.HIGHEST_PROTOCOL)
            self.__dict__["_body"] = body
        return (_lean_manifest, (self.kind, self.name, self.file, self.doc_index, self.line, self.package,
                                 self.layout, self.runtime, body, self.__dict__.get("_derived"), self.namespace,
                                 self.redacted))

    def derived(self, name: str, compute: Callable[[Manifest], Any]) -> Any:
        """`compute(self)`, remembered under `name` and pickled (packed) with the location, so that
        a later process gets it without unpickling the body. For facts a higher layer draws from
        the manifest alone (graph.build's references), which must be plain data."""
        values = self.__dict__.setdefault("_derived_values", {})    # this process's, unpacked
        if name in values:
            return values[name]
        derived = self.__dict__.setdefault("_derived", {})
        packed = derived.get(name)
        if packed is not None:
            value = pickle.loads(packed)
        else:
            value = compute(self)
            derived[name] = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        values[name] = value
        return value

    @property
    def label(self) -> str:
        return f"//{self.package}:{self.name}"

    @cached_property
    def normalized(self) -> str:
        """Formatting- and comment-independent identity of the manifest's content."""
        return canonical_json(self.data)

    def position(self, path: FieldPath) -> tuple[int, int]:
        """Line and column of a field, or of its nearest present ancestor."""
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return (self.line, 1)


def _lean_manifest(kind: str, name: str, file: str, doc_index: int, line: int, package: str, layout: str,
                   runtime: str | None, body: bytes, derived: dict[str, bytes] | None = None,
                   namespace: str = "", redacted: bool = False) -> Manifest:
    manifest = object.__new__(Manifest)
    manifest.__dict__.update(kind=kind, name=name, file=file, doc_index=doc_index, line=line,
                             package=package, layout=layout, runtime=runtime, namespace=namespace, _body=body,
                             redacted=redacted)
    if derived:
        manifest.__dict__["_derived"] = derived
    return manifest
