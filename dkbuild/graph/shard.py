"""`--shard k/N`: split a selection of targets into N disjoint parts whose union is the whole.

Every shard job of a CI matrix computes the split on its own, with no coordination, so the split
is a function of what every job sees alike: the selected labels and a work estimate per label,
both worked out from the commit. Nothing measured on one machine (past durations) takes part,
because jobs that disagreed on it would overlap or, worse, miss targets.

The split is greedy longest-first (LPT): targets in order of decreasing work, ties broken by a
stable hash of the label, each to the shard with the least work so far (ties to the lowest
shard). Sizes stay within one target of each other when the estimates are equal.
"""

from __future__ import annotations

import hashlib
import heapq
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MAX_SHARDS = 1024
_SPEC = re.compile(r"(\d+)/(\d+)")


class ShardError(ValueError):
    """A --shard value that is not k/N with 1 <= k <= N <= MAX_SHARDS."""


@dataclass(frozen=True)
class Shard:
    index: int          # 1-based, as written on the command line
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        found = _SPEC.fullmatch(text.strip())
        if not found:
            raise ShardError(f"--shard {text!r} is not k/N (e.g. --shard 2/4 for the second of four shards)")
        index, count = int(found[1]), int(found[2])
        if not 1 <= count <= MAX_SHARDS:
            raise ShardError(f"--shard {text!r}: N must be between 1 and {MAX_SHARDS}")
        if not 1 <= index <= count:
            raise ShardError(f"--shard {text!r}: k must be between 1 and N ({count}); shards count from 1")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def select(self, labels: Iterable[str], work: Mapping[str, int] | None = None) -> set[str]:
        """The labels of this shard."""
        return set(partition(labels, self.count, work)[self.index - 1])


def _stable(label: str) -> bytes:
    # Python's hash() is salted per process; shard jobs must agree, so use a digest.
    return hashlib.sha256(label.encode()).digest()


def partition(labels: Iterable[str], count: int, work: Mapping[str, int] | None = None) -> list[list[str]]:
    """`labels` in `count` parts, each sorted. `work` estimates each label's cost (default 1);
    labels with no work (nothing to build) are dealt out round-robin after the rest, so they never
    move a buildable target from one shard to another."""
    work = work or {}
    ordered = sorted(set(labels), key=lambda label: (-work.get(label, 1), _stable(label)))
    parts: list[list[str]] = [[] for _ in range(count)]
    least = [(0, shard) for shard in range(count)]          # (work so far, shard): a heap
    idle = 0
    for label in ordered:
        cost = work.get(label, 1)
        if cost > 0:
            load, shard = heapq.heappop(least)
            heapq.heappush(least, (load + cost, shard))
        else:
            shard, idle = idle % count, idle + 1
        parts[shard].append(label)
    return [sorted(part) for part in parts]
