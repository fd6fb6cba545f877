"""dkb side by side with Turborepo on the same dependency graph.

    python -m bench.turbo DKB_WORKSPACE DEST      # write the npm-workspaces twin of a bench workspace

`npm_workspace` turns a workspace made by `bench.generate` into an npm-workspaces git repository
with one package per transform, at the same path, depending on exactly the packages it depends on
in dkb (X depends on Y when X reads a dataset Y writes). `compare` installs a pinned `turbo` once,
then times dkb and turbo alternately (A B A B ...) on the two repositories: the warm no-op build
against a fully cached `turbo run build`, and `dkb affected` against `turbo run build --affected`
and `turbo ls --affected` after the same one-file commit in both. `bench.run --turbo` calls it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench import generate as gen

TURBO_VERSION = "2.11.11"  # pinned: `npm view turbo version` when this was written
WORKSPACE_GLOB = "pipelines/*/*/*"  # where bench.generate puts transform packages
BUILD_OUTPUT = "build.txt"
# The build is trivial on purpose: we time the tool's bookkeeping (hashing, cache lookup), not work.
BUILD_SCRIPT = f"node -e \"require('fs').writeFileSync('{BUILD_OUTPUT}', 'built\\n')\""
GITIGNORE = f".dkb/\nnode_modules/\n.turbo/\n{BUILD_OUTPUT}\n"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TurboError(RuntimeError):
    """The comparison cannot be made honestly (npm missing, turbo did not hit its cache, ...)."""


# --- the npm twin of a dkb workspace -------------------------------------------------------------

@dataclass(frozen=True)
class Package:
    name: str
    path: str  # relative to the workspace root, POSIX
    reads: tuple[str, ...]
    writes: tuple[str, ...]


def read_transforms(dkb_root: Path) -> list[Package]:
    """Every Transform package of a bench workspace, from its manifests, sorted by path."""
    out = []
    for manifest in sorted((dkb_root / "pipelines").rglob("dk.yaml")):
        for doc in yaml.load_all(manifest.read_text(), Loader=_Loader):
            if not isinstance(doc, dict) or doc.get("kind") != "Transform":
                continue
            spec = doc.get("spec") or {}
            out.append(Package(doc["metadata"]["name"], manifest.parent.relative_to(dkb_root).as_posix(),
                               tuple(i["dataset"] for i in spec.get("inputs") or []),
                               tuple(o["dataset"] for o in spec.get("outputs") or [])))
    return out


def package_edges(packages: list[Package]) -> dict[str, list[str]]:
    """Package name -> sorted names of the packages it depends on (producers of what it reads)."""
    producer = {d: p.name for p in packages for d in p.writes}
    return {p.name: sorted({producer[d] for d in p.reads if d in producer} - {p.name}) for p in packages}


def npm_version() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise TurboError("npm is not on PATH: the Turborepo comparison needs Node.js and npm")
    return subprocess.run([npm, "--version"], check=True, capture_output=True, text=True).stdout.strip()


def _json(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


def npm_workspace(dkb_root: Path, dest: Path, *, npm: str | None = None, lockfile: bool = True) -> dict[str, list[str]]:
    """Write the npm-workspaces twin of `dkb_root` into `dest` and commit it; return its edges.

    Every file git tracks in `dkb_root` is copied as is (so turbo hashes the same bytes dkb does),
    and each transform directory gains a package.json. `npm` is the version for `packageManager`
    (default: the local npm's). `lockfile=False` skips `npm install --package-lock-only`, so the
    generator can be tested without npm.
    """
    dkb_root, dest = Path(dkb_root), Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise TurboError(f"{dest} is not empty")
    packages = read_transforms(dkb_root)
    edges = package_edges(packages)
    tracked = gen.git(dkb_root, "ls-files", "-z").split("\0")
    for rel in filter(None, tracked):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dkb_root / rel, target)
    for p in packages:
        body: dict[str, Any] = {"name": p.name, "version": "1.0.0", "private": True,
                                "scripts": {"build": BUILD_SCRIPT}}
        if edges[p.name]:
            body["dependencies"] = {d: "*" for d in edges[p.name]}
        (dest / p.path / "package.json").write_text(_json(body))
    (dest / "package.json").write_text(_json({
        "name": "dkb-bench-twin", "version": "0.0.0", "private": True,
        "packageManager": f"npm@{npm or npm_version()}", "workspaces": [WORKSPACE_GLOB]}))
    (dest / "turbo.json").write_text(_json({
        "ui": "stream",
        "tasks": {"build": {"dependsOn": ["^build"], "outputs": [BUILD_OUTPUT]}}}))
    (dest / ".gitignore").write_text(GITIGNORE)
    if lockfile:
        # No external dependencies, so npm resolves workspaces only and fetches nothing.
        subprocess.run(["npm", "install", "--package-lock-only", "--offline", "--ignore-scripts",
                        "--no-audit", "--no-fund"], cwd=dest, check=True, capture_output=True, text=True)
    gen.git(dest, "init", "-q", "-b", "main")
    gen.git(dest, "config", "user.name", "bench")
    gen.git(dest, "config", "user.email", "bench@example.com")
    gen.git(dest, "add", "-A")
    gen.git(dest, "commit", "-q", "-m", f"npm twin of a dkb bench workspace: {len(packages)} packages")
    return edges


def mirror_commit(dkb_root: Path, npm_root: Path, rel: str) -> None:
    """Give the twin the same content for `rel` as the dkb workspace and commit: same change in both."""
    shutil.copyfile(dkb_root / rel, npm_root / rel)
    gen.git(npm_root, "add", rel)
    stamp = gen.git(npm_root, "rev-list", "--count", "HEAD").strip()
    gen.git(npm_root, "commit", "-q", "-m", f"bench: mirror one-file change {stamp}")


# --- turbo itself ---------------------------------------------------------------------------------

def install_turbo(work: Path, version: str = TURBO_VERSION) -> Path:
    """The native turbo binary, installed once under `work/turbo-tool` (later runs are offline)."""
    prefix = work / "turbo-tool"
    shim = prefix / "node_modules" / ".bin" / "turbo"
    have = prefix / "node_modules" / "turbo" / "package.json"
    if not have.exists() or json.loads(have.read_text()).get("version") != version:
        npm_version()  # a clear error when npm is missing
        print(f"bench: installing turbo@{version} into {prefix}", file=sys.stderr)
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--save-exact",
                        f"turbo@{version}"], check=True, capture_output=True, text=True)
    # Time the native binary, not the Node.js launcher in node_modules/.bin: turbo's best case.
    out = subprocess.run([str(shim), "bin"], check=True, capture_output=True, text=True, env=turbo_env()).stdout
    binary = Path(out.strip().splitlines()[-1])
    if not binary.exists():
        raise TurboError(f"`turbo bin` printed {out!r}, not a path")
    return binary


def turbo_env(**scm: str) -> dict[str, str]:
    """No telemetry, no update check, no remote cache: turbo runs offline and locally only."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TURBO_", "VERCEL_")) and k not in ("CI",)}
    env.update(TURBO_TELEMETRY_DISABLED="1", DO_NOT_TRACK="1", TURBO_NO_UPDATE_NOTIFIER="1",
               TURBO_PRINT_VERSION_DISABLED="1", **scm)
    return env


