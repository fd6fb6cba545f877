"""YAML documents with a file:line:column for every key, parsed by libyaml, with hard limits.

We compose nodes with libyaml's C parser and build the Python values ourselves, because that gives
positions for every key and lets us bound alias expansion ("billion laughs") and nesting depth,
and reject duplicate keys that PyYAML would silently overwrite.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import yaml

from dkbuild.diagnostics import Diagnostic, error

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

LIBYAML = _Loader is not yaml.SafeLoader
MAX_NODES_PER_DOCUMENT = 100_000
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]


@dataclass
class Document:
    data: Any
    line: int                                   # 1-based first line of the document
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)


class _Abort(Exception):
    def __init__(self, diagnostic: Diagnostic):
        self.diagnostic = diagnostic


def parse_documents(text: str, file: str) -> tuple[list[Document], list[Diagnostic]]:
    """All documents of one YAML stream; stops at the first syntax error, keeping what came before."""
    documents: list[Document] = []
    try:
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None:
                continue
            builder = _Builder(file)
            data = builder.build(node, (), 0)
            documents.append(Document(data, node.start_mark.line + 1, builder.positions))
    except _Abort as exc:
        return documents, [exc.diagnostic]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        return documents, [error("E100", file, f"invalid YAML: {problem}", line=line, column=col,
                                 hint="fix the YAML syntax at that position (check indentation and quoting)")]
    except yaml.YAMLError as exc:
        return documents, [error("E100", file, f"invalid YAML: {exc}",
                                 hint="fix the YAML syntax")]
    except RecursionError:
        return documents, [error("E107", file, f"YAML nesting deeper than {MAX_DEPTH} levels",
                                 hint="manifests are shallow; flatten the structure")]
    return documents, []


_scalars = yaml.constructor.SafeConstructor()


class _Builder:
    def __init__(self, file: str):
        self.file = file
        self.positions: dict[Path_, tuple[int, int]] = {}
        self.visited = 0

    def _fail(self, code: str, node: yaml.Node, message: str, hint: str) -> _Abort:
        return _Abort(error(code, self.file, message, line=node.start_mark.line + 1,
                            column=node.start_mark.column + 1, hint=hint))

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES_PER_DOCUMENT:
            raise self._fail("E107", node, f"document expands to more than {MAX_NODES_PER_DOCUMENT:,} "
                             "YAML nodes (alias/anchor expansion bomb?)",
                             "remove the recursive anchors/aliases; manifests are small")
        if depth > MAX_DEPTH:
            raise self._fail("E107", node, f"YAML nesting deeper than {MAX_DEPTH} levels",
                             "manifests are shallow; flatten the structure")
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, child in enumerate(node.value):
                self.positions[path + (i,)] = (child.start_mark.line + 1, child.start_mark.column + 1)
                items.append(self.build(child, path + (i,), depth + 1))
            return items
        assert isinstance(node, yaml.MappingNode)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged = self.build(value_node, path, depth + 1)
                for source in merged if isinstance(merged, list) else [merged]:
                    if isinstance(source, dict):
                        for k, v in source.items():
                            mapping.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._fail("E101", key_node, "mapping keys must be plain scalars",
                                 "use a string key")
            key = str(self._scalar(key_node))
            if key in mapping and (path + (key,)) in self.positions:
                line, _ = self.positions[path + (key,)]
                raise self._fail("E108", key_node, f"duplicate key '{key}' (first defined on line {line})",
                                 "remove one of the two; YAML would silently keep only the last")
            self.positions[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            mapping[key] = self.build(value_node, path + (key,), depth + 1)
        return mapping

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        try:
            value = _scalars.construct_object(node)
        except yaml.constructor.ConstructorError as exc:
            raise self._fail("E100", node, f"unsupported YAML value: {exc.problem}",
                             "custom tags are not allowed in manifests") from None
        if isinstance(value, (datetime.date, datetime.datetime)):
            return value.isoformat()
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return value
