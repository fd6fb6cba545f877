"""Counts of outcomes by status for build and publish summaries: every status of the command's
vocabulary is counted, zeros included, in one fixed order, so text and JSON say the same thing."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

BUILD_STATUSES = ("built", "cached", "remote", "failed", "skipped")
DRY_RUN_STATUSES = ("hit", "miss", "failed", "skipped")
PUBLISH_STATUSES = ("pushed", "unchanged", "conflict", "failed", "skipped", "not-attempted")
DRY_PUBLISH_STATUSES = ("would-push", "unchanged", "conflict", "failed", "skipped", "not-attempted")


def count_statuses(statuses: Iterable[str], vocabulary: Sequence[str]) -> dict[str, int]:
    """{status: count} for every status in `vocabulary` (zeros too), then any status outside it."""
    counts = dict.fromkeys(vocabulary, 0)
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return counts


def format_counts(counts: Mapping[str, int]) -> str:
    """"3 built, 0 cached, 0 failed": the text form of `count_statuses`."""
    return ", ".join(f"{n} {status}" for status, n in counts.items())