def turbo_version(binary: Path) -> str:
    return subprocess.run([str(binary), "--version"], check=True, capture_output=True, text=True,
                          env=turbo_env()).stdout.strip()


_CACHED = re.compile(r"Cached:\s+(\d+) cached, (\d+) total")
_TASKS = re.compile(r"Tasks:\s+(\d+) successful, (\d+) total")
_LS = re.compile(r"^(\d+) (?:no )?packages?\b", re.MULTILINE)  # turbo prints "0 no packages (npm)"


def full_cache_hit(output: str) -> tuple[int, int]:
    """(cached, total) from `turbo run` output; TurboError unless every task was a cache hit."""
    m, t = _CACHED.search(output), _TASKS.search(output)
    if not m or not t:
        raise TurboError(f"no task summary in turbo's output:\n{output[-1500:]}")
    cached, total = int(m.group(1)), int(m.group(2))
    if total == 0:  # e.g. --affected compared with the wrong base: nothing to time
        raise TurboError(f"turbo ran no tasks:\n{output[-1500:]}")
    if cached != total or int(t.group(1)) != int(t.group(2)) or "FULL TURBO" not in output:
        raise TurboError(f"turbo did not hit its cache for every task ({cached}/{total} cached):\n{output[-1500:]}")
    return cached, total


