"""The CI path: what a CI job pays, every command in a fresh clone with no `.dkb/`.

    python -m bench.ci_path [--packages 1000,10000] [--runs 3] [--turbo] [--no-remote] [--output table|json]

For each size, the generated workspace (see `bench.generate`) gets a commit that changes one
source file, and each timed command runs in its own `git clone --no-local` of it (a packed clone,
as CI fetches one; the clone is not timed):

* `affected`: `dkb affected --since HEAD~1`;
* `build_affected`: `dkb build --affected --since HEAD~1` (the pull-request job, no remote cache);
* with a warm OCI remote cache (a real loopback `docker-registry`, as the tests start it), filled
  once by `fill`: `dkb build //... --remote-cache-write` in a fresh clone of HEAD~1 (the main job
  after the previous merge), then `build_affected_remote` (the pull-request job reading it) and
  `build_remote` (`dkb build //...`, the main job after this merge: everything but the changed
  package comes from the remote);
* `affected_remote`: the goal row "fresh clone, `affected`, with the base revision's snapshot in
  the remote cache". Measured only once `dkb affected` takes `--remote-cache` (see
  `affected_reads_remote_cache`); until then the report says it was not measured.

`--turbo` adds Turborepo on the npm twin (`bench.turbo`), each in a fresh clone as well:
`turbo ls --affected` and `turbo run build --affected` (nothing cached: a fresh clone has no
`.turbo/`), alternating with dkb's commands round by round. Whole processes, wall time and peak
RSS (`bench.run.run_once`); one warm-up round, then the median of `--runs`. `fill` and
`build_remote` run `--build-runs` times without warm-up: they are slow.

REAPI: `REAPI_REMOTE_CACHE` is the hook for the `grpc://` remote cache; it is None until that
issue lands, and the REAPI rows are then reported as not measured.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import generate as gen
from bench import goals

# Set to a function (work dir -> context manager yielding a grpc:// URL) once dkb has a REAPI
# remote cache: it then gets the same fill and read rows as OCI, as `reapi_*`.
REAPI_REMOTE_CACHE: Callable[[Path], Any] | None = None
CI_ROWS = ["affected", "affected_remote", "build_affected", "build_affected_remote", "fill", "build_remote"]
TITLES = {
    "affected": "fresh clone, `dkb affected --since HEAD~1`",
    "affected_remote": "fresh clone, `dkb affected --since HEAD~1 --remote-cache` (warm OCI)",
    "build_affected": "fresh clone, `dkb build --affected --since HEAD~1`",
    "build_affected_remote": "fresh clone, `dkb build --affected --since HEAD~1 --remote-cache` (warm OCI)",
    "fill": "fresh clone of HEAD~1, `dkb build //... --remote-cache-write` (fills the OCI cache)",
    "build_remote": "fresh clone, `dkb build //... --remote-cache` (warm OCI: all but one from the remote)",
}
TURBO_TITLES = {
    "affected_ls": "fresh clone: `dkb affected --since HEAD~1` vs `turbo ls --affected`",
    "build_affected_run": "fresh clone: `dkb build --affected --since HEAD~1` vs `turbo run build --affected`",
}


class CIPathError(RuntimeError):
    """A measurement would not be honest: a command failed or answered something else."""


@dataclass
class Step:
    """One timed command: run in a fresh clone of `source` (at `rev`, default HEAD)."""
    argv: list[str]
    source: Path
    env: dict[str, str] | None = None
    check: Callable[[str], Any] | None = None
    rev: str | None = None


def fresh_clone(source: Path, dest: Path, rev: str | None = None) -> float:
    """A packed clone of `source` at `dest` (as CI fetches one), optionally at `rev`; seconds taken."""
    shutil.rmtree(dest, ignore_errors=True)
    started = time.perf_counter()
    gen.git(source, "clone", "-q", "--no-local", str(source), str(dest))
    if rev:
        gen.git(dest, "checkout", "-q", "--detach", rev)
    return time.perf_counter() - started


def rounds(steps: dict[str, Step], runs: int, scratch: Path, *, warmup: bool = True) -> dict[str, dict[str, Any]]:
    """Rounds of every step in turn (A B C ..., A B C ...), each run in a new clone; medians and peaks."""
    from bench.run import run_once, summarize

    samples: dict[str, list[Any]] = {k: [] for k in steps}
    clones: dict[str, list[float]] = {k: [] for k in steps}
    checked: dict[str, Any] = {}
    for i in range(runs + (1 if warmup else 0)):
        for name, step in steps.items():
            clone = scratch / f"clone-{name}"
            clones[name].append(fresh_clone(step.source, clone, step.rev))
            s = run_once(step.argv, clone, env=step.env)
            shutil.rmtree(clone, ignore_errors=True)
            if s.code != 0:
                raise CIPathError(f"`{' '.join(step.argv)}` exited {s.code}:\n{s.output[-1500:]}")
            if step.check is not None:
                checked[name] = step.check(s.output)
            if not (warmup and i == 0):
                samples[name].append(s)
    out = {}
    for name, step in steps.items():
        out[name] = {**summarize(samples[name]), "argv": [Path(step.argv[0]).name, *step.argv[1:]],
                     "clone_seconds": round(min(clones[name]), 3)}
        if name in checked:
            out[name]["checked"] = checked[name]
    return out


def affected_reads_remote_cache(dkb: str) -> bool:
    """Whether this dkb's `affected` takes `--remote-cache` (issue 17, requirement 2)."""
    out = subprocess.run([dkb, "affected", "--help"], capture_output=True, text=True, check=False).stdout
    return "--remote-cache" in out


