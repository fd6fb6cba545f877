"""YAML documents with a file:line:column for every key, parsed by libyaml, with hard limits.

We compose nodes with libyaml's C parser and build the Python values ourselves, because that gives
positions for every key and lets us bound alias expansion ("billion laughs") and nesting depth,
and reject duplicate keys that PyYAML would silently overwrite.

This is the cold path of every command (hundreds of thousands of scalars in a large workspace),
so the common case is kept cheap: a scalar already resolved to a plain string is taken as is, and
only the other tags go through PyYAML's SafeConstructor, with exactly its YAML 1.1 semantics.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dkbuild.diagnostics import Diagnostic, error

try:
    _BaseLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

LIBYAML = _BaseLoader is not yaml.SafeLoader
MAX_NODES_PER_DOCUMENT = 100_000
MAX_DEPTH = 64
# Text a document may expand to through aliases (scalar bytes times their uses): a few aliases of
# one large anchored string get past the node limit, and every later copy of the data (canonical
# JSON, snapshots, validation) pays for the expansion. Without aliases a document's text is at most
# the file's, so the bound is never met by an honest manifest.
MIN_EXPANDED_BYTES = 16 * 1024 * 1024

STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"

Path_ = tuple[str | int, ...]


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader with a cheaper resolver: the answer for a plain scalar depends only on its
    text, and most texts start with a character no implicit resolver looks at."""

    _plain_tags: dict[str, str] = {}

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is ScalarNode and not self.yaml_path_resolvers:
            if not implicit[0]:
                return STR_TAG                      # quoted or block scalar: never resolved implicitly
            if value and value[0] not in self.yaml_implicit_resolvers \
                    and None not in self.yaml_implicit_resolvers:
                return STR_TAG
            tag = self._plain_tags.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self._plain_tags) < 50_000:  # bounded: the texts that look like numbers, bools...
                    self._plain_tags[value] = tag
            return tag
        return super().resolve(kind, value, implicit)

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        if self.yaml_path_resolvers:                # none for the safe loader, unless someone adds one
            super().descend_resolver(current_node, current_index)

    def ascend_resolver(self) -> None:
        if self.yaml_path_resolvers:
            super().ascend_resolver()


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
            builder = _Builder(file, max(MIN_EXPANDED_BYTES, 2 * len(text)))
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


