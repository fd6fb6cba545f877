"""The README documents every lint code, and its Quick start is exactly two commands."""

from __future__ import annotations

import re

from dkbuild.governance.codes import CODES
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_every_code_is_documented() -> None:
    documented = set(re.findall(r"^\| ([EW]\d{3}) \|", README, flags=re.M))
    assert documented == set(CODES)


def test_quick_start_is_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
