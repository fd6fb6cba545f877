"""Entry point of the `audience-export` transform (`python -m audience_export.main`).

Reads `customer-profile` and writes `marketing-audience`, a CSV that ad platforms match on.
This is where PII stops: the contact email is replaced by the SHA-256 of its normalised form
(trimmed, lower-cased), and no other identifier is written. Locally:

    AUDIENCE_PROFILES_PATH  customer-profile rows (JSON lines, or parquet with pyarrow)
    AUDIENCE_OUTPUT_PATH    marketing-audience CSV (stdout when unset)
    AUDIENCE_EXPORT_DATE    value of exported_on, YYYY-MM-DD (default: today, UTC)
    MIN_SESSIONS            profiles with fewer sessions are left out (default 2)

DK_STORE_DSN_LAKE_CURATED names the store in a deployment and is only reported here.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import sys
from datetime import date, datetime, timezone
from typing import Any, Iterable, Iterator

log = logging.getLogger("audience-export")

COLUMNS = ("email_sha256", "country_code", "segment", "engagement_score", "exported_on")


def read_rows(path: str | None) -> list[dict[str, Any]]:
    """Rows of a JSON-lines (or parquet) file; [] when the path is unset or missing."""
    if not path:
        return []
    if not os.path.exists(path):
        log.warning("input %s does not exist; treating it as empty", path)
        return []
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq  # only needed for parquet inputs

        return pq.read_table(path).to_pylist()
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    log.warning("%s:%d is not valid JSON; skipped", path, lineno)
    return rows


def hash_email(email: str) -> str:
    """The matching key ad platforms expect: hex SHA-256 of the trimmed, lower-cased address."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def segment_of(session_count: int) -> str:
    if session_count >= 10:
        return "engaged"
    if session_count >= 3:
        return "casual"
    return "dormant"


def audience(profiles: Iterable[dict[str, Any]], exported_on: date,
             min_sessions: int = 2) -> Iterator[dict[str, Any]]:
    for profile in profiles:
        email = profile.get("contact_email")
        sessions = int(profile.get("session_count") or 0)
        if not email or sessions < min_sessions:
            continue
        views = int(profile.get("total_page_views") or 0)
        yield {
            "email_sha256": hash_email(email),
            "country_code": profile.get("country_code") or "",
            "segment": segment_of(sessions),
            "engagement_score": round(min(1.0, views / 100.0), 3),
            "exported_on": exported_on.isoformat(),
        }


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s audience-export: %(message)s")
    if not os.environ.get("DK_STORE_DSN_LAKE_CURATED"):
        log.info("DK_STORE_DSN_LAKE_CURATED not set; reading local files only")

    try:
        min_sessions = int(os.environ.get("MIN_SESSIONS", "2"))
    except ValueError:
        log.warning("MIN_SESSIONS is not a number; using 2")
        min_sessions = 2
    raw_date = os.environ.get("AUDIENCE_EXPORT_DATE")
    try:
        exported_on = date.fromisoformat(raw_date) if raw_date else datetime.now(timezone.utc).date()
    except ValueError:
        log.error("AUDIENCE_EXPORT_DATE must be YYYY-MM-DD, got %r", raw_date)
        return 2

    profiles = read_rows(os.environ.get("AUDIENCE_PROFILES_PATH"))
    if not profiles:
        log.info("no customer profiles; nothing to export")
        return 0

    out_path = os.environ.get("AUDIENCE_OUTPUT_PATH")
    out = open(out_path, "w", encoding="utf-8", newline="") if out_path else sys.stdout
    written = 0
    try:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        for row in audience(profiles, exported_on, min_sessions):
            writer.writerow(row)
            written += 1
    finally:
        if out_path:
            out.close()
    log.info("exported %d of %d profiles (min sessions %d)", written, len(profiles), min_sessions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
