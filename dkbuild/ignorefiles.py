"""`.dkbignore` files (gitignore syntax): files a package has that are never build inputs.

Each ignore file applies to its own directory and below; deeper files override shallower ones,
later lines override earlier ones, `!` re-includes, a trailing `/` matches directories only, and a
pattern with an inner `/` is anchored to the ignore file's directory. Inside git, `.gitignore` is
already honoured by git itself; outside git it is read here the same way.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Callable, Iterable

DKBIGNORE = ".dkbignore"


@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    negate: bool


def _translate(glob: str) -> str:
    out, i = "", 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("/**", i) and i + 3 == len(glob):
            out, i = out + "/.*", i + 3
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif glob[i] == "?":
            out, i = out + "[^/]", i + 1
        elif glob[i] == "[" and "]" in glob[i + 1:]:
            end = glob.index("]", i + 1)
            out, i = out + "[" + glob[i + 1:end].replace("!", "^", 1) + "]", end + 1
        else:
            out, i = out + re.escape(glob[i].lstrip("\\")), i + 1
    return out


def parse(text: str) -> list[Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        body = _translate(line.lstrip("/"))
        prefix = "^" if anchored else "^(?:.*/)?"
        # A match on a directory covers everything inside it.
        suffix = "/.*$" if dir_only else "(?:/.*)?$"
        rules.append(Rule(re.compile(prefix + body + suffix), negate))
    return rules


def ignored_paths(paths: Iterable[str], read: Callable[[str], bytes], names: tuple[str, ...] = (DKBIGNORE,)) -> set[str]:
    """The subset of `paths` that some ignore file (among `paths`, named in `names`) excludes."""
    paths = list(paths)
    files = sorted((p for p in paths if posixpath.basename(p) in names), key=lambda p: p.count("/"))
    if not files:
        return set()
    by_dir = [(posixpath.dirname(f), parse(read(f).decode("utf-8", "replace"))) for f in files]
    dropped = set()
    for path in paths:
        state = False
        for directory, rules in by_dir:
            if directory and not path.startswith(directory + "/"):
                continue
            rel = path[len(directory) + 1:] if directory else path
            for rule in rules:
                if rule.regex.match(rel):
                    state = not rule.negate
        if state:
            dropped.add(path)
    return dropped