class _Builder:
    """Python values and positions of one document. Every node visit counts towards the node limit,
    an alias once per use, so an expansion bomb stops early."""

    def __init__(self, file: str, max_text: int):
        self.file = file
        self.positions: dict[Path_, tuple[int, int]] = {}
        self.visited = 0
        self.text = 0                 # scalar bytes built so far, an alias's once per use
        self.max_text = max_text
        # One constructor per document, as PyYAML has one per loader: it caches what it built by node.
        self._constructor = yaml.constructor.SafeConstructor()

    def _fail(self, code: str, node: Node, message: str, hint: str) -> _Abort:
        return _Abort(error(code, self.file, message, line=node.start_mark.line + 1,
                            column=node.start_mark.column + 1, hint=hint))

    def _count(self, node: Node, depth: int) -> None:
        self.visited += 1
        if self.visited > MAX_NODES_PER_DOCUMENT:
            raise self._fail("E107", node, f"document expands to more than {MAX_NODES_PER_DOCUMENT:,} "
                             "YAML nodes (alias/anchor expansion bomb?)",
                             "remove the recursive anchors/aliases; manifests are small")
        if depth > MAX_DEPTH:
            raise self._fail("E107", node, f"YAML nesting deeper than {MAX_DEPTH} levels",
                             "manifests are shallow; flatten the structure")

    def _grow(self, node: Node) -> None:
        self.text += len(node.value)
        if self.text > self.max_text:
            raise self._fail("E107", node, f"document expands to more than {self.max_text // (1024 * 1024)} MiB "
                             "of text through YAML aliases (an expansion bomb?)",
                             "write the value out once; manifests do not need anchors for large values")

    def build(self, node: Node, path: Path_, depth: int) -> Any:
        self._count(node, depth)
        cls = node.__class__
        if cls is ScalarNode:
            self._grow(node)
            return node.value if node.tag == STR_TAG else self._scalar(node)
        if cls is SequenceNode:
            return self._sequence(node, path, depth)
        assert cls is MappingNode
        return self._mapping(node, path, depth)

    def _sequence(self, node: Node, path: Path_, depth: int) -> list[Any]:
        positions = self.positions
        items: list[Any] = []
        append = items.append
        child_depth = depth + 1
        for i, child in enumerate(node.value):
            where = path + (i,)
            mark = child.start_mark
            positions[where] = (mark.line + 1, mark.column + 1)
            if child.__class__ is ScalarNode and child.tag == STR_TAG and child_depth <= MAX_DEPTH:
                self.visited += 1                   # a plain string: the node limit still counts it
                if self.visited > MAX_NODES_PER_DOCUMENT:
                    self._count(child, child_depth)
                self._grow(child)
                append(child.value)
            else:
                append(self.build(child, where, child_depth))
        return items

    def _mapping(self, node: Node, path: Path_, depth: int) -> dict[str, Any]:
        positions = self.positions
        mapping: dict[str, Any] = {}
        child_depth = depth + 1
        # Keys that came from merge keys (`<<: *base`), with the scratch positions they came with:
        # a key written out in this mapping overrides them, wherever the merge key stands.
        inherited: dict[str, tuple[int, int | None]] = {}
        scratches: list[dict[Path_, tuple[int, int]]] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                self._merge(value_node, child_depth, mapping, inherited, scratches)
                continue
            if key_node.__class__ is not ScalarNode:
                raise self._fail("E101", key_node, "mapping keys must be plain scalars",
                                 "use a string key")
            key = key_node.value if key_node.tag == STR_TAG else str(self._scalar(key_node))
            where = path + (key,)
            if key in mapping:
                if key not in inherited:
                    line, _ = positions[where]
                    raise self._fail("E108", key_node, f"duplicate key '{key}' (first defined on line {line})",
                                     "remove one of the two; YAML would silently keep only the last")
                del inherited[key]
            mark = key_node.start_mark
            positions[where] = (mark.line + 1, mark.column + 1)
            if value_node.__class__ is ScalarNode and value_node.tag == STR_TAG and child_depth <= MAX_DEPTH:
                self.visited += 1
                if self.visited > MAX_NODES_PER_DOCUMENT:
                    self._count(value_node, child_depth)
                self._grow(value_node)
                mapping[key] = value_node.value
            else:
                mapping[key] = self.build(value_node, where, child_depth)
        if inherited:
            self._inherit_positions(path, inherited, scratches)
        return mapping

    def _merge(self, value_node: Node, depth: int, mapping: dict[str, Any],
               inherited: dict[str, tuple[int, int | None]], scratches: list[dict[Path_, tuple[int, int]]]) -> None:
        """`<<: *base` or `<<: [*a, *b]`: fill in the keys not yet present, the first source winning.
        The sources are built apart, so their positions land in this mapping only for the keys taken."""
        outer, self.positions = self.positions, {}
        try:
            merged = self.build(value_node, (), depth)
        finally:
            scratch, self.positions = self.positions, outer
        scratches.append(scratch)
        sources = enumerate(merged) if isinstance(merged, list) else [(None, merged)]
        for index, source in sources:
            if isinstance(source, dict):
                for k, v in source.items():
                    if k not in mapping:
                        mapping[k] = v
                        inherited[k] = (len(scratches) - 1, index)

    def _inherit_positions(self, path: Path_, inherited: dict[str, tuple[int, int | None]],
                           scratches: list[dict[Path_, tuple[int, int]]]) -> None:
        for number, scratch in enumerate(scratches):
            for where, position in scratch.items():
                index, rest = (None, where) if not where or not isinstance(where[0], int) else (where[0], where[1:])
                if rest and inherited.get(rest[0]) == (number, index):   # type: ignore[call-overload]
                    self.positions[path + rest] = position

    def _scalar(self, node: Node) -> Any:
        try:
            value = self._constructor.construct_object(node)
        except yaml.constructor.ConstructorError as exc:
            raise self._fail("E100", node, f"unsupported YAML value: {exc.problem}",
                             "custom tags are not allowed in manifests") from None
        except (ValueError, LookupError, TypeError, AttributeError, ArithmeticError):
            # An explicit tag on text that does not fit it (`!!int abc`): PyYAML's constructors
            # fail with a bare Python error here, which must not end the whole load.
            short = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise self._fail("E100", node, f"invalid YAML value: {node.value!r} is not a valid {short}",
                             "remove the explicit tag or fix the value") from None
        if isinstance(value, (datetime.date, datetime.datetime)):
            return value.isoformat()
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return value
