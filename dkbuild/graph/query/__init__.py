"""The dkb query language (Bazel-style): `deps(//pipelines/enrich, 2) - kind(Store, //...)`.

    parse(expr)                              -> syntax tree (str() gives a canonical spelling)
    evaluate(expr, graph, current_package)   -> set of node ids

Modules: lexer (tokens), syntax (tree), parser (grammar), registry (function table),
builtins (deps, rdeps, allpaths, somepath, kind, filter, attr), traversal (graph walks),
evaluate (tree -> node ids), errors (QuerySyntaxError). More functions: `register(Function(...))`.
"""

from __future__ import annotations

from dkbuild.graph.query import builtins as _builtins  # noqa: F401  (registers the functions)
from dkbuild.graph.query.errors import QuerySyntaxError
from dkbuild.graph.query.evaluate import evaluate
from dkbuild.graph.query.parser import parse
from dkbuild.graph.query.registry import FUNCTIONS, Arg, Context, Function, register
from dkbuild.graph.query.syntax import Call, Expr, Integer, Let, SetOp, Var, Word

__all__ = ["parse", "evaluate", "QuerySyntaxError", "FUNCTIONS", "Arg", "Context", "Function",
           "register", "Expr", "Word", "Var", "Let", "SetOp", "Call", "Integer"]
