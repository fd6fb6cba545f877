"""Entry point of the `enrich` transform.

Reads `raw-events` and `customers`, writes `enriched-events`. Locally the datasets are files
named by environment variables (JSON lines, or parquet when pyarrow is installed):

    ENRICH_EVENTS_PATH      raw-events rows
    ENRICH_CUSTOMERS_PATH   customers rows
    ENRICH_OUTPUT_PATH      enriched-events rows as JSON lines (stdout when unset)
    DROP_ANONYMOUS          "true" drops events whose user is not a known customer

DK_STORE_DSN_LAKE_RAW and DK_STORE_DSN_LAKE_CURATED name the stores in a deployment; they are
only reported here. A missing input is treated as empty, so the job exits 0 with nothing to do.
Emails are PII: they are copied to the output but never logged.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any, Iterable, Iterator

log = logging.getLogger("enrich")

STORES = ("LAKE_RAW", "LAKE_CURATED")


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
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s:%d is not valid JSON; skipped", path, lineno)
    return rows


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def enrich(events: Iterable[dict[str, Any]], customers: Iterable[dict[str, Any]],
           drop_anonymous: bool = True) -> Iterator[dict[str, Any]]:
    """One enriched-events row per event, in input order."""
    by_id = {}
    for customer in customers:
        key = _as_int(customer.get("customer_id"))
        if key is not None:
            by_id[key] = customer
    for event in events:
        customer = by_id.get(_as_int(event.get("user_id")))
        if customer is None and drop_anonymous:
            continue
        customer = customer or {}
        yield {
            "event_id": event.get("event_id"),
            "customer_id": customer.get("customer_id"),
            "user_email": customer.get("email"),
            "country_code": customer.get("country_code"),
            "event_type": event.get("event_type"),
            "occurred_at": event.get("occurred_at"),
        }


def write_rows(rows: Iterable[dict[str, Any]], path: str | None) -> int:
    out = open(path, "w", encoding="utf-8") if path else sys.stdout
    count = 0
    try:
        for row in rows:
            out.write(json.dumps(row, sort_keys=True) + "\n")
            count += 1
    finally:
        if path:
            out.close()
    return count


def main() -> int:
    level = getattr(logging, os.environ.get("LOG_LEVEL", "info").upper(), logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s enrich: %(message)s")

    for store in STORES:
        state = "configured" if os.environ.get(f"DK_STORE_DSN_{store}") else "not set (local run)"
        log.info("store DK_STORE_DSN_%s: %s", store, state)

    events = read_rows(os.environ.get("ENRICH_EVENTS_PATH"))
    customers = read_rows(os.environ.get("ENRICH_CUSTOMERS_PATH"))
    if not events:
        log.info("no events to enrich; nothing to do")
        return 0

    drop = os.environ.get("DROP_ANONYMOUS", "true").strip().lower() in ("1", "true", "yes")
    written = write_rows(enrich(events, customers, drop), os.environ.get("ENRICH_OUTPUT_PATH"))
    log.info("read %d events and %d customers, wrote %d enriched events",
             len(events), len(customers), written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
