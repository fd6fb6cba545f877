"""The example monorepo is realistic, lints clean, and answers the questions the README shows."""

from __future__ import annotations

from collections import Counter

from dkbuild.api import load
from dkbuild.graph.model import EdgeKind
from tests.conftest import EXAMPLE, REPO


def test_example_lints_clean_on_its_own(dkb) -> None:
    res = dkb("lint", "--strict", cwd=EXAMPLE)
    assert res.code == 0, res
    assert "no problems" in res.out


def test_example_lints_clean_from_the_repository_root(dkb) -> None:
    res = dkb("lint", "//examples/monorepo/...", "--output", "json", cwd=REPO)
    assert res.code == 0, res
    assert res.json()["diagnostics"] == []
    assert "//examples/monorepo/pipelines/enrich" in res.json()["targets"]


def test_example_shape() -> None:
    g = load(EXAMPLE).graph
    transforms = [n for n in g.nodes.values() if n.kind == "Transform"]
    assert len(transforms) >= 8
    assert all(t.package.startswith("pipelines/") for t in transforms)
    runtimes = Counter(t.manifest.model.spec.runtime for t in transforms)
    assert set(runtimes) == {"cloudquery", "generic-go", "generic-python", "dbt"}
    assert any(n.kind == "DataSetGroup" for n in g.nodes.values())
    assert {n.manifest.layout for n in g.nodes.values()} >= {"dk.yaml", "scaffold"}
    # Flat per-package copies exist and merged into the shared definitions.
    assert any(len(n.definitions) > 1 for n in g.nodes.values())
    assert not g.conflicts and not g.dangling
    dockerfiles = [t for t in transforms if (EXAMPLE / t.package / "Dockerfile").exists()]
    assert [t.manifest.model.spec.runtime for t in dockerfiles] == ["generic-python"]


def test_example_has_a_multi_hop_pii_flow_with_masking() -> None:
    g = load(EXAMPLE).graph
    pii = {(n.id, c.name) for n in g.nodes.values() if n.kind == "DataSet"
           for c in n.manifest.model.spec.schema_ if c.pii}
    parent = {(e.dst, e.dst_column): (e.src, e.src_column) for e in g.columns}
    longest = 0
    for column in pii:
        hops, current = 0, column
        while current in parent and parent[current] in pii:
            hops, current = hops + 1, parent[current]
        longest = max(longest, hops)
    assert longest >= 3
    masked = [e for e in g.columns if e.masking and (e.src, e.src_column) in pii]
    assert masked


def test_example_producers_are_unique() -> None:
    g = load(EXAMPLE).graph
    for node in g.nodes.values():
        writers = {e.src for e in g.in_edges[node.id] if e.kind is EdgeKind.WRITES}
        assert len(writers) <= 1, node.id