def statuses(output: str) -> dict[str, int]:
    """Counts of each target status in `dkb build --output json`."""
    counts: dict[str, int] = {}
    for t in json.loads(output)["targets"]:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    return counts


def _counts(want: dict[str, int]) -> Callable[[str], dict[str, int]]:
    """A check that a build's status counts are exactly `want` (the fill builds all, ...)."""
    def check(output: str) -> dict[str, int]:
        got = statuses(output)
        if got != want:
            raise CIPathError(f"expected targets {want}, got {got}")
        return got
    return check


def _only(package: str) -> Callable[[str], list[str]]:
    from bench.turbo import listed_transforms

    def check(output: str) -> list[str]:
        found = listed_transforms(output)
        if found != [package]:
            raise CIPathError(f"dkb affected listed {found[:5]}, not just {package}")
        return found
    return check


def _built_only(package: str) -> Callable[[str], dict[str, int]]:
    def check(output: str) -> dict[str, int]:
        built = [t["label"] for t in json.loads(output)["targets"] if t["status"] == "built"]
        if built != ["//" + package]:
            raise CIPathError(f"dkb build --affected built {built[:5]}, not just //{package}")
        return statuses(output)
    return check


def dependents(edges: dict[str, list[str]], paths: dict[str, str], package: str) -> list[str]:
    """`package` and every package depending on it, transitively, as paths: what turbo must list."""
    users: dict[str, set[str]] = {}
    for name, deps in edges.items():
        for d in deps:
            users.setdefault(d, set()).add(name)
    start = next(n for n, p in paths.items() if p == package)
    seen, todo = {start}, [start]
    while todo:
        for u in users.get(todo.pop(), ()):
            if u not in seen:
                seen.add(u)
                todo.append(u)
    return sorted(paths[n] for n in seen)


