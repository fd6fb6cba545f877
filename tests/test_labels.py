"""Label and pattern parser: examples, errors with columns, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dkbuild.graph.labels import Pattern, PatternError, Scope, parse_pattern
from dkbuild.manifests.yamlsource import LIBYAML

segment = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,10}", fullmatch=True).filter(lambda s: s not in (".", ".."))
package = st.lists(segment, min_size=0, max_size=4).map("/".join)
name = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,10}", fullmatch=True).filter(lambda s: s not in ("all", "*", "all-targets"))


@st.composite
def patterns(draw) -> Pattern:  # type: ignore[no-untyped-def]
    scope = draw(st.sampled_from(list(Scope)))
    pkg = draw(package)
    if scope is Scope.DEFAULT and not pkg:
        pkg = "p"
    return Pattern(pkg, scope, draw(name) if scope is Scope.TARGET else "", draw(st.booleans()))


@given(patterns())
def test_round_trip(pattern: Pattern) -> None:
    assert parse_pattern(str(pattern)) == pattern


@given(package, name)
def test_relative_name_resolves_in_current_package(pkg: str, target: str) -> None:
    assert parse_pattern(f":{target}", pkg) == Pattern(pkg, Scope.TARGET, target)


@given(package, st.sampled_from(["..", "."]), package)
def test_dot_segments_are_rejected(before: str, dots: str, after: str) -> None:
    text = "//" + "/".join(p for p in (before, dots, after) if p)
    with pytest.raises(PatternError):
        parse_pattern(text)


@given(st.text(max_size=30))
def test_never_crashes(text: str) -> None:
    try:
        parse_pattern(text)
    except PatternError as exc:
        assert 1 <= exc.column <= len(text) + 2


@pytest.mark.parametrize("text,expected", [
    ("//a/b:c", Pattern("a/b", Scope.TARGET, "c")),
    ("//a/b", Pattern("a/b", Scope.DEFAULT)),
    ("//a/b:all", Pattern("a/b", Scope.PACKAGE)),
    ("//a/...", Pattern("a", Scope.RECURSIVE)),
    ("//...", Pattern("", Scope.RECURSIVE)),
    ("-//a/...", Pattern("a", Scope.RECURSIVE, negative=True)),
    ("//:root-target", Pattern("", Scope.TARGET, "root-target")),
])
def test_examples(text: str, expected: Pattern) -> None:
    assert parse_pattern(text) == expected


def test_relative_forms() -> None:
    assert parse_pattern("sub:x", "a") == Pattern("a/sub", Scope.TARGET, "x")
    assert parse_pattern("...", "a") == Pattern("a", Scope.RECURSIVE)


@pytest.mark.parametrize("text,column", [("//a:b:c", 7), ("//a/...:x", 8), ("//a/", 3), ("//a b", 3), ("", 1)])
def test_errors_point_at_a_column(text: str, column: int) -> None:
    with pytest.raises(PatternError) as err:
        parse_pattern(text)
    assert err.value.column == column


def test_yaml_uses_libyaml() -> None:
    assert LIBYAML, "PyYAML must be built with libyaml (DESIGN §7)"
