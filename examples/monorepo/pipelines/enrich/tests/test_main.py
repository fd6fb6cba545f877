import json
import os
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from enrich import main as enrich_main  # noqa: E402

EVENTS = [
    {"event_id": "e1", "user_id": 7, "event_type": "page_view", "occurred_at": "2024-05-01T10:00:00Z"},
    {"event_id": "e2", "user_id": 0, "event_type": "page_view", "occurred_at": "2024-05-01T10:01:00Z"},
]
CUSTOMERS = [{"customer_id": 7, "email": "ada@example.com", "country_code": "GB"}]


class EnrichTest(unittest.TestCase):
    def test_joins_customer_and_renames_email(self):
        rows = list(enrich_main.enrich(EVENTS, CUSTOMERS))
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["user_email"], "ada@example.com")
        self.assertEqual(rows[0]["customer_id"], 7)
        self.assertNotIn("email", rows[0])

    def test_keeps_anonymous_events_when_asked(self):
        rows = list(enrich_main.enrich(EVENTS, CUSTOMERS, drop_anonymous=False))
        self.assertEqual([r["event_id"] for r in rows], ["e1", "e2"])
        self.assertIsNone(rows[1]["user_email"])

    def test_main_with_missing_inputs_exits_zero(self):
        with mock.patch.dict(os.environ, {"ENRICH_EVENTS_PATH": "/nonexistent/events.jsonl"}, clear=False):
            self.assertEqual(enrich_main.main(), 0)

    def test_main_writes_jsonl(self):
        with tempfile.TemporaryDirectory() as tmp:
            ev, cu, out = (Path(tmp) / n for n in ("events.jsonl", "customers.jsonl", "out.jsonl"))
            ev.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
            cu.write_text("".join(json.dumps(c) + "\n" for c in CUSTOMERS))
            env = {"ENRICH_EVENTS_PATH": str(ev), "ENRICH_CUSTOMERS_PATH": str(cu),
                   "ENRICH_OUTPUT_PATH": str(out)}
            with mock.patch.dict(os.environ, env):
                self.assertEqual(enrich_main.main(), 0)
            lines = out.read_text().splitlines()
            self.assertEqual(len(lines), 1)
            self.assertEqual(json.loads(lines[0])["event_id"], "e1")


if __name__ == "__main__":
    unittest.main()
