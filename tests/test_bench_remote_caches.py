"""bench.remote_caches end to end on a tiny workspace, against the real servers: it fills and reads
both caches and refuses to report a fill or read that did not hit (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import remote_caches


def test_fills_and_reads_both_caches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert remote_caches.main(["--packages", "10", "--runs", "1", "--work", str(tmp_path), "--output", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for cache in remote_caches.CACHES:
        for phase in ("fill", "read"):
            assert len(result[cache][phase]["samples"]) == 1 and result[cache][phase]["seconds"] > 0
    assert result["workspace"]["transforms"] == 10


def test_a_read_that_is_not_all_remote_stops_the_benchmark(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    from bench.generate import generate

    generate(root, 5, 0)
    with pytest.raises(remote_caches.BenchError, match="expected every target 'remote'"):
        remote_caches.timed_build(root, [], "remote", tmp_path / "report.json")    # no cache: all built
