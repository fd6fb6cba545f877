"""Split a query expression into tokens, each with its 1-based column.

Unquoted words use the alphabet of target patterns and regexes that need no quoting:
letters, digits and `/ : _ . @ ~ * - [ ]`, but may not start with `-` or `*` (so `a - b` and
`a -b` subtract). `+ , = ( ) ^ $` and whitespace end a word. Anything else must be quoted with
'...' or "..." (no escapes: a quoted word runs to the next identical quote).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from dkbuild.graph.query.errors import QuerySyntaxError


class T(str, Enum):
    WORD = "word"
    VAR = "variable"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    EQUALS = "'='"
    PLUS = "'+'"
    MINUS = "'-'"
    CARET = "'^'"
    EOF = "end of expression"


KEYWORDS = frozenset({"let", "in", "union", "except", "intersect"})

WORD_START = r"A-Za-z0-9/:_.@~\[\]"
WORD_CHARS = WORD_START + r"*\-"
UNQUOTED_WORD = re.compile(rf"[{WORD_START}][{WORD_CHARS}]*")
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_PUNCTUATION = {"(": T.LPAREN, ")": T.RPAREN, ",": T.COMMA, "=": T.EQUALS,
                "+": T.PLUS, "-": T.MINUS, "^": T.CARET}


@dataclass(frozen=True)
class Token:
    type: T
    text: str          # the word without its quotes; the variable name without '$'
    column: int        # 1-based
    quoted: bool = False

    def is_keyword(self, word: str) -> bool:
        return self.type is T.WORD and not self.quoted and self.text == word

    def describe(self) -> str:
        if self.type is T.WORD:
            return f"'{self.text}'" if not self.quoted else f"quoted word '{self.text}'"
        if self.type is T.VAR:
            return f"'${self.text}'"
        return self.type.value


def tokenize(expr: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch.isspace():
            i += 1
            continue
        column = i + 1
        if ch in _PUNCTUATION:
            tokens.append(Token(_PUNCTUATION[ch], ch, column))
            i += 1
        elif ch in "'\"":
            end = expr.find(ch, i + 1)
            if end < 0:
                raise QuerySyntaxError(f"unterminated quoted word starting with {ch}", column,
                                       f"close it with a matching {ch}", expr)
            tokens.append(Token(T.WORD, expr[i + 1:end], column, quoted=True))
            i = end + 1
        elif ch == "$":
            m = VAR_NAME.match(expr, i + 1)
            if not m:
                raise QuerySyntaxError("'$' must be followed by a variable name", column,
                                       "write $name, where name was bound by `let name = ... in ...`",
                                       expr)
            tokens.append(Token(T.VAR, m.group(), column))
            i = m.end()
        else:
            m = UNQUOTED_WORD.match(expr, i)
            if not m:
                hint = ("quote words that contain it, e.g. \"^Data.*\"" if ch != "*"
                        else "a word cannot start with '*'; quote it")
                raise QuerySyntaxError(f"unexpected character {ch!r}", column, hint, expr)
            tokens.append(Token(T.WORD, m.group(), column))
            i = m.end()
    tokens.append(Token(T.EOF, "", n + 1))
    return tokens


def needs_quotes(word: str) -> bool:
    """Whether `word` must be quoted to lex back as the same single word."""
    return word in KEYWORDS or UNQUOTED_WORD.fullmatch(word) is None


def quote(word: str) -> str:
    """The canonical spelling of a word: bare when possible, else quoted."""
    if not needs_quotes(word):
        return word
    if '"' not in word:
        return f'"{word}"'
    if "'" not in word:
        return f"'{word}'"
    raise ValueError(f"a query word cannot contain both quote characters: {word!r}")
