"""The error a malformed query expression raises, pointing at the offending token."""

from __future__ import annotations


class QuerySyntaxError(ValueError):
    """A query that cannot be parsed (or names an unknown function, variable or a bad regex).

    `column` is 1-based and points at the offending token of `expr`; `hint` says how to fix it.
    Errors about target patterns (a word matching nothing) are `PatternError`s, not this.
    """

    def __init__(self, message: str, column: int, hint: str = "", expr: str = ""):
        self.column = column
        self.hint = hint
        self.expr = expr
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self)

    def pointer(self) -> str:
        """The expression with a caret under the offending column."""
        return f"{self.expr}\n{' ' * (self.column - 1)}^"
