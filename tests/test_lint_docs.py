"""The lint docs fragment (docs/compat/lint.md, merged into the README) gives every code its
catalogue severity and its dk code, so the table cannot drift from codes.py."""

from __future__ import annotations

import re

from dkbuild.governance.codes import CODES
from tests.conftest import REPO

DOC = (REPO / "docs" / "compat" / "lint.md").read_text()
TABLE = DOC.split("### Every code", 1)[1].split("\n### ", 1)[0]
ROWS = {m.group(1): (m.group(2).strip(), m.group(3).strip())
        for m in re.finditer(r"^\| ([EW]\d{3}) \| ([^|]+) \| ([^|]+) \|", TABLE, flags=re.M)}
# Set by the package-local resolution work (issue 13 item 1), listed in the fragment as a group.
GRAPH = {"E500", "E501", "E502", "E503", "E504", "E505", "E506", "E507", "W508", "E509"}


def test_every_code_has_a_row_with_its_severity_and_dk_code() -> None:
    assert set(ROWS) == set(CODES) - GRAPH
    for code, (severity, dk) in ROWS.items():
        entry = CODES[code]
        assert severity.split(" ")[0] == entry.severity, code
        assert dk.startswith(entry.dk or "none (dkb only"), (code, dk)


def test_graph_codes_are_named() -> None:
    section = TABLE.split("**Across packages", 1)[1].split("**Governance", 1)[0]
    assert set(re.findall(r"[EW]5\d\d", section)) == GRAPH
