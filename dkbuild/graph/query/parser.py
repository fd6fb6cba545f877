"""Recursive-descent parser: tokens -> syntax tree, with every error pointing at a column.

    expr    := primary (op primary)*             all operators left-associative, equal precedence
    op      := '+' | 'union' | '-' | 'except' | '^' | 'intersect'
    primary := WORD | '$'NAME | '(' expr ')'
             | 'let' NAME '=' expr 'in' expr     the body extends as far right as possible
             | NAME '(' [arg (',' arg)*] ')'     NAME must be registered in the function table

Arguments are parsed by the kind the function table declares for their position: expressions
recursively; regexes, integers and field paths as single words, checked here.
"""

from __future__ import annotations

import difflib
import re

from dkbuild.graph.query.errors import QuerySyntaxError
from dkbuild.graph.query.lexer import KEYWORDS, VAR_NAME, T, Token, tokenize
from dkbuild.graph.query.registry import FUNCTIONS, Arg, Function
from dkbuild.graph.query.syntax import OPERATOR_OF_KEYWORD, Call, Expr, Integer, Let, SetOp, Var, Word

_SYMBOL_OPERATORS = {T.PLUS: "+", T.MINUS: "-", T.CARET: "^"}


def parse(expr: str, functions: dict[str, Function] | None = None) -> Expr:
    """Parse a query expression; raises QuerySyntaxError."""
    return _Parser(expr, FUNCTIONS if functions is None else functions).parse()


