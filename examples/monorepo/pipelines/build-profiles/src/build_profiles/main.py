"""Entry point of the `build-profiles` transform.

Reads `enriched-events` and `sessions`, writes `customer-profile`. Locally:

    PROFILES_EVENTS_PATH    enriched-events rows (JSON lines, or parquet with pyarrow)
    PROFILES_SESSIONS_PATH  sessions rows
    PROFILES_OUTPUT_PATH    customer-profile rows as JSON lines (stdout when unset)
    PROFILE_WINDOW_DAYS     sessions older than this, counted back from the newest
                            session in the input, are ignored (default 90)

DK_STORE_DSN_LAKE_CURATED names the store in a deployment. The window is measured from the data,
not the wall clock, so a rerun on the same input gives the same output.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

log = logging.getLogger("build-profiles")


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


def parse_ts(value: Any) -> datetime | None:
    """An aware datetime (naive values are taken as UTC), or None if unparseable."""
    if isinstance(value, str) and value:
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def build_profiles(events: Iterable[dict[str, Any]], sessions: Iterable[dict[str, Any]],
                   window_days: int = 90) -> list[dict[str, Any]]:
    profiles: dict[int, dict[str, Any]] = {}
    latest: dict[int, datetime] = {}
    for event in events:
        customer_id = event.get("customer_id")
        seen = parse_ts(event.get("occurred_at"))
        if customer_id is None or seen is None:
            continue
        profile = profiles.setdefault(customer_id, {
            "customer_id": customer_id, "contact_email": None, "country_code": None,
            "session_count": 0, "total_page_views": 0, "last_seen_at": None,
        })
        if customer_id not in latest or seen >= latest[customer_id]:
            latest[customer_id] = seen
            profile["contact_email"] = event.get("user_email")
            profile["country_code"] = event.get("country_code")
            profile["last_seen_at"] = seen.isoformat()

    dated = [(parse_ts(s.get("started_at")), s) for s in sessions]
    dated = [(start, s) for start, s in dated if start is not None]
    if dated:
        cutoff = max(start for start, _ in dated) - timedelta(days=window_days)
        for start, session in dated:
            profile = profiles.get(session.get("user_id"))
            if profile is not None and start >= cutoff:
                profile["session_count"] += 1
                profile["total_page_views"] += int(session.get("page_views") or 0)
    return [profiles[k] for k in sorted(profiles)]


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s build-profiles: %(message)s")
    if not os.environ.get("DK_STORE_DSN_LAKE_CURATED"):
        log.info("DK_STORE_DSN_LAKE_CURATED not set; reading local files only")

    try:
        window = int(os.environ.get("PROFILE_WINDOW_DAYS", "90"))
    except ValueError:
        log.warning("PROFILE_WINDOW_DAYS is not a number; using 90")
        window = 90

    events = read_rows(os.environ.get("PROFILES_EVENTS_PATH"))
    sessions = read_rows(os.environ.get("PROFILES_SESSIONS_PATH"))
    if not events:
        log.info("no enriched events; nothing to do")
        return 0

    profiles = build_profiles(events, sessions, window)
    out_path = os.environ.get("PROFILES_OUTPUT_PATH")
    out = open(out_path, "w", encoding="utf-8") if out_path else sys.stdout
    try:
        for profile in profiles:
            out.write(json.dumps(profile, sort_keys=True) + "\n")
    finally:
        if out_path:
            out.close()
    log.info("built %d profiles from %d events and %d sessions",
             len(profiles), len(events), len(sessions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
