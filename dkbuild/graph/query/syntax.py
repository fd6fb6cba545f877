"""The query syntax tree. `str(node)` is a canonical spelling that parses back to an equal tree.

Columns are kept for error messages but ignored by equality, so `parse(str(t)) == t`.
Canonical spelling: set operators as `+ - ^` with single spaces, words bare when they can be,
parentheses only where the tree needs them (a set operation or `let` as a right operand, a `let`
as a left operand or as a bound value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from dkbuild.graph.query.lexer import quote

OPERATORS = {"+": "union", "-": "except", "^": "intersect"}
OPERATOR_OF_KEYWORD = {name: symbol for symbol, name in OPERATORS.items()}


@dataclass(frozen=True)
class Word:
    """A target pattern in expression position; a regex or field name as a function argument."""
    text: str
    column: int = field(default=0, compare=False)
    quoted: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        return quote(self.text)


@dataclass(frozen=True)
class Integer:
    value: int
    column: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Var:
    name: str
    column: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f"${self.name}"


@dataclass(frozen=True)
class Let:
    name: str
    value: Expr
    body: Expr
    column: int = field(default=0, compare=False)

    def __str__(self) -> str:
        value = f"({self.value})" if isinstance(self.value, Let) else str(self.value)
        return f"let {self.name} = {value} in {self.body}"


@dataclass(frozen=True)
class SetOp:
    op: str            # "+", "-" or "^"
    left: Expr
    right: Expr
    column: int = field(default=0, compare=False)

    def __str__(self) -> str:
        # Left-deep chains are printed iteratively (long `a + b + c ...` chains stay cheap).
        rights: list[tuple[str, Expr]] = []
        node: Expr = self
        while isinstance(node, SetOp):
            rights.append((node.op, node.right))
            node = node.left
        parts = [f"({node})" if isinstance(node, Let) else str(node)]
        for op, right in reversed(rights):
            parts.append(op)
            parts.append(f"({right})" if isinstance(right, (SetOp, Let)) else str(right))
        return " ".join(parts)


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Arg, ...]
    column: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f"{self.name}({', '.join(str(a) for a in self.args)})"


Expr = Union[Word, Var, Let, SetOp, Call]
Arg = Union[Expr, Integer]
