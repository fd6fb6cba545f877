"""Fill and read the shared remote cache on the bench workspace: OCI registry vs REAPI server.

    python -m bench.remote_caches [--packages 1000] [--runs 3] [--work DIR] [--output table|json]

Both servers are real and on loopback, started fresh (empty) for each round: CNCF distribution
(`docker-registry`, as in tests/registry.py) for `oci://`, BuildGrid (cache-only, disk CAS, from
`.venv-buildgrid`, as in tests/buildgrid.py) for `grpc://`. Each round, in the same run:

1. fill: `dkb build //... --remote-cache URL --remote-cache-write` with the local cache warm, so
   every target is a local hit and the time is the upload of every entry (OCI, then REAPI);
2. read: `.dkb/` deleted, `dkb build //... --remote-cache URL`: every target is fetched (OCI, then
   REAPI).

Every fill must report all targets `cached` and every read all `remote`, with no warning;
otherwise the benchmark stops with an error instead of timing a fallback to local building.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import generate as gen
from bench.run import dkb_binary, machine, machine_line, run_once, workspace

CACHES = ("oci", "reapi")
TITLES = {"oci": "OCI registry (docker-registry, loopback)", "reapi": "REAPI (BuildGrid 0.9.1, loopback)"}


class BenchError(Exception):
    pass


def timed_build(root: Path, args: list[str], expect: str, report: Path) -> float:
    """One whole `dkb build //...`; its wall time, after checking every target's status."""
    sample = run_once([dkb_binary(), "build", "//...", "--report", str(report), *args], root)
    if sample.code != 0:
        raise BenchError(f"dkb build {' '.join(args)} exited {sample.code}:\n{sample.output[-2000:]}")
    document = json.loads(report.read_text())
    statuses = {t["status"] for t in document["targets"]}
    if statuses != {expect} or document.get("warnings"):
        raise BenchError(f"dkb build {' '.join(args)}: expected every target {expect!r}, got {sorted(statuses)}; "
                         f"warnings: {document.get('warnings')}")
    return sample.seconds


def one_round(root: Path, scratch: Path) -> dict[str, dict[str, float]]:
    from tests.buildgrid import BuildGrid
    from tests.registry import Registry

    registry = Registry(scratch / "registry").start()
    buildgrid = BuildGrid(scratch / "buildgrid").start()
    urls = {"oci": ["--remote-cache", f"oci://{registry.host}/bench/cache", "--plain-http"],
            "reapi": ["--remote-cache", buildgrid.url()]}
    report = scratch / "report.json"
    out: dict[str, dict[str, float]] = {c: {} for c in CACHES}
    try:
        for cache in CACHES:
            out[cache]["fill"] = timed_build(root, [*urls[cache], "--remote-cache-write"], "cached", report)
            print(f"bench:   fill {cache}: {out[cache]['fill']:.2f}s", file=sys.stderr)
        for cache in CACHES:
            shutil.rmtree(root / ".dkb")
            out[cache]["read"] = timed_build(root, urls[cache], "remote", report)
            print(f"bench:   read {cache}: {out[cache]['read']:.2f}s", file=sys.stderr)
    finally:
        buildgrid.stop()
        registry.stop()
    return out


def compare(work: Path, n: int, seed: int, runs: int) -> dict[str, Any]:
    root = workspace(work, n, seed)
    print(f"bench: {n} packages: local build (warms .dkb/ for the fills)", file=sys.stderr)
    shutil.rmtree(root / ".dkb", ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="dkb-bench-remote-") as tmp:
        local = timed_build(root, [], "built", Path(tmp) / "report.json")
        rounds = []
        for i in range(runs):
            print(f"bench: {n} packages: remote caches, round {i + 1} of {runs}", file=sys.stderr)
            rounds.append(one_round(root, Path(tmp) / f"round-{i}"))
    result: dict[str, Any] = {"packages": n, "local_first_build_s": local, "runs": runs}
    for cache in CACHES:
        for phase in ("fill", "read"):
            samples = [r[cache][phase] for r in rounds]
            result.setdefault(cache, {})[phase] = {"seconds": statistics.median(samples), "min_seconds": min(samples),
                                                   "samples": samples}
    return result


def table(result: dict[str, Any]) -> str:
    rows = [f"| {result['packages']:,} packages, median (min) of {result['runs']} | fill (`--remote-cache-write`, "
            "local hits) | read (empty `.dkb/`, all remote) |", "|---|---|---|"]
    for cache in CACHES:
        cells = [f"{result[cache][p]['seconds']:.2f} s ({result[cache][p]['min_seconds']:.2f})" for p in ("fill", "read")]
        rows.append(f"| {TITLES[cache]} | " + " | ".join(cells) + " |")
    rows.append(f"| local build, no remote cache (once) | {result['local_first_build_s']:.2f} s | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.remote_caches", description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=3, help="rounds, each on fresh servers")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dkb-bench")
    ap.add_argument("--output", choices=["table", "json"], default="table")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        result = compare(args.work, args.packages, args.seed, args.runs)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    result["workspace"] = gen.stats(gen.plan(args.packages, args.seed))
    result["machine"] = machine()
    if args.output == "json":
        print(json.dumps(result, indent=2))
    else:
        print(table(result))
        print(f"\nMachine: {machine_line(result['machine'])}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
