"""A registry that stops answering mid-publish: how long until `dkb publish` gives up, and what it says.

    python -m bench.publish_faults [--packages 100] [--after 0.6 | --after-tags 9] [--fault stop|kill|both]
                                   [--cap 1800]

Generates a workspace (bench.generate), builds it once (so the clock measures publishing only),
starts a real loopback registry (Debian's docker-registry, via tests/registry.py), runs
`dkb publish //...` and, `--after` seconds in (or once `--after-tags` packages have their tag in
the registry's storage), either freezes the registry (SIGSTOP: connections are accepted by the
kernel and never answered) or kills it (SIGKILL: connections are refused).
Prints, per scenario, the wall time to the end of the run, the exit code, when the first line
reached stderr and how many lines did, and the last line. Run with `PYTHONPATH=<another checkout>`
to measure another version of dkb.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.registry import Registry


def _workspace(root: Path, packages: int) -> Path:
    ws = root / "ws"
    subprocess.run([sys.executable, "-m", "bench.generate", "--packages", str(packages), str(ws)], check=True,
                   capture_output=True, cwd=Path(__file__).resolve().parents[1])
    subprocess.run([sys.executable, "-m", "dkbuild", "build", "//..."], cwd=ws, check=True, capture_output=True)
    return ws


def _wait(registry: Registry, after: float, tags: int) -> None:
    if not tags:
        time.sleep(after)
        return
    repositories = registry.storage / "docker/registry/v2/repositories"
    while True:
        try:    # the registry creates and removes upload directories under our feet
            done = sum(1 for tag in repositories.rglob("_manifests/tags/*") if not tag.name.startswith("sha256-"))
        except FileNotFoundError:
            continue
        if done >= tags:
            return
        time.sleep(0.01)


def _scenario(ws: Path, root: Path, fault: str, after: float, tags: int, cap: float) -> dict[str, object]:
    registry = Registry(root / f"registry-{fault}").start()
    try:
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "dkbuild", "publish", "--registry",
                                 f"oci://{registry.host}/acme", "--plain-http", "//..."], cwd=ws,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines: list[tuple[float, str]] = []

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append((time.monotonic() - start, line.rstrip()))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        _wait(registry, after, tags)
        faulted_at = time.monotonic() - start
        assert registry.proc is not None
        os.kill(registry.proc.pid, signal.SIGSTOP if fault == "stop" else signal.SIGKILL)
        faulted = len(lines)
        try:
            code: int | str = proc.wait(cap)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = f"killed at the {cap:.0f} s cap"
        wall = time.monotonic() - start
        reader.join(5)
        after_fault = [t for t, _ in lines[faulted:]]
        return {"fault": fault, "faulted_at_s": round(faulted_at, 1), "wall_s": round(wall, 1), "exit": code,
                "stderr_lines": len(lines),
                "lines_before_fault": faulted,
                "first_line_after_fault_s": round(after_fault[0], 1) if after_fault else None,
                "stderr_tail": [line for _, line in lines[-4:]]}
    finally:
        if registry.proc is not None and registry.proc.poll() is None:
            os.kill(registry.proc.pid, signal.SIGCONT)
        registry.kill()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.publish_faults", description=__doc__.splitlines()[0])
    ap.add_argument("--packages", type=int, default=100)
    ap.add_argument("--after", type=float, default=0.6, help="seconds into the publish before the fault")
    ap.add_argument("--after-tags", type=int, default=0, help="fault once this many packages are published")
    ap.add_argument("--fault", choices=["stop", "kill", "both"], default="both")
    ap.add_argument("--cap", type=float, default=1800.0, help="give up waiting after this many seconds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dkb-publish-faults-") as tmp:
        root = Path(tmp)
        ws = _workspace(root, args.packages)
        for fault in (["stop", "kill"] if args.fault == "both" else [args.fault]):
            print(_scenario(ws, root, fault, args.after, args.after_tags, args.cap), flush=True)


if __name__ == "__main__":
    main()
