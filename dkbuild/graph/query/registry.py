"""The table of query functions: name -> (argument kinds, implementation).

The parser reads argument kinds from here (how to parse and check each argument) and the
evaluator calls the implementation, so a new function is one `register(...)` call away:

    def produces(ctx, args):          # args: [set of node ids]
        (targets,) = args
        return {e.dst for n in targets for e in ctx.graph.out_edges.get(n, ()) if e.kind.value == "writes"}

    register(Function("produces", (Arg.EXPR,), produces, doc="datasets written by the targets"))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from dkbuild.graph.model import Graph
from dkbuild.graph.query.lexer import KEYWORDS


class Arg(str, Enum):
    EXPR = "expression"     # evaluated to a set of node ids
    WORD = "word"           # a plain string (a field name, ...)
    REGEX = "regex"         # a compiled `re.Pattern` (checked when parsing)
    INT = "integer"         # a non-negative int (checked when parsing)
    FIELD = "field"         # a dotted field path such as spec.runtime (checked when parsing)


@dataclass(frozen=True)
class Context:
    """What an implementation may look at besides its arguments."""
    graph: Graph
    current_package: str = ""
    # When not None, functions may record why they returned a node (shown by --output json).
    reasons: dict[str, list[str]] | None = None


Implementation = Callable[[Context, list[Any]], set[str]]


@dataclass(frozen=True)
class Function:
    name: str
    required: tuple[Arg, ...]
    impl: Implementation
    optional: tuple[Arg, ...] = ()
    doc: str = ""

    @property
    def arities(self) -> range:
        return range(len(self.required), len(self.required) + len(self.optional) + 1)

    def kind_of(self, index: int) -> Arg | None:
        kinds = self.required + self.optional
        return kinds[index] if index < len(kinds) else None

    def signature(self) -> str:
        parts = [k.value for k in self.required] + [f"[{k.value}]" for k in self.optional]
        return f"{self.name}({', '.join(parts)})"


FUNCTIONS: dict[str, Function] = {}


def register(function: Function, *, replace: bool = False) -> Function:
    if function.name in FUNCTIONS and not replace:
        raise ValueError(f"query function {function.name!r} is already registered")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", function.name) or function.name in KEYWORDS:
        raise ValueError(f"query function names are lowercase identifiers, not {function.name!r}")
    FUNCTIONS[function.name] = function
    return function
