"""`--shard k/N`: the N shards of a selection are disjoint, their union is the selection, every
shard job computes the same split on its own, and a sharded build does no target twice."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.generate import generate
from dkbuild.citemplates import CiSettings, github_workflow
from dkbuild.graph.shard import MAX_SHARDS, Shard, ShardError, partition
from tests.conftest import git

labels = st.sets(st.from_regex(r"//pipelines/[a-z][a-z0-9-]{0,12}", fullmatch=True), max_size=80)


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", f"1/{MAX_SHARDS + 1}", "-1/2", "1/2/3", ""])
def test_bad_shard_values_are_refused(text: str) -> None:
    with pytest.raises(ShardError):
        Shard.parse(text)


def test_shard_values_parse() -> None:
    assert Shard.parse(" 2/4 ") == Shard(2, 4) and str(Shard(2, 4)) == "2/4"


@settings(max_examples=150, deadline=None)
@given(labels, st.integers(1, 9), st.randoms(use_true_random=False))
def test_shards_are_disjoint_complete_balanced_and_order_free(names: set[str], count: int, rng: random.Random) -> None:
    parts = partition(names, count)
    assert len(parts) == count
    assert sorted(label for part in parts for label in part) == sorted(names)       # union, no repeats
    sizes = [len(part) for part in parts]
    assert max(sizes) - min(sizes) <= 1                                              # equal work: balanced
    shuffled = list(names)
    rng.shuffle(shuffled)
    assert partition(shuffled, count) == parts                                       # input order is irrelevant


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.from_regex(r"//p/[a-z]{1,8}", fullmatch=True), st.integers(0, 40), max_size=60),
       st.integers(1, 6))
def test_weighted_split_stays_within_one_target_of_even(work: dict[str, int], count: int) -> None:
    parts = partition(work, count, work)
    assert sorted(label for part in parts for label in part) == sorted(work)
    loads = [sum(work[label] for label in part) for part in parts]
    busiest = max(work.values(), default=0)
    assert max(loads) <= sum(loads) / count + busiest                                # the LPT bound


@given(labels, st.sets(st.from_regex(r"//datasets/[a-z]{1,8}", fullmatch=True), max_size=30), st.integers(1, 5))
def test_targets_with_nothing_to_build_never_move_buildable_ones(buildable: set[str], idle: set[str],
                                                                 count: int) -> None:
    """So `affected --shard` (which lists DataSets too) agrees with `build --affected --shard`."""
    work = {**{label: 1 for label in buildable}, **{label: 0 for label in idle}}
    with_idle = partition(buildable | idle, count, work)
    without = partition(buildable, count, work)
    assert [[label for label in part if label in buildable] for part in with_idle] == without


@pytest.fixture(scope="module")
def bench_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shard") / "ws"
    generate(root, 24, seed=5)
    return root


def _json(result: Any) -> dict[str, Any]:
    assert result.code in (0, 1), result
    return json.loads(result.out)


def _built(document: dict[str, Any]) -> dict[str, str]:
    return {t["label"]: t["status"] for t in document["targets"]}


def test_sharded_builds_split_the_work_with_nothing_done_twice(bench_ws: Path, dkb: Any, tmp_path: Path) -> None:
    whole = _built(_json(dkb("build", "--dry-run", "-o", "json", cwd=bench_ws)))
    assert len(whole) > 10
    seen: dict[str, str] = {}
    for k in (1, 2, 3):
        document = _json(dkb("build", "--shard", f"{k}/3", "-o", "json", cwd=bench_ws))
        assert document["shard"] == f"{k}/3"
        mine = _built(document)
        assert mine and not set(mine) & set(seen), "shards overlap"
        assert set(mine.values()) == {"built"}, mine        # nothing another shard already built
        seen.update(mine)
    assert set(seen) == set(whole)
    again = _built(_json(dkb("build", "-o", "json", cwd=bench_ws)))
    assert set(again) == set(whole) and set(again.values()) == {"cached"}


def test_affected_shards_agree_with_build_shards(bench_ws: Path, dkb: Any, tmp_path: Path) -> None:
    work = tmp_path / "ws"
    git(tmp_path, "clone", "-q", str(bench_ws), str(work))
    for manifest in sorted(work.glob("pipelines/**/dk.yaml"))[:9]:
        source = next(p for p in sorted(manifest.parent.rglob("*")) if p.is_file() and p.name != "dk.yaml")
        source.write_bytes(source.read_bytes() + b"\n")
    git(work, "commit", "-qam", "touch nine packages")
    whole = {t["label"] for t in _json(dkb("affected", "--since", "HEAD~1", "-o", "json", cwd=work))["targets"]}
    built_whole = set(_built(_json(dkb("build", "--affected", "--since", "HEAD~1", "--dry-run", "-o", "json", cwd=work))))
    assert len(built_whole) >= 9 and built_whole <= whole
    union: set[str] = set()
    for k in (1, 2):
        listed = _json(dkb("affected", "--since", "HEAD~1", "--shard", f"{k}/2", "-o", "json", cwd=work))
        mine = {t["label"] for t in listed["targets"]}
        assert listed["shard"] == f"{k}/2" and not mine & union
        union |= mine
        built = set(_built(_json(dkb("build", "--affected", "--since", "HEAD~1", "--shard", f"{k}/2", "--dry-run",
                                     "-o", "json", cwd=work))))
        assert built == mine & built_whole
    assert union == whole


@pytest.mark.parametrize("value", ["0/2", "3/2", "two"])
def test_cli_refuses_a_bad_shard_with_exit_2(bench_ws: Path, dkb: Any, value: str) -> None:
    for command in (["build"], ["affected", "--since", "HEAD"]):
        result = dkb(*command, "--shard", value, cwd=bench_ws)
        assert result.code == 2 and "--shard" in result.err and "Traceback" not in result.err, result


def test_ci_matrix_workflow() -> None:
    doc = yaml.safe_load(github_workflow(CiSettings("0.1.0", "oci://ghcr.io/acme/cache", shards=4)))
    jobs = doc["jobs"]
    assert set(jobs) == {"pull-request", "pull-request-build", "main-build", "main", "promote"}
    for name in ("pull-request-build", "main-build"):
        assert jobs[name]["strategy"]["matrix"]["shard"] == [1, 2, 3, 4]
        build = next(s["run"] for s in jobs[name]["steps"] if s.get("run", "").startswith("dkb build"))
        assert "--shard ${{ matrix.shard }}/4" in build and "${{ matrix.shard }}.json" in build
    assert "--remote-cache-write" in next(s["run"] for s in jobs["main-build"]["steps"] if "dkb build" in s.get("run", ""))
    assert not any("--remote-cache-write" in s.get("run", "") for s in jobs["pull-request-build"]["steps"])
    main = jobs["main"]
    assert main["needs"] == "main-build"
    runs = [s["run"] for s in main["steps"] if "run" in s]
    assert runs[-1] == "dkb publish" and not any("--shard" in r for r in runs)


def test_ci_init_shards_option(bench_ws: Path, dkb: Any, tmp_path: Path) -> None:
    out = tmp_path / "ci.yml"
    assert dkb("ci", "init", "github", "--shards", "3", "--output", str(out), cwd=bench_ws).code == 0
    assert yaml.safe_load(out.read_text())["jobs"]["main-build"]["strategy"]["matrix"]["shard"] == [1, 2, 3]
    assert dkb("ci", "init", "github", "--shards", "0", "--output", str(tmp_path / "x.yml"), cwd=bench_ws).code == 2
