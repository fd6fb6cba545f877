"""The budgets of issue 17 (CI, first build, memory at 1,000 to 50,000 packages), as data.

Each `Goal` names one figure of a bench report (`bench.run` or `bench.ci_path`, `--output json`)
and the limit it must meet at one size. `verdicts` reads a report and says, for every goal, the
figure, the limit and whether it is met; a figure the run did not measure is "not measured",
never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# "Time per package must stay flat from 1,000 to 50,000": the bench reads "flat" as the largest
# size's time per package at most this many times the smallest size's (both measured in one run).
FLAT_TOLERANCE = 1.25


@dataclass(frozen=True)
class Goal:
    row: str          # the row
    size: int         # packages
    path: tuple[str, ...]  # where the figure is: report[path[0]][str(size)][path[1]]...
    kind: str         # seconds | ratio | packages_per_s | peak_mb
    limit: float

    @property
    def text(self) -> str:
        if self.kind == "packages_per_s":
            return f"≥ {self.limit:g} packages/s"
        if self.kind == "ratio":
            return f"≤ {self.limit:g}× turbo"
        return f"≤ {self.limit:g} s" if self.kind == "seconds" else f"≤ {self.limit:g} MB"


CI_AFFECTED = "fresh clone, `affected --since HEAD~1`"
CI_AFFECTED_REMOTE = "fresh clone, `affected`, base revision's snapshot in the remote cache"
FIRST_BUILD = "first `build //...` (package artifacts)"
COLD_MEMORY = "peak memory, cold load"
NOOP = "warm no-op"
WARM_AFFECTED = "warm `affected`"
ROWS = [CI_AFFECTED, CI_AFFECTED_REMOTE, FIRST_BUILD, COLD_MEMORY, NOOP, WARM_AFFECTED]

_CI = ("ci",)
GOALS: list[Goal] = [
    Goal(CI_AFFECTED, 1000, _CI + ("affected", "seconds"), "seconds", 0.3),
    Goal(CI_AFFECTED, 1000, _CI + ("turbo", "affected_ls", "ratio"), "ratio", 2.0),
    Goal(CI_AFFECTED, 10000, _CI + ("affected", "seconds"), "seconds", 1.5),
    Goal(CI_AFFECTED, 50000, _CI + ("affected", "seconds"), "seconds", 8.0),
    Goal(CI_AFFECTED_REMOTE, 10000, _CI + ("affected_remote", "seconds"), "seconds", 0.8),
    Goal(CI_AFFECTED_REMOTE, 50000, _CI + ("affected_remote", "seconds"), "seconds", 3.0),
    Goal(FIRST_BUILD, 1000, ("results", "first_build", "seconds"), "packages_per_s", 500),
    Goal(FIRST_BUILD, 10000, ("results", "first_build", "seconds"), "packages_per_s", 500),
    Goal(FIRST_BUILD, 50000, ("results", "first_build", "seconds"), "packages_per_s", 400),
    Goal(COLD_MEMORY, 1000, ("results", "cold", "peak_mb"), "peak_mb", 80),
    Goal(COLD_MEMORY, 10000, ("results", "cold", "peak_mb"), "peak_mb", 350),
    Goal(COLD_MEMORY, 50000, ("results", "cold", "peak_mb"), "peak_mb", 1536),
    Goal(NOOP, 1000, ("turbo", "noop", "ratio"), "ratio", 0.6),
    Goal(NOOP, 10000, ("results", "noop_build", "seconds"), "seconds", 0.4),
    Goal(NOOP, 50000, ("results", "noop_build", "seconds"), "seconds", 2.0),
    Goal(WARM_AFFECTED, 1000, ("turbo", "affected_ls", "ratio"), "ratio", 1.0),
    Goal(WARM_AFFECTED, 10000, ("results", "affected", "seconds"), "seconds", 0.8),
    Goal(WARM_AFFECTED, 50000, ("results", "affected", "seconds"), "seconds", 4.0),
]


def figure(report: dict[str, Any], goal: Goal) -> float | None:
    """The goal's figure in `report`, or None when that run did not measure it."""
    node: Any = (report.get(goal.path[0]) or {}).get(str(goal.size))
    for key in goal.path[1:]:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    if node is None:
        return None
    if goal.kind == "packages_per_s":
        return goal.size / node if node > 0 else float("inf")
    return float(node)


def verdicts(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per goal: row, size, budget text, figure (None if not measured) and met."""
    out = []
    for g in GOALS:
        value = figure(report, g)
        met = None if value is None else (value >= g.limit if g.kind == "packages_per_s" else value <= g.limit)
        out.append({"row": g.row, "size": g.size, "kind": g.kind, "budget": g.text, "limit": g.limit,
                    "figure": value, "met": met})
    return out


def _value(v: dict[str, Any]) -> str:
    x = v["figure"]
    if x is None:
        return "not measured"
    return {"seconds": f"{x:.2f} s", "ratio": f"{x:.2f}×", "packages_per_s": f"{x:.0f} packages/s",
            "peak_mb": f"{x:.0f} MB"}[v["kind"]]


def table(report: dict[str, Any]) -> str:
    """Markdown: the issue's goal table with this run's figure and verdict in every cell."""
    vs = verdicts(report)
    sizes = sorted({v["size"] for v in vs})
    out = ["| goal (issue 17) | " + " | ".join(f"{n:,}" for n in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for row in ROWS:
        cells = []
        for n in sizes:
            here = [v for v in vs if v["row"] == row and v["size"] == n]
            mark = {True: "met", False: "**OVER**", None: "–"}
            cells.append("; ".join(f"{v['budget']}: {_value(v)}" + (f", {mark[v['met']]}" if v["met"] is not None else "")
                                   for v in here) or "–")
        out.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def missed(report: dict[str, Any]) -> list[str]:
    return [f"{v['row']} at {v['size']:,} packages: {_value(v)}, budget {v['budget']}"
            for v in verdicts(report) if v["met"] is False]
