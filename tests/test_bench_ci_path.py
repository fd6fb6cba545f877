"""bench.ci_path runs end to end on a tiny workspace (fresh clones, a real loopback registry) and
reports every row; bench.goals reads a report's figures against the issue-17 budgets."""

from __future__ import annotations

from pathlib import Path

from bench import ci_path, goals
from bench import generate as gen

N = 20


def test_ci_path_measures_every_row_in_fresh_clones(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    gen.generate(root, N, seed=2)
    out = ci_path.measure(tmp_path, root, N, runs=1)
    for name in ["affected", "build_affected", "build_affected_remote", "fill", "build_remote"]:
        m = out[name]
        assert m["ok"] and m["seconds"] > 0 and m["peak_mb"] > 0 and m["runs"] == 1, name
        assert m["ms_per_package"] == 1000 * m["seconds"] / N
    package = "/".join(out["changed_file"].split("/")[:4])
    assert out["affected"]["checked"] == [package]
    assert out["fill"]["checked"] == {"built": N}
    assert out["build_remote"]["checked"] == {"remote": N - 1, "built": 1}   # the remote really served
    assert ("affected_remote" in out) == ci_path.affected_reads_remote_cache(ci_path_dkb())
    # The source workspace is untouched apart from the one-file commit; the clones are gone.
    assert gen.git(root, "status", "--porcelain") == "" and not (root / ".dkb").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ws"]
    text = ci_path.table({str(N): out})
    assert all(title in text for name, title in ci_path.TITLES.items() if name in out)


def ci_path_dkb() -> str:
    from bench.run import dkb_binary
    return dkb_binary()


def test_dependents_follow_edges_transitively() -> None:
    edges = {"a": [], "b": ["a"], "c": ["b"], "d": []}
    paths = {k: f"p/{k}" for k in edges}
    assert ci_path.dependents(edges, paths, "p/a") == ["p/a", "p/b", "p/c"]
    assert ci_path.dependents(edges, paths, "p/d") == ["p/d"]


def test_goals_mark_met_over_and_not_measured() -> None:
    report = {"ci": {"1000": {"affected": {"seconds": 0.25}, "turbo": {"affected_ls": {"ratio": 3.0}}}},
              "results": {"1000": {"first_build": {"seconds": 4.0}, "cold": {"peak_mb": 90.0}}}}
    by = {(v["row"], v["size"], v["kind"]): v for v in goals.verdicts(report)}
    assert by[(goals.CI_AFFECTED, 1000, "seconds")]["met"] is True
    assert by[(goals.CI_AFFECTED, 1000, "ratio")]["met"] is False
    first = by[(goals.FIRST_BUILD, 1000, "packages_per_s")]
    assert first["figure"] == 250 and first["met"] is False                 # 1,000 packages in 4 s
    assert by[(goals.COLD_MEMORY, 1000, "peak_mb")]["met"] is False
    assert by[(goals.CI_AFFECTED, 10000, "seconds")]["met"] is None          # not measured, not guessed
    table = goals.table(report)
    assert "≤ 0.3 s: 0.25 s, met" in table and "≤ 2× turbo: 3.00×, **OVER**" in table
    assert len(goals.missed(report)) == 3


def test_flatness_compares_time_per_package_across_sizes() -> None:
    ci = {"1000": {"affected": {"ms_per_package": 0.3}}, "10000": {"affected": {"ms_per_package": 0.6}},
          "50000": {"affected": {"ms_per_package": 0.33}}}
    f = ci_path.flatness(ci)["affected"]
    assert f["flat"] is True and abs(f["growth"] - 1.1) < 1e-9             # largest vs smallest size
    ci["50000"]["affected"]["ms_per_package"] = 0.6
    assert ci_path.flatness(ci)["affected"]["flat"] is False
