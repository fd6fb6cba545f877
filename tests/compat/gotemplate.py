"""A small Go text/template renderer for dk's `dk init` templates.

It covers the part of text/template the templates use, and raises on anything else, so a template
that starts using more syntax fails the suite loudly instead of rendering wrong:

- actions `{{ pipeline }}` with `{{-` / `-}}` trimming and `{{/* comments */}}`;
- a pipeline is commands joined by `|`; a command is a field (`.Name`), a string literal
  (`"..."` or a raw `` `...` ``) or a function of the func map with its arguments, the piped value
  passed last, as Go does;
- `{{ if PIPELINE }} ... {{ else if ... }} ... {{ else }} ... {{ end }}` with Go's truthiness.

The func map is the one of cli/internal/templates/renderer.go, rewritten from its Go source.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any


class TemplateError(ValueError):
    pass


def _split_words(s: str) -> list[str]:
    """renderer.go splitWords: split on '-', '_', ' ' and before an upper-case letter."""
    words: list[str] = []
    current = ""
    for i, ch in enumerate(s):
        if ch in "-_ ":
            if current:
                words.append(current)
                current = ""
            continue
        if i > 0 and ch.isupper() and current:
            words.append(current)
            current = ""
        current += ch
    if current:
        words.append(current)
    return words


def snake_case(s: str) -> str:
    return "_".join(w.lower() for w in _split_words(s))


def pascal_case(s: str) -> str:
    return "".join(w[:1].upper() + w[1:].lower() for w in _split_words(s))


def _go_title(s: str) -> str:
    """strings.Title: upper-case the first letter of each word (words split on non-letters)."""
    return re.sub(r"(^|[^\w])(\w)", lambda m: m.group(1) + m.group(2).upper(), s)


FUNCS: dict[str, Callable[..., Any]] = {
    "lower": str.lower,
    "upper": str.upper,
    "title": _go_title,
    "snake": snake_case,
    "snakeCase": snake_case,
    "pascal": pascal_case,
    "pascalCase": pascal_case,
    "contains": lambda s, sub: sub in s,
    "hasPrefix": lambda s, prefix: s.startswith(prefix),
    "hasSuffix": lambda s, suffix: s.endswith(suffix),
    "replace": lambda s, old, new: s.replace(old, new),
    "trimSpace": str.strip,
}

_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\.[A-Za-z_][A-Za-z0-9_.]*|\.|[A-Za-z_][A-Za-z0-9_]*|\||\S)')


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            break
        out.append(m.group(1))
        pos = m.end()
    return out


def _operand(token: str, data: Mapping[str, Any]) -> Any:
    if token.startswith('"'):
        return json.loads(token)               # Go's interpreted string literal escapes are JSON's here
    if token.startswith("`"):
        return token[1:-1]
    if token == ".":
        return data
    if token.startswith("."):
        value: Any = data
        for part in token[1:].split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise TemplateError(f"can't evaluate field {part} in {token}")
            value = value[part]
        return value
    if token in ("true", "false"):
        return token == "true"
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    raise TemplateError(f"unsupported operand {token!r}")


def _pipeline(text: str, data: Mapping[str, Any]) -> Any:
    commands: list[list[str]] = [[]]
    for token in _tokens(text):
        if token == "|":
            commands.append([])
        else:
            commands[-1].append(token)
    value: Any = None
    for index, command in enumerate(commands):
        if not command:
            raise TemplateError(f"empty command in pipeline {text!r}")
        head, args = command[0], command[1:]
        if head in FUNCS:
            values = [_operand(a, data) for a in args] + ([value] if index else [])
            value = FUNCS[head](*values)
        elif args:
            raise TemplateError(f"{head!r} is not a function (in {text!r})")
        elif index:
            raise TemplateError(f"can't pipe into non-function {head!r} (in {text!r})")
        else:
            value = _operand(head, data)
    return value


def _truthy(value: Any) -> bool:
    return bool(value)                         # Go: false, 0, nil, empty string/slice/map are false


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _actions(source: str) -> list[tuple[int, int, str, bool, bool]]:
    """(start, end, body, trim_left, trim_right) of each {{ }} action; quoted strings may hold '}}'."""
    found = []
    pos = 0
    while (start := source.find("{{", pos)) >= 0:
        i = start + 2
        quote = ""
        while i < len(source):
            ch = source[i]
            if quote:
                if ch == "\\" and quote == '"':
                    i += 1
                elif ch == quote:
                    quote = ""
            elif ch in "\"`":
                quote = ch
            elif source.startswith("}}", i):
                break
            i += 1
        else:
            raise TemplateError(f"unclosed action at offset {start}")
        body = source[start + 2:i]
        trim_left = body[:2] in ("- ", "-\t", "-\n")
        trim_right = body[-2:] in (" -", "\t-", "\n-")
        body = body[2 if trim_left else 0:len(body) - (2 if trim_right else 0)].strip()
        found.append((start, i + 2, body, trim_left, trim_right))
        pos = i + 2
    return found


def render(source: str, data: Mapping[str, Any]) -> str:
    """Render `source` with `data` (the PackageConfig fields by their Go names)."""
    pieces: list[tuple[str, str]] = []         # ("text", s) or ("action", body)
    pos = 0
    trim_next = False
    for start, end, body, trim_left, trim_right in _actions(source):
        text = source[pos:start]
        if trim_left:
            text = text.rstrip()
        if trim_next:
            text = text.lstrip()
        pieces += [("text", text), ("action", body)]
        trim_next = trim_right
        pos = end
    tail = source[pos:]
    pieces.append(("text", tail.lstrip() if trim_next else tail))
    out, _ = _block(pieces, 0, data, top=True)
    return out


def _block(pieces: list[tuple[str, str]], i: int, data: Mapping[str, Any], *, top: bool = False,
           emit: bool = True) -> tuple[str, int]:
    """Render pieces from i until an `else`/`end` at this level; return (text, index of that piece)."""
    out: list[str] = []
    while i < len(pieces):
        kind, body = pieces[i]
        if kind == "text":
            out.append(body)
            i += 1
            continue
        if body.startswith("/*"):
            i += 1
            continue
        word = body.split(None, 1)[0] if body else ""
        if word in ("else", "end"):
            if top:
                raise TemplateError(f"unexpected {{{{{body}}}}}")
            return "".join(out), i
        if word == "if":
            text, i = _if(pieces, i, data, emit)
            out.append(text)
            continue
        if word in ("range", "with", "define", "template", "block", "break", "continue") or ":=" in body or "$" in body:
            raise TemplateError(f"template action {{{{{body}}}}} is not supported by tests/compat/gotemplate.py")
        if emit:
            out.append(_text(_pipeline(body, data)))
        i += 1
    if not top:
        raise TemplateError("missing {{end}}")
    return "".join(out), i


def _if(pieces: list[tuple[str, str]], i: int, data: Mapping[str, Any], emit: bool) -> tuple[str, int]:
    """At an `if` action: render the branch that holds, skip the others; return past `{{end}}`."""
    condition = pieces[i][1][len("if"):]
    chosen = ""
    taken = False
    i += 1
    while True:
        holds = not taken and emit and _truthy(_pipeline(condition, data))
        text, i = _block(pieces, i, data, emit=holds)
        if holds:
            chosen, taken = text, True
        body = pieces[i][1]
        i += 1
        if body == "end":
            return chosen, i
        rest = body[len("else"):].strip()
        if rest.startswith("if "):
            condition = rest[len("if"):]
        elif not rest:
            condition = "true"
        else:
            raise TemplateError(f"unsupported {{{{{body}}}}}")
