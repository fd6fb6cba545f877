"""Time `dkb build --shard k/N` as a CI matrix runs it: every shard in a fresh clone of its own.

    python -m bench.shards [--packages 1000] [--shards 1,2,4] [--work DIR] [--output table|json]

For each N, the N shard builds run one after another, each in a fresh clone with no .dkb/ (a CI
job's view), and the table reports their sum (the machine time the matrix costs) and their maximum
(its wall time with N runners). The sum staying near N=1 shows that no shard repeats another's
work; what it adds is each job's own load of the workspace. Every run also checks that the
shards' targets are disjoint and together are the whole build.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import generate as gen


def _build(clone: Path, shard: str) -> tuple[float, list[str]]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dkbuild", "build", "--shard", shard, "-o", "json"],
                          cwd=clone, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bench.shards: dkb build --shard {shard} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return elapsed, [t["label"] for t in json.loads(proc.stdout)["targets"]]


def measure(source: Path, counts: list[int], work: Path) -> list[dict[str, Any]]:
    rows = []
    for count in counts:
        times, seen = [], []
        for k in range(1, count + 1):
            clone = work / f"clone-{count}-{k}"
            shutil.rmtree(clone, ignore_errors=True)
            gen.git(work, "clone", "-q", str(source), str(clone))
            elapsed, labels = _build(clone, f"{k}/{count}")
            times.append(elapsed)
            seen.extend(labels)
            shutil.rmtree(clone)
        if len(seen) != len(set(seen)):
            raise SystemExit(f"bench.shards: shards of {count} overlap")
        rows.append({"shards": count, "targets": len(seen), "sum_s": round(sum(times), 3),
                     "max_s": round(max(times), 3), "each_s": [round(t, 3) for t in times]})
    totals = {row["targets"] for row in rows}
    if len(totals) != 1:
        raise SystemExit(f"bench.shards: the shards do not cover the same targets for every N: {rows}")
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.shards", description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=1000)
    ap.add_argument("--shards", default="1,2,4", help="comma-separated shard counts")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dkb-bench-shards")
    ap.add_argument("--output", choices=["table", "json"], default="table")
    args = ap.parse_args(argv)
    source = args.work / f"ws-{args.packages}"
    if not source.exists():
        gen.generate(source, args.packages)
    rows = measure(source, [int(n) for n in args.shards.split(",")], args.work)
    if args.output == "json":
        print(json.dumps({"packages": args.packages, "rows": rows}, indent=2))
        return 0
    print(f"{'shards':>6}  {'targets':>7}  {'sum of jobs':>11}  {'slowest job':>11}")
    for row in rows:
        print(f"{row['shards']:>6}  {row['targets']:>7}  {row['sum_s']:>10.2f}s  {row['max_s']:>10.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