def listed_packages(output: str) -> list[str]:
    """The package paths `turbo ls` lists (`  name path` lines), checked against its header count."""
    m = _LS.search(output)
    if not m:
        raise TurboError(f"no package count in `turbo ls` output:\n{output[-1500:]}")
    paths = sorted(line.split()[1] for line in output.splitlines()
                   if line.startswith("  ") and len(line.split()) == 2)
    if len(paths) != int(m.group(1)):
        raise TurboError(f"`turbo ls` says {m.group(1)} packages but lists {len(paths)}:\n{output[-1500:]}")
    return paths


_DKB_SUMMARY = re.compile(r"(\d+) target\(s\): (\d+) cached\b")


def dkb_all_cached(output: str) -> int:
    """How many targets a warm `dkb build` found cached; TurboError unless that was all of them."""
    m = _DKB_SUMMARY.search(output)
    if not m or m.group(1) != m.group(2):
        raise TurboError(f"dkb build was not a no-op:\n{output[-1500:]}")
    return int(m.group(1))


def listed_transforms(output: str) -> list[str]:
    """The transform packages in `dkb affected` output, as paths (datasets it may list are left out)."""
    return sorted(line[2:] for line in output.splitlines() if line.startswith("//pipelines/"))


# --- the side-by-side ------------------------------------------------------------------------------

@dataclass
class Cmd:
    """One side of a comparison: argv in cwd, with env, and a check of each run's output."""
    argv: list[str]
    cwd: Path
    env: dict[str, str] | None = None
    check: Callable[[str], Any] | None = None


def alternate(cmds: dict[str, Cmd], runs: int) -> dict[str, dict[str, Any]]:
    """One warm-up of each, then `runs` rounds of A B (C ...): drift in machine load hits all alike."""
    from bench.run import run_once, summarize

    samples: dict[str, list[Any]] = {k: [] for k in cmds}
    checked: dict[str, Any] = {}
    for i in range(runs + 1):
        for name, c in cmds.items():
            s = run_once(c.argv, c.cwd, env=c.env)
            if s.code != 0:
                raise TurboError(f"`{' '.join(c.argv)}` exited {s.code}:\n{s.output[-1500:]}")
            if c.check is not None and i > 0:
                checked[name] = c.check(s.output)  # the warm-up may do real work; timed runs may not
            if i > 0:
                samples[name].append(s)
    out = {}
    for name, c in cmds.items():
        out[name] = {**summarize(samples[name]), "argv": [Path(c.argv[0]).name, *c.argv[1:]]}
        if name in checked:
            out[name]["checked"] = checked[name]
    return out


def twin(work: Path, dkb_root: Path) -> Path:
    """The cached npm twin of `dkb_root` (rebuilt when missing)."""
    dest = work / f"npm-{dkb_root.name}"
    if not (dest / ".git").exists():
        if dest.exists():
            shutil.rmtree(dest)
        t = time.perf_counter()
        npm_workspace(dkb_root, dest)
        print(f"bench: npm twin written in {time.perf_counter() - t:.1f}s -> {dest}", file=sys.stderr)
    return dest