class _Parser:
    def __init__(self, expr: str, functions: dict[str, Function]):
        self.expr = expr
        self.functions = functions
        self.tokens = tokenize(expr)
        self.pos = 0
        self.scope: list[str] = []

    # -- helpers ---------------------------------------------------------------------------

    def error(self, message: str, column: int, hint: str = "") -> QuerySyntaxError:
        return QuerySyntaxError(message, column, hint, self.expr)

    @property
    def peek(self) -> Token:
        return self.tokens[self.pos]

    def next(self) -> Token:
        token = self.tokens[self.pos]
        if token.type is not T.EOF:
            self.pos += 1
        return token

    def expect(self, type_: T, context: str, hint: str = "") -> Token:
        token = self.peek
        if token.type is not type_:
            raise self.error(f"expected {type_.value} {context}, found {token.describe()}",
                             token.column, hint)
        return self.next()

    def operator(self) -> str | None:
        token = self.peek
        if token.type in _SYMBOL_OPERATORS:
            return _SYMBOL_OPERATORS[token.type]
        if token.type is T.WORD and not token.quoted:
            return OPERATOR_OF_KEYWORD.get(token.text)
        return None

    # -- grammar ---------------------------------------------------------------------------

    def parse(self) -> Expr:
        if self.peek.type is T.EOF:
            raise self.error("empty query", 1, "try //... to list every target")
        tree = self.parse_expr()
        token = self.peek
        if token.type is T.RPAREN:
            raise self.error("unbalanced ')': no '(' is open here", token.column,
                             "remove it or add the matching '('")
        if token.type is not T.EOF:
            hint = ("join expressions with + (union), - (except) or ^ (intersect)"
                    if token.type in (T.WORD, T.VAR, T.LPAREN) else "")
            raise self.error(f"unexpected {token.describe()} after a complete expression",
                             token.column, hint)
        return tree

    def parse_expr(self) -> Expr:
        left = self.parse_primary()
        while (op := self.operator()) is not None:
            column = self.next().column
            right = self.parse_primary()
            left = SetOp(op, left, right, column)
        return left

    def parse_primary(self) -> Expr:
        token = self.peek
        if token.type is T.LPAREN:
            self.next()
            inner = self.parse_expr()
            if self.peek.type is not T.RPAREN:
                found = self.peek
                if found.type is T.EOF:
                    raise self.error(f"unbalanced '(': the '(' at column {token.column} is never closed",
                                     found.column, "add the missing ')'")
                raise self.error(f"expected ')' to close the '(' at column {token.column}, "
                                 f"found {found.describe()}", found.column,
                                 "parentheses must balance")
            self.next()
            return inner
        if token.type is T.VAR:
            self.next()
            if token.text not in self.scope:
                close = difflib.get_close_matches(token.text, self.scope, n=1)
                hint = (f"did you mean ${close[0]}?" if close else
                        "bind it first: let name = expression in ... $name ...")
                raise self.error(f"unknown variable ${token.text}", token.column, hint)
            return Var(token.text, token.column)
        if token.type is T.WORD and not token.quoted:
            if token.text == "let":
                return self.parse_let()
            if token.text in KEYWORDS:
                raise self.error(f"unexpected keyword '{token.text}'", token.column,
                                 "quote it if it is a target pattern")
            if self.tokens[self.pos + 1].type is T.LPAREN:
                return self.parse_call()
        if token.type is T.WORD:
            self.next()
            return Word(token.text, token.column, token.quoted)
        if token.type is T.RPAREN:
            raise self.error("expected an expression, found ')'", token.column,
                             "an expression is a target pattern, a function call, $var or (...)")
        raise self.error(f"expected an expression, found {token.describe()}", token.column,
                         "an expression is a target pattern, a function call, $var or (...)")

    def parse_let(self) -> Let:
        let = self.next()
        name = self.peek
        if name.type is not T.WORD or name.quoted or not VAR_NAME.fullmatch(name.text) \
                or name.text in KEYWORDS:
            raise self.error(f"expected a variable name after 'let', found {name.describe()}",
                             name.column, "write let name = expression in expression")
        self.next()
        self.expect(T.EQUALS, f"after 'let {name.text}'", "write let name = expression in expression")
        value = self.parse_expr()
        token = self.peek
        if not token.is_keyword("in"):
            raise self.error(f"expected 'in' after the value of ${name.text}, found {token.describe()}",
                             token.column, "write let name = expression in expression")
        self.next()
        self.scope.append(name.text)
        try:
            body = self.parse_expr()
        finally:
            self.scope.pop()
        return Let(name.text, value, body, let.column)

    def parse_call(self) -> Call:
        name = self.next()
        function = self.functions.get(name.text)
        if function is None:
            close = difflib.get_close_matches(name.text, sorted(self.functions), n=3, cutoff=0.5)
            hint = (f"did you mean {', '.join(close)}?" if close
                    else f"known functions: {', '.join(sorted(self.functions))}")
            raise self.error(f"unknown function '{name.text}'", name.column, hint)
        open_paren = self.next()
        args: list[Expr | Integer] = []
        if self.peek.type is not T.RPAREN:
            while True:
                kind = function.kind_of(len(args))
                if kind is None:
                    raise self.error(self.count_message(function, "too many arguments"),
                                     self.peek.column, f"usage: {function.signature()}")
                args.append(self.parse_arg(kind, function, len(args) + 1))
                if self.peek.type is T.COMMA:
                    self.next()
                    continue
                if self.peek.type is T.RPAREN:
                    break
                found = self.peek
                if found.type is T.EOF:
                    raise self.error(f"unbalanced '(': {function.name}( at column {open_paren.column} "
                                     "is never closed", found.column, "add the missing ')'")
                what = (f"expected ',' or ')' in {function.name}(...) opened at column "
                        f"{open_paren.column}, found {found.describe()}")
                raise self.error(what, found.column, f"usage: {function.signature()}")
        close_paren = self.next()
        if len(args) not in function.arities:
            raise self.error(self.count_message(function, f"got {len(args)}"),
                             close_paren.column, f"usage: {function.signature()}")
        return Call(name.text, tuple(args), name.column)

    @staticmethod
    def count_message(function: Function, detail: str) -> str:
        low, high = function.arities.start, function.arities.stop - 1
        if low == high:
            count = f"{low} argument{'s' if low != 1 else ''}"
        else:
            count = f"{low} to {high} arguments"
        return f"{function.name}() takes {count}; {detail}"

    def parse_arg(self, kind: Arg, function: Function, number: int) -> Expr | Integer:
        if kind is Arg.EXPR:
            return self.parse_expr()
        token = self.peek
        if token.type is not T.WORD:
            article = "an" if kind.value[0] in "aeiou" else "a"
            raise self.error(f"expected {article} {kind.value} as argument {number} of "
                             f"{function.name}(), found {token.describe()}", token.column,
                             f"usage: {function.signature()}")
        self.next()
        inner = token.column + (1 if token.quoted else 0)    # column of the word's first character
        if kind is Arg.INT:
            if not token.text.isdigit() or not token.text.isascii():
                raise self.error(f"expected a non-negative integer, found '{token.text}'",
                                 token.column, f"usage: {function.signature()}")
            return Integer(int(token.text), token.column)
        if kind is Arg.REGEX:
            try:
                re.compile(token.text)
            except re.error as exc:
                offset = exc.pos if exc.pos is not None else 0
                raise self.error(f"invalid regular expression '{token.text}': {exc.msg}",
                                 inner + offset, "regexes use Python `re` syntax; quote them "
                                 "if they contain + , = ( ) ^ $ or spaces") from None
        if kind is Arg.FIELD:
            bad = next((i for i, part in enumerate(token.text.split(".")) if not part), None)
            if bad is not None or not token.text:
                raise self.error(f"invalid field path '{token.text}'", token.column,
                                 "write a dotted path such as spec.runtime or metadata.labels.team")
        return Word(token.text, token.column, token.quoted)
