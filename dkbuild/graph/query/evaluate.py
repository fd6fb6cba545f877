"""Evaluate a query syntax tree against a graph, to a set of node ids.

Evaluation is eager: every sub-expression becomes a set of node ids; `let` values are computed
once. A word is a target pattern; one that matches nothing is a PatternError (with the pattern's
"did you mean" suggestions), re-pointed at the word's column in the whole expression.
"""

from __future__ import annotations

import re
from typing import Any

from dkbuild.graph.labels import PatternError, parse_pattern
from dkbuild.graph.model import Graph
from dkbuild.graph.query.parser import parse
from dkbuild.graph.query.registry import FUNCTIONS, Arg, Context, Function
from dkbuild.graph.query.syntax import Call, Expr, Integer, Let, SetOp, Var, Word
from dkbuild.graph.select import match, no_match

_APPLY = {
    "+": set.union,
    "-": set.difference,
    "^": set.intersection,
}


def evaluate(expr: str | Expr, graph: Graph, current_package: str = "",
             functions: dict[str, Function] | None = None,
             reasons: dict[str, list[str]] | None = None) -> set[str]:
    """The node ids an expression denotes. Raises QuerySyntaxError or PatternError. Pass a dict
    as `reasons` to collect, per node, why functions that explain themselves returned it."""
    table = FUNCTIONS if functions is None else functions
    text = expr if isinstance(expr, str) else ""
    tree = parse(expr, table) if isinstance(expr, str) else expr
    return _Evaluator(Context(graph, current_package, reasons), table, text).eval(tree, {})


class _Evaluator:
    def __init__(self, ctx: Context, functions: dict[str, Function], text: str):
        self.ctx = ctx
        self.functions = functions
        self.text = text

    def eval(self, node: Expr, env: dict[str, set[str]]) -> set[str]:
        if isinstance(node, Word):
            return self.word(node)
        if isinstance(node, Var):
            return env[node.name]
        if isinstance(node, Let):
            return self.eval(node.body, {**env, node.name: self.eval(node.value, env)})
        if isinstance(node, SetOp):
            return self.set_op(node, env)
        if isinstance(node, Call):
            return self.call(node, env)
        raise TypeError(f"not a query expression: {node!r}")

    def set_op(self, node: SetOp, env: dict[str, set[str]]) -> set[str]:
        # Walk the left spine iteratively: `a + b + c + ...` nests to the left.
        chain: list[SetOp] = []
        current: Expr = node
        while isinstance(current, SetOp):
            chain.append(current)
            current = current.left
        result = self.eval(current, env)
        for op in reversed(chain):
            result = _APPLY[op.op](result, self.eval(op.right, env))
        return result

    def call(self, node: Call, env: dict[str, set[str]]) -> set[str]:
        function = self.functions[node.name]
        args: list[Any] = []
        for index, arg in enumerate(node.args):
            kind = function.kind_of(index)
            if kind is Arg.EXPR:
                args.append(self.eval(arg, env))        # type: ignore[arg-type]
            elif kind is Arg.INT:
                args.append(arg.value if isinstance(arg, Integer) else int(str(arg)))
            elif kind is Arg.REGEX:
                args.append(re.compile(_text(arg)))
            else:
                args.append(_text(arg))
        return set(function.impl(self.ctx, args))

    def word(self, node: Word) -> set[str]:
        inner = node.column + (1 if node.quoted else 0)
        try:
            pattern = parse_pattern(node.text, self.ctx.current_package)
            if pattern.negative:
                raise PatternError(f"'{node.text}': a query subtracts with '-' between expressions",
                                   node.text, 1, f"write A - {node.text[1:] or '//pkg'}")
            found = match(self.ctx.graph, pattern)
            if not found:
                raise no_match(self.ctx.graph, pattern)
        except PatternError as exc:
            if not self.text or not node.column:
                raise
            column = inner + exc.column - 1 if exc.text == node.text else node.column
            raise PatternError(str(exc), self.text, column, exc.hint) from None
        return found


def _text(arg: Any) -> str:
    return arg.text if isinstance(arg, Word) else str(arg)