def compare(work: Path, dkb_root: Path, runs: int) -> dict[str, Any]:
    """dkb vs turbo on `dkb_root` and its npm twin; medians, peaks and ratios (dkb / turbo)."""
    from bench.run import dkb_binary, one_file_commit

    binary = install_turbo(work)
    npm_root = twin(work, dkb_root)
    n = len(read_transforms(dkb_root))
    dkb = dkb_binary()
    env = turbo_env()
    turbo_build = [str(binary), "run", "build", "--skip-infer"]

    # Fill turbo's local cache (the first run builds everything) and dkb's, then time warm runs.
    print(f"bench: turbo: filling the cache ({n} packages)", file=sys.stderr)
    subprocess.run(turbo_build, cwd=npm_root, env=env, check=True, capture_output=True)
    subprocess.run([dkb, "build", "//..."], cwd=dkb_root, check=True, capture_output=True)

    def all_cached(output: str) -> int:
        cached, total = full_cache_hit(output)
        if total != n:
            raise TurboError(f"turbo ran {total} build tasks, expected {n}")
        return cached

    print(f"bench: {n} packages: dkb build vs turbo run build (alternating)", file=sys.stderr)
    noop = alternate({"dkb": Cmd([dkb, "build", "//..."], dkb_root, check=dkb_all_cached),
                      "turbo": Cmd(turbo_build, npm_root, env, all_cached)}, runs)

    changed = one_file_commit(dkb_root)
    mirror_commit(dkb_root, npm_root, changed)
    # turbo's --affected compares with `main` unless told otherwise; we are on main, so name HEAD~1.
    scm = turbo_env(TURBO_SCM_BASE="HEAD~1", TURBO_SCM_HEAD="HEAD")
    print(f"bench: {n} packages: affected after editing {changed} in both (alternating)", file=sys.stderr)
    aff = alternate({
        "dkb": Cmd([dkb, "affected", "--since", "HEAD~1"], dkb_root, check=listed_transforms),
        "dkb_transitive": Cmd([dkb, "affected", "--since", "HEAD~1", "--dependents", "transitive"], dkb_root,
                              check=listed_transforms),
        "turbo_run": Cmd(turbo_build + ["--affected"], npm_root, scm, lambda o: full_cache_hit(o)[1]),
        "turbo_ls": Cmd([str(binary), "ls", "--affected", "--skip-infer"], npm_root, scm, listed_packages),
    }, runs)
    # Both tools must have seen the same change: turbo's affected set is the changed package and
    # everything depending on it, which is what dkb lists with --dependents transitive.
    dkb_set, turbo_set = aff["dkb_transitive"].pop("checked"), aff["turbo_ls"].pop("checked")
    if dkb_set != turbo_set:
        raise TurboError(f"dkb and turbo disagree on what {changed} affects: "
                         f"only dkb {sorted(set(dkb_set) - set(turbo_set))[:5]}, "
                         f"only turbo {sorted(set(turbo_set) - set(dkb_set))[:5]}")
    direct = aff["dkb"].pop("checked")
    package = "/".join(changed.split("/")[:4])  # pipelines/<domain>/<team>/<name>
    if direct != [package]:
        raise TurboError(f"dkb affected listed {direct[:5]}, not just the package holding {changed}")
    counts = {"dkb": len(direct), "dkb_transitive": len(dkb_set),
              "turbo_ls": len(turbo_set), "turbo_run_tasks": aff["turbo_run"].pop("checked")}
    noop["turbo"]["tasks"] = noop["turbo"].pop("checked")
    noop["dkb"]["targets"] = noop["dkb"].pop("checked")

    return {
        "turbo_version": turbo_version(binary), "packages": n, "changed_file": changed,
        "npm_workspace": str(npm_root), "affected_counts": counts,
        "noop": pair(noop["dkb"], noop["turbo"]),
        "affected_run": pair(aff["dkb"], aff["turbo_run"]),
        "affected_ls": pair(aff["dkb"], aff["turbo_ls"]),
        "affected_ls_transitive": pair(aff["dkb_transitive"], aff["turbo_ls"]),
    }


def pair(dkb: dict[str, Any], turbo: dict[str, Any]) -> dict[str, Any]:
    """Both sides and the ratio of medians, dkb / turbo: below 1 means dkb is faster."""
    ratio = dkb["seconds"] / turbo["seconds"] if turbo["seconds"] > 0 else float("inf")
    return {"dkb": dkb, "turbo": turbo, "ratio": ratio}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.turbo", description="Write the npm-workspaces twin "
                                 "of a bench workspace (one package per transform, same edges).")
    ap.add_argument("--no-lockfile", action="store_true", help="skip `npm install --package-lock-only`")
    ap.add_argument("dkb_root", type=Path)
    ap.add_argument("dest", type=Path)
    args = ap.parse_args(argv)
    edges = npm_workspace(args.dkb_root, args.dest, lockfile=not args.no_lockfile)
    print(f"{len(edges)} packages, {sum(map(len, edges.values()))} dependency edges -> {args.dest}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
