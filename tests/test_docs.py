"""The README's Quick start is exactly two commands (every lint code's row: test_lint_docs.py)."""

from __future__ import annotations

from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_quick_start_is_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
