"""Measure dkb on synthetic workspaces and compare with the DESIGN §8 budgets.

    python -m bench.run [--packages 1000,10000] [--runs 3] [--work DIR] [--output table|json]

For each size: generate (or reuse) a workspace under --work, then time each command as a user runs
it — a whole `dkb` process started from the shell, wall clock from fork to exit — after one warm-up,
and report the median of --runs runs plus the peak RSS (ru_maxrss from wait4, the whole process).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench import generate as gen

# DESIGN §8: seconds, per size. Measurements without a budget report numbers only.
BUDGETS = {
    "cold": {1000: 2.0, 10000: 15.0},
    "noop_build": {1000: 0.3, 10000: 1.0},
    "affected": {1000: 0.5, 10000: 2.0},
    "query_rdeps": {1000: 0.3, 10000: 1.0},
}
MEASUREMENTS = ["cold", "lint", "first_build", "noop_build", "affected", "query_rdeps"]
TITLES = {"cold": "cold load (no .dkb/)", "lint": "dkb lint //...", "first_build": "first dkb build //...",
          "noop_build": "warm no-op build", "affected": "affected --since HEAD~1",
          "query_rdeps": "query rdeps(//..., X)"}


@dataclass
class Sample:
    seconds: float
    peak_mb: float
    code: int


def dkb_binary() -> str:
    """The `dkb` a user would type: next to this interpreter (the venv), else on PATH."""
    here = Path(sys.executable).parent / "dkb"
    return str(here) if here.exists() else (shutil.which("dkb") or "dkb")


def run_once(argv: list[str], cwd: Path) -> Sample:
    """Run one whole process; wall time and its peak RSS (Linux ru_maxrss is in KiB)."""
    # Output goes to a file, not a pipe: a full pipe would block the child and skew the timing.
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-2000:]
            print(f"bench: `{' '.join(argv)}` exited {code}\n{tail}", file=sys.stderr)
    return Sample(elapsed, usage.ru_maxrss / 1024, code)


def measure(argv: list[str], cwd: Path, runs: int, before: Callable[[], None] | None = None,
            warmup: bool = True) -> dict[str, float]:
    samples = []
    for i in range(runs + (1 if warmup else 0)):
        if before:
            before()
        s = run_once(argv, cwd)
        if warmup and i == 0:
            continue
        samples.append(s)
    return {"seconds": statistics.median(s.seconds for s in samples),
            "min_seconds": min(s.seconds for s in samples),
            "peak_mb": max(s.peak_mb for s in samples),
            "ok": all(s.code == 0 for s in samples), "runs": len(samples)}


def workspace(work: Path, n: int, seed: int) -> Path:
    root = work / f"ws-{n}-seed{seed}"
    if not (root / ".git").exists():
        if root.exists():
            shutil.rmtree(root)
        t = time.perf_counter()
        gen.generate(root, n, seed)
        print(f"bench: generated {n} packages in {time.perf_counter() - t:.1f}s -> {root}", file=sys.stderr)
    return root


def hub_dataset(root: Path) -> str:
    """The most-read source dataset (largest fan-out), as a label: a realistic rdeps() target."""
    reads: dict[str, int] = {}
    for manifest in (root / "pipelines").rglob("dk.yaml"):
        for line in manifest.read_text().splitlines():
            if line.strip().startswith("- dataset: src-"):
                name = line.split(":", 1)[1].strip()
                reads[name] = reads.get(name, 0) + 1
    name = max(sorted(reads), key=lambda k: reads[k])
    path = next((root / "datasets").glob(f"*/*/{name}/dk.yaml"))
    return "//" + path.parent.relative_to(root).as_posix()


def one_file_commit(root: Path) -> str:
    """Change one source file of a mid-DAG package and commit it: HEAD~1..HEAD differs by one file."""
    mains = sorted((root / "pipelines").glob("*/*/*/src/*/main.py"))
    target = mains[len(mains) // 2]
    stamp = int(gen.git(root, "rev-list", "--count", "HEAD").strip())
    with target.open("a") as fh:
        fh.write(f"# bench edit {stamp}\n")
    gen.git(root, "add", str(target.relative_to(root)))
    gen.git(root, "commit", "-q", "-m", f"bench: one-file change {stamp}")
    return str(target.relative_to(root))


def bench_size(work: Path, n: int, seed: int, runs: int, build_runs: int) -> dict[str, dict[str, float]]:
    root = workspace(work, n, seed)
    dkb = dkb_binary()
    cache = root / ".dkb"

    def wipe() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    out: dict[str, dict[str, float]] = {}
    print(f"bench: {n} packages: cold load", file=sys.stderr)
    out["cold"] = measure([dkb, "query", "//..."], root, runs, before=wipe)
    print(f"bench: {n} packages: lint", file=sys.stderr)
    out["lint"] = measure([dkb, "lint", "//..."], root, runs)
    print(f"bench: {n} packages: first build x{build_runs}", file=sys.stderr)
    out["first_build"] = measure([dkb, "build", "//..."], root, build_runs, before=wipe, warmup=False)
    print(f"bench: {n} packages: warm no-op build", file=sys.stderr)
    out["noop_build"] = measure([dkb, "build", "//..."], root, runs)
    changed = one_file_commit(root)
    print(f"bench: {n} packages: affected after editing {changed}", file=sys.stderr)
    out["affected"] = measure([dkb, "affected", "--since", "HEAD~1"], root, runs)
    hub = hub_dataset(root)
    print(f"bench: {n} packages: query rdeps(//..., {hub})", file=sys.stderr)
    out["query_rdeps"] = measure([dkb, "query", f"rdeps(//..., {hub})"], root, runs)
    for name, m in out.items():
        budget = BUDGETS.get(name, {}).get(n)
        m["budget"] = budget
        m["over_budget"] = budget is not None and m["seconds"] > budget
    return out


def table(results: dict[int, dict[str, dict[str, float]]]) -> str:
    sizes = sorted(results)
    head = ["measurement"] + [f"{n:,} pkgs: median s / peak MB / budget" for n in sizes]
    rows = [head]
    for name in MEASUREMENTS:
        row = [TITLES[name]]
        for n in sizes:
            m = results[n].get(name)
            if m is None:
                row.append("-")
                continue
            budget = f"≤{m['budget']:g}s" if m["budget"] is not None else "-"
            flag = " OVER" if m["over_budget"] else ""
            fail = " (exit≠0)" if not m["ok"] else ""
            row.append(f"{m['seconds']:.2f}s / {m['peak_mb']:.0f} MB / {budget}{flag}{fail}")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    ap.add_argument("--packages", default="1000", help="comma-separated sizes, e.g. 1000,10000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per measurement (after one warm-up)")
    ap.add_argument("--build-runs", type=int, default=1, help="timed first builds (each from an empty .dkb/)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dkb-bench",
                    help="where generated workspaces are cached")
    ap.add_argument("--output", choices=["table", "json"], default="table")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a measurement is over budget")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.packages.split(",") if s.strip()]
    args.work.mkdir(parents=True, exist_ok=True)
    results = {n: bench_size(args.work, n, args.seed, args.runs, args.build_runs) for n in sizes}
    if args.output == "json":
        print(json.dumps({"runs": args.runs, "seed": args.seed, "cpus": os.cpu_count(),
                          "results": {str(n): r for n, r in results.items()}}, indent=2))
    else:
        print(table(results))
    over = [(n, k) for n, r in results.items() for k, m in r.items() if m["over_budget"]]
    for n, k in over:
        print(f"bench: OVER BUDGET at {n:,} packages: {TITLES[k]}", file=sys.stderr)
    return 1 if over and args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
