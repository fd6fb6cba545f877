import csv
import hashlib
import io
import json
import os
import sys
import tempfile
import unittest
from datetime import date
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from audience_export import main as export  # noqa: E402

PROFILES = [
    {"customer_id": 1, "contact_email": " Ada@Example.com ", "country_code": "GB",
     "session_count": 12, "total_page_views": 340},
    {"customer_id": 2, "contact_email": "bob@example.com", "country_code": "DE",
     "session_count": 1, "total_page_views": 4},
    {"customer_id": 3, "contact_email": None, "country_code": "FR",
     "session_count": 5, "total_page_views": 20},
]


class AudienceExportTest(unittest.TestCase):
    def test_hash_is_normalised_sha256(self):
        expected = hashlib.sha256(b"ada@example.com").hexdigest()
        self.assertEqual(export.hash_email(" Ada@Example.com "), expected)

    def test_no_raw_email_in_output(self):
        rows = list(export.audience(PROFILES, date(2024, 5, 1)))
        self.assertEqual(len(rows), 1)
        self.assertEqual(set(rows[0]), set(export.COLUMNS))
        self.assertNotIn("example.com", json.dumps(rows))
        self.assertEqual(rows[0]["segment"], "engaged")
        self.assertEqual(rows[0]["engagement_score"], 1.0)

    def test_main_writes_csv(self):
        with tempfile.TemporaryDirectory() as tmp:
            src, out = Path(tmp) / "profiles.jsonl", Path(tmp) / "audience.csv"
            src.write_text("".join(json.dumps(p) + "\n" for p in PROFILES))
            env = {"AUDIENCE_PROFILES_PATH": str(src), "AUDIENCE_OUTPUT_PATH": str(out),
                   "AUDIENCE_EXPORT_DATE": "2024-05-01", "MIN_SESSIONS": "2"}
            with mock.patch.dict(os.environ, env):
                self.assertEqual(export.main(), 0)
            rows = list(csv.DictReader(io.StringIO(out.read_text())))
            self.assertEqual([r["exported_on"] for r in rows], ["2024-05-01"])
            self.assertEqual(len(rows[0]["email_sha256"]), 64)

    def test_main_without_input_exits_zero(self):
        with mock.patch.dict(os.environ, {"AUDIENCE_PROFILES_PATH": "/nonexistent.jsonl"}):
            self.assertEqual(export.main(), 0)


if __name__ == "__main__":
    unittest.main()