def measure(work: Path, root: Path, n: int, runs: int, *, build_runs: int = 1, remote: bool = True,
            turbo: bool = False) -> dict[str, Any]:
    """Every CI-path row for the workspace `root` (n packages); with `turbo`, the fresh-clone pairs."""
    from bench.run import dkb_binary, one_file_commit

    dkb = dkb_binary()
    scratch = Path(tempfile.mkdtemp(prefix=f"ci-{n}-", dir=work))
    out: dict[str, Any] = {}
    try:
        if turbo:
            from bench import turbo as tb
            binary = tb.install_turbo(work)
            npm_root = tb.twin(work, root)  # before the commit, so the twin gets the same one
        changed = one_file_commit(root)
        package = "/".join(changed.split("/")[:4])  # pipelines/<domain>/<team>/<name>
        out["changed_file"] = changed
        steps = {"affected": Step([dkb, "affected", "--since", "HEAD~1"], root, check=_only(package)),
                 "build_affected": Step([dkb, "build", "--affected", "--since", "HEAD~1", "-o", "json"], root,
                                        check=_built_only(package))}
        if turbo:
            tb.mirror_commit(root, npm_root, changed)
            packages = tb.read_transforms(root)
            expected = dependents(tb.package_edges(packages), {p.name: p.path for p in packages}, package)
            scm = tb.turbo_env(TURBO_SCM_BASE="HEAD~1", TURBO_SCM_HEAD="HEAD")

            def same_set(output: str) -> list[str]:
                found = tb.listed_packages(output)
                if found != expected:
                    raise CIPathError(f"turbo ls --affected listed {len(found)} packages, expected {len(expected)}")
                return found

            def ran(output: str) -> int:
                m = tb._TASKS.search(output)
                if not m or m.group(1) != m.group(2) or int(m.group(2)) < len(expected):
                    raise CIPathError(f"turbo run build --affected did not run the affected tasks:\n{output[-1500:]}")
                return int(m.group(2))

            steps["turbo_ls"] = Step([str(binary), "ls", "--affected", "--skip-infer"], npm_root, scm, same_set)
            steps["turbo_run"] = Step([str(binary), "run", "build", "--affected", "--skip-infer"], npm_root, scm, ran)
        if remote:
            with oci_remote(work) as url:
                flags = ["--remote-cache", url, "--plain-http"]
                print(f"bench: ci {n:,}: filling the OCI remote cache from HEAD~1", file=sys.stderr)
                out.update(rounds({"fill": Step([dkb, "build", "//...", *flags, "--remote-cache-write", "-o", "json"],
                                                root, rev="HEAD~1", check=_counts({"built": n}))}, build_runs, scratch, warmup=False))
                steps["build_affected_remote"] = Step(steps["build_affected"].argv + flags, root,
                                                      check=_built_only(package))
                if affected_reads_remote_cache(dkb):
                    steps["affected_remote"] = Step(steps["affected"].argv + flags, root, check=_only(package))
                print(f"bench: ci {n:,}: {', '.join(steps)} in fresh clones (alternating)", file=sys.stderr)
                out.update(rounds(steps, runs, scratch))
                print(f"bench: ci {n:,}: build //... reading the OCI remote cache", file=sys.stderr)
                out.update(rounds({"build_remote": Step([dkb, "build", "//...", *flags, "-o", "json"], root,
                                                        check=_counts({"remote": n - 1, "built": 1}))}, build_runs, scratch, warmup=False))
        else:
            print(f"bench: ci {n:,}: {', '.join(steps)} in fresh clones (alternating)", file=sys.stderr)
            out.update(rounds(steps, runs, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if turbo:
        from bench.turbo import pair, turbo_version
        ls, run = out.pop("turbo_ls"), out.pop("turbo_run")
        out["turbo"] = {"turbo_version": turbo_version(binary), "affected_packages": len(ls.pop("checked")),
                        "turbo_run_tasks": run.pop("checked"),
                        "affected_ls": pair(out["affected"], ls),
                        "build_affected_run": pair(out["build_affected"], run)}
    for name in CI_ROWS:
        if name in out:
            out[name]["ms_per_package"] = 1000 * out[name]["seconds"] / n
    return out


class oci_remote:
    """A real loopback OCI registry (tests/registry.py's `Registry`), stopped on exit; yields its URL."""

    def __init__(self, work: Path):
        self.root = Path(tempfile.mkdtemp(prefix="ci-registry-", dir=work))

    def __enter__(self) -> str:
        from tests import registry
        if registry.BINARY is None:
            raise CIPathError(f"the OCI remote-cache rows need a registry: {registry.SKIP_REASON} "
                              "(or pass --no-remote)")
        self.reg = registry.Registry(self.root).start()
        return f"oci://{self.reg.host}/bench/cache"

    def __exit__(self, *exc: Any) -> None:
        self.reg.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def flatness(ci: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per row: ms per package at each size and whether the largest size stays within FLAT_TOLERANCE."""
    sizes = sorted(ci, key=int)
    out = {}
    for name in CI_ROWS:
        per = {n: ci[n][name]["ms_per_package"] for n in sizes if name in ci[n]}
        if len(per) < 2:
            continue
        first, last = per[min(per, key=int)], per[max(per, key=int)]
        growth = last / first if first else float("inf")
        out[name] = {"ms_per_package": per, "growth": growth, "flat": growth <= goals.FLAT_TOLERANCE}
    return out


def table(ci: dict[str, dict[str, Any]]) -> str:
    """Markdown: one row per CI measurement, one column per size (median, peak, ms per package)."""
    sizes = sorted(ci, key=int)
    flat = flatness(ci)
    out = ["| CI path (fresh clone each run) | " + " | ".join(f"{int(n):,} packages" for n in sizes)
           + (" | per package, largest / smallest |" if flat else " |"),
           "|---|" + "---|" * (len(sizes) + (1 if flat else 0))]
    for name in CI_ROWS:
        cells = []
        for n in sizes:
            m = ci[n].get(name)
            cells.append("not measured" if m is None else
                         f"{m['seconds']:.2f} s, {m['peak_mb']:.0f} MB, {m['ms_per_package']:.3f} ms/pkg")
        if flat:
            f = flat.get(name)
            cells.append("–" if f is None else f"{f['growth']:.2f}× ({'flat' if f['flat'] else '**not flat**'})")
        out.append(f"| {TITLES[name]} | " + " | ".join(cells) + " |")
    turbo = {n: c["turbo"] for n, c in ci.items() if "turbo" in c}
    if turbo:
        ts = sorted(turbo, key=int)
        out += ["", "| fresh clone vs Turborepo (alternating) | " + " | ".join(f"{int(n):,} packages" for n in ts) + " |",
                "|---|" + "---|" * len(ts)]
        for name, title in TURBO_TITLES.items():
            cells = [f"{turbo[n][name]['dkb']['seconds']:.2f} s vs {turbo[n][name]['turbo']['seconds']:.2f} s: "
                     f"**{turbo[n][name]['ratio']:.2f}**" for n in ts]
            out.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from bench.run import machine, workspace

    ap = argparse.ArgumentParser(prog="python -m bench.ci_path", description=__doc__.splitlines()[0])
    ap.add_argument("--packages", default="1000", help="comma-separated sizes, e.g. 1000,10000,50000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=3, help="timed rounds (after one warm-up round)")
    ap.add_argument("--build-runs", type=int, default=1, help="runs of the full builds (fill, build_remote)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "dkb-bench")
    ap.add_argument("--no-remote", action="store_true", help="skip the remote-cache rows (no registry needed)")
    ap.add_argument("--turbo", action="store_true", help="also turbo on the npm twin, in fresh clones (needs npm)")
    ap.add_argument("--output", choices=["table", "json"], default="table")
    args = ap.parse_args(argv)
    try:
        sizes = [int(s) for s in args.packages.split(",") if s.strip()]
    except ValueError:
        print(f"bench.ci_path: --packages {args.packages!r}: expected sizes like 1000,10000", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"command": shlex.join(["python", "-m", "bench.ci_path", *(sys.argv[1:] if argv is None
                                                                                     else argv)]),
                              "runs": args.runs, "seed": args.seed, "machine": machine(), "ci": {}}
    try:
        for n in sizes:
            report["ci"][str(n)] = measure(args.work, workspace(args.work, n, args.seed), n, args.runs,
                                           build_runs=args.build_runs, remote=not args.no_remote, turbo=args.turbo)
    except (CIPathError, subprocess.CalledProcessError) as exc:
        print(f"bench.ci_path: {exc}", file=sys.stderr)
        return 2
    report["flatness"] = flatness(report["ci"])
    report["goals"] = goals.verdicts(report)
    if args.output == "json":
        print(json.dumps(report, indent=2))
    else:
        print(table(report["ci"]))
        print()
        print(goals.table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
