"""The README's *Lint codes* section gives every code its catalogue severity and its dk code, so
the table cannot drift from codes.py."""

from __future__ import annotations

import re

from dkbuild.governance.codes import CODES
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
TABLE = README.split("\n## Lint codes\n", 1)[1].split("\n## ", 1)[0]
ROWS = {m.group(1): (m.group(2).strip(), m.group(3).strip())
        for m in re.finditer(r"^\| ([EW]\d{3}) \| ([^|]+) \| ([^|]+) \|", TABLE, flags=re.M)
        if not m.group(2).strip().startswith("`")}       # dk's aggregate-check rows name dk codes


def test_every_code_has_a_row_with_its_severity_and_dk_code() -> None:
    assert set(ROWS) >= set(CODES)
    for code in CODES:
        severity, dk = ROWS[code]
        entry = CODES[code]
        assert severity.split(" ")[0] == entry.severity, code
        assert dk.startswith(entry.dk or "none (dkb only"), (code, dk)
