"""The cold load's fast paths give exactly what the plain ones would.

yamlsource takes plain strings straight from the composed nodes (and resolves tags with a cached
resolver): its values must equal PyYAML's safe_load, and its positions those of a naive walk
over PyYAML's own node tree.
"""

from __future__ import annotations

import copy
import datetime
import gc
import os
import random
import shutil
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from bench import generate
from dkbuild.api import load
from dkbuild.diagnostics import Diagnostic
from dkbuild.governance import graph_rules, policy
from dkbuild.graph import build
from dkbuild.graph.model import EdgeKind, Graph
from dkbuild.lineage import pii
from dkbuild.lineage.walk import DOWN, UP, ColumnWalker, column_lineage
from dkbuild.manifests import loader
from dkbuild.manifests.layout import ManifestFile
from dkbuild.manifests.loader import LoadResult, load_manifests, parsed_files
from dkbuild.manifests.manifest import Manifest
from dkbuild.manifests.models import MODEL_OF_KIND, unknown_fields
from dkbuild.manifests.yamlsource import parse_documents
from dkbuild.sources import index_files
from dkbuild.workspace import load_workspace
from tests.conftest import API, EXAMPLE, connector, dataset, store, transform

# --- references ------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """safe_load's value as the loader promises it: text keys, dates as ISO text, binary as text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def reference_positions(text: str) -> list[dict[tuple[Any, ...], tuple[int, int]]]:
    """Line and column of every key and item, from PyYAML's pure-Python composer (no merge keys)."""
    found: list[dict[tuple[Any, ...], tuple[int, int]]] = []

    def walk(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], tuple[int, int]]) -> None:
        if isinstance(node, yaml.SequenceNode):
            for i, child in enumerate(node.value):
                out[path + (i,)] = (child.start_mark.line + 1, child.start_mark.column + 1)
                walk(child, path + (i,), out)
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = str(plain(yaml.SafeLoader("").construct_object(key_node)))
                out[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                walk(value_node, path + (key,), out)

    for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
        positions: dict[tuple[Any, ...], tuple[int, int]] = {}
        walk(node, (), positions)
        found.append(positions)
    return found


def assert_like_pyyaml(text: str) -> None:
    documents, problems = parse_documents(text, "f.yaml")
    assert problems == []
    assert [d.data for d in documents] == [plain(v) for v in yaml.safe_load_all(text)]
    assert [d.positions for d in documents] == reference_positions(text)
    assert [d.line for d in documents] == [n.start_mark.line + 1 for n in yaml.compose_all(text, Loader=yaml.SafeLoader)]


# --- scalars ---------------------------------------------------------------------------------

YAML_11 = """\
ints: [0, 12, -3, +4, 0x1F, 0o17, 017, 0b101, 1_000, 1:20, -0]
floats: [1.5, -2.0e+3, 3., .5, .inf, -.Inf, 6.8523015e+5, 190:20:30.15, 1_000.5]
bools: [yes, No, ON, off, y, n, Y, N, true, False, TRUE]
nulls: [~, null, Null, NULL, '', ]
empty:
dates: [2002-12-14, 2001-12-14t21:59:43.10-05:00, 2001-12-14 21:59:43.10, 2001-12-15T02:59:43.1Z]
looks_like_numbers: ["12", '1.5', "yes", 'null', "0x1F", "2002-12-14", '~']
explicit: [!!str 12, !!int "12", !!float "1", !!bool "yes", !!null "", ! 12, !!binary aGVsbG8=]
text: [name, "double \\"quoted\\"", 'single ''quoted''', é ünïcode, a b c, "  spaced  ", "a: b", "#x"]
block: |
  line one
    indented
folded: >
  folded
  text
multi line plain: this is
  one line
"1": quoted numeric key
2: numeric key
yes: boolean key
~: null key
"""


def test_yaml_11_scalars_are_resolved_as_pyyaml_does() -> None:
    assert_like_pyyaml(YAML_11)


def test_several_documents_and_flow_styles() -> None:
    assert_like_pyyaml(textwrap.dedent("""\
        # leading comment
        a: {x: 1, y: [1, 2, {z: "3"}]}
        ---
        - [a, b]
        - {c: d}
        - - nested
          - 2.5
        ---
        just text
        ...
        ---
        {}
        """))


def test_anchors_and_aliases_expand_with_the_anchor_positions() -> None:
    assert_like_pyyaml("base: &b {x: 1, y: [a, b]}\ncopy: *b\nlist: [*b, *b]\nscalar: &s 7\nagain: *s\n")


# Text a data manifest plausibly holds, and text that YAML 1.1 would turn into something else.
TRICKY = st.sampled_from(["yes", "No", "on", "y", "~", "null", "", "0x1F", "017", "1_000", "1:20", "-1.5e+3",
                          ".inf", ".nan", "2002-12-14", "12", "+1", "<<", "=", "a: b", "- c", "#c", "x\ny",
                          " lead", "trail ", "'q'", '"q"', "é", "!tag", "&a", "*a", "%", "@", "`"])
SCALARS = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
           | st.floats(allow_nan=False, allow_infinity=False, width=32)
           | TRICKY | st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12))
DATA = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(TRICKY | st.text(min_size=1, max_size=8), inner, max_size=4),
                    max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(data=DATA, flow=st.sampled_from([False, True, None]), width=st.sampled_from([20, 80]))
def test_any_dumped_data_loads_back_as_pyyaml_loads_it(data: Any, flow: bool | None, width: int) -> None:
    assert_like_pyyaml(yaml.safe_dump({"root": data}, default_flow_style=flow, width=width, allow_unicode=True))


# --- merge keys ------------------------------------------------------------------------------

MERGES = """\
base: &base {x: 1, y: {deep: 2}}
other: &other {y: 3, w: 4}
first:
  <<: *base
  x: 10
last:
  x: 10
  <<: *base
many:
  <<: [*base, *other]
  w: 5
"""


def test_merge_keys_resolve_as_pyyaml_and_explicit_keys_win() -> None:
    (doc,), problems = parse_documents(MERGES, "f.yaml")
    assert problems == []
    assert doc.data == yaml.safe_load(MERGES)
    # Keys written in the mapping keep their own positions; merged ones point at the anchor.
    assert doc.positions[("first", "x")] == (5, 3)
    assert doc.positions[("last", "x")] == (7, 3)
    assert doc.positions[("first", "y")] == (1, 20)
    assert doc.positions[("first", "y", "deep")] == (1, 24)
    assert doc.positions[("many", "y")] == (1, 20)       # the first source wins
    assert doc.positions[("many", "w")] == (11, 3)
    # Nothing of the merge sources' own layout leaks into the mapping's positions.
    assert not [p for p in doc.positions if p[0] == "many" and len(p) > 1 and isinstance(p[1], int)]


def test_a_key_written_twice_next_to_a_merge_is_still_a_duplicate() -> None:
    _, problems = parse_documents("b: &b {x: 1}\nm:\n  <<: *b\n  x: 2\n  x: 3\n", "f.yaml")
    assert [(d.code, d.line) for d in problems] == [("E108", 5)]


# --- bad values ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["!!int abc", "!!bool maybe", "!!float x", "!!int ''", "!!timestamp soon",
                                   "!!binary a", "!custom x"])
def test_a_value_that_does_not_fit_its_tag_is_an_e100_not_a_crash(value: str) -> None:
    documents, problems = parse_documents(f"ok: 1\nbad: {value}\n", "f.yaml")
    assert documents == []
    assert [(d.code, d.line) for d in problems] == [("E100", 2)]


# --- unknown fields --------------------------------------------------------------------------

def reference_unknown_fields(model: BaseModel, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The plain walk: every extra key, then every declared field, looking into everything."""
    found = [path + (key,) for key in (model.model_extra or {})]

    def inside(value: Any, where: tuple[Any, ...]) -> None:
        if isinstance(value, BaseModel):
            found.extend(reference_unknown_fields(value, where))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                inside(item, where + (i,))
        elif isinstance(value, dict):
            for k, item in value.items():
                if isinstance(item, BaseModel):
                    found.extend(reference_unknown_fields(item, where + (k,)))

    for name, info in type(model).model_fields.items():
        inside(getattr(model, name), path + (info.alias or name,))
    return found


RICH = [
    transform("t", ["a"], ["b"], env=[{"name": "X", "value": 1, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
              trigger={"policy": "composite", "policies": ["manual", {"policy": "schedule", "schedule": {"cron": "* * * * *"}}]},
              resources={"cpu": 1, "memory": "1Gi"}, lineage={"enabled": True}, timeout="1h", replicas=2),
    dataset("d", columns=[{"name": "id", "type": "integer", "pii": True, "from": "a.id", "masking": "hash"}],
            declassify={"reason": "r", "approvedBy": "me"}, dev={"any": {"thing": 1}}),
    store("s"),
    {**connector("c"), "spec": {"type": "c", "plugin": {"source": "x"}, "tools": [{"name": "t", "type": "cli"}],
                                "connectionSchema": {"host": {"field": "host", "secret": False}}}},
    {"apiVersion": API, "kind": "DataSetGroup", "metadata": {"name": "g", "labels": {"a": "b"}},
     "spec": {"store": "s", "datasets": ["d"]}},
]


def mappings_in(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every mapping in a document: the places an unknown key can be added."""
    found = [path] if isinstance(data, dict) else []
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in children:
        found += mappings_in(value, path + (key,))
    return found


@settings(max_examples=200, deadline=None)
@given(doc=st.sampled_from(RICH), picks=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(
    ["bogus", "schema_", "from_", "nme", "spec"])), max_size=5))
def test_unknown_fields_match_the_plain_walk(doc: dict[str, Any], picks: list[tuple[int, str]]) -> None:
    data = copy.deepcopy(doc)
    places = mappings_in(data)
    for n, key in picks:
        target = data
        for part in places[n % len(places)]:
            target = target[part]
        target.setdefault(key, "x")
    try:
        model = MODEL_OF_KIND[data["kind"]].model_validate(data)
    except ValidationError:
        return
    assert list(unknown_fields(model)) == reference_unknown_fields(model)


def test_unknown_fields_of_the_example_workspace() -> None:
    loaded = load(EXAMPLE)
    assert loaded.result.manifests
    for m in loaded.result.manifests:
        assert list(unknown_fields(m.model)) == reference_unknown_fields(m.model)


def test_unknown_fields_are_found_at_every_depth() -> None:
    data = copy.deepcopy(RICH[0])
    data["extra"] = 1
    data["spec"]["env"][0]["valueFrom"]["secretKeyRef"]["nme"] = "x"
    data["spec"]["trigger"]["policies"][1]["schedule"]["tz"] = "UTC"
    data["spec"]["inputs"][0]["dataset_"] = "a"
    model = MODEL_OF_KIND["Transform"].model_validate(data)
    assert list(unknown_fields(model)) == [
        ("extra",), ("spec", "inputs", 0, "dataset_"), ("spec", "env", 0, "valueFrom", "secretKeyRef", "nme"),
        ("spec", "trigger", "policies", 1, "schedule", "tz")]


# --- one pass instead of one scan per dataset --------------------------------------------------

@pytest.fixture(scope="module")
def bench_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated workspace of 120 packages (~290 manifest files): layers, fan-in, fan-out, PII."""
    root = tmp_path_factory.mktemp("cold") / "ws"
    generate.generate(root, 120, seed=11, commit=False)
    return root


def reference_feeders(graph: Graph, dataset: str) -> set[str]:
    feeders = {c.src for c in graph.columns if c.dst == dataset}
    for edge in graph.in_edges[dataset]:
        if edge.kind is EdgeKind.WRITES:
            feeders |= {e.dst for e in graph.out_edges[edge.src] if e.kind is EdgeKind.READS}
    feeders.discard(dataset)
    return feeders


def test_feeder_index_matches_the_per_dataset_scan(bench_ws: Path) -> None:
    graph = load(bench_ws).graph
    index = policy._feeders(graph)
    datasets = [n for n in graph.nodes.values() if n.kind == "DataSet"]
    assert sum(bool(reference_feeders(graph, n.id)) for n in datasets) > 50
    for node in datasets:
        assert index.get(node.id, set()) - {node.id} == reference_feeders(graph, node.id)


def test_tag_index_matches_the_scan(bench_ws: Path) -> None:
    graph = load(bench_ws).graph
    index = build._Index(graph)
    labels = sorted({item for n in graph.nodes.values() if n.kind == "DataSet"
                     for item in n.manifest.model.metadata.labels.items()})
    assert len(labels) > 3
    selectors = [{}, dict(labels[:1]), dict(labels[1:3]), dict(labels[-2:]), {"no": "such"}]
    for tags in selectors:
        scanned = {n.id for n in graph.nodes.values() if n.kind == "DataSet"
                   and tags.items() <= n.manifest.model.metadata.labels.items()}
        assert index.tagged(tags) == scanned


# --- parallel parsing --------------------------------------------------------------------------

BROKEN = {
    "pipelines/zz-broken/dk.yaml": "apiVersion: x\nkind: DataSet\nmetadata: {name: [unclosed\n",
    "pipelines/zz-types/dk.yaml": f"apiVersion: {API}\nkind: Transform\nmetadata: {{name: t}}\nspec:\n  inputs: raw\n",
    "pipelines/zz-unknown/dk.yaml": f"apiVersion: {API}\nkind: DataSet\nmetadata: {{name: u}}\nspec: {{store: s, bogus: 1}}\n",
    "pipelines/zz-dup/dk.yaml": f"apiVersion: {API}\nkind: DataSet\nmetadata: {{name: d}}\nspec: {{}}\nspec: {{}}\n",
    "pipelines/zz-tag/dk.yaml": f"apiVersion: {API}\nkind: DataSet\nmetadata: {{name: g}}\nspec: {{replicas: !!int x}}\n",
    "pipelines/zz-multi/dk.yaml": f"apiVersion: {API}\nkind: DataSet\nmetadata: {{name: m1}}\n---\n- a list\n",
}


@pytest.fixture(scope="module")
def messy_ws(bench_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated workspace plus files with every kind of load problem."""
    root = tmp_path_factory.mktemp("messy") / "ws"
    shutil.copytree(bench_ws, root)
    for rel, text in BROKEN.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "pipelines/zz-latin/dk.yaml").parent.mkdir(parents=True)
    (root / "pipelines/zz-latin/dk.yaml").write_bytes(b"kind: DataSet\nname: caf\xe9\n")
    toml = (root / "workspace.toml").read_text()
    (root / "workspace.toml").write_text(toml.replace("[workspace]", "[workspace]\nmax_manifest_bytes = 20000", 1))
    (root / "pipelines/zz-huge/dk.yaml").parent.mkdir(parents=True)
    (root / "pipelines/zz-huge/dk.yaml").write_text("# padding\n" * 3000)
    return root


def snapshot_of(result: LoadResult) -> list[Any]:
    """Everything a load gives, as comparable plain values."""
    return [[(m.kind, m.name, m.file, m.doc_index, m.line, m.package, m.layout, m.data, m.positions,
              m.model.model_dump(by_alias=True)) for m in result.manifests], result.diagnostics]


def load_with(root: Path, **options: Any) -> LoadResult:
    workspace = load_workspace(root)
    return load_manifests(workspace, index_files(workspace.root), **options)


@pytest.fixture
def executors(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the worker pools a load starts (so a test knows the parallel path really ran)."""
    started: list[int] = []

    class Counting(ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            started.append(1)
            super().__init__(*args, **kwargs)
    monkeypatch.setattr(loader, "ProcessPoolExecutor", Counting)
    return started


def test_parallel_and_serial_loads_are_identical(messy_ws: Path, executors: list[int]) -> None:
    serial = load_with(messy_ws, workers=1)
    assert executors == []
    parallel = load_with(messy_ws, workers=2)
    assert executors == [1]
    assert len(serial.manifests) > 250
    assert {d.code for d in serial.diagnostics} >= {"E100", "E101", "E105", "E106", "E108", "E112", "W100"}
    assert snapshot_of(parallel) == snapshot_of(serial)


def test_many_files_go_parallel_by_default_on_several_cores(messy_ws: Path, executors: list[int],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "_cpus", lambda: 2)
    monkeypatch.setattr(loader, "PARALLEL_MIN_FILES", 100)
    load_with(messy_ws)
    assert executors == [1]
    monkeypatch.setattr(loader, "_cpus", lambda: 1)
    load_with(messy_ws)
    assert executors == [1]


def test_without_fork_the_load_is_serial(messy_ws: Path, executors: list[int],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    serial = load_with(messy_ws, workers=1)
    monkeypatch.setattr(loader.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert snapshot_of(load_with(messy_ws, workers=2)) == snapshot_of(serial)
    assert executors == []


def test_reused_files_are_not_parsed_again_in_parallel(messy_ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full = load_with(messy_ws, workers=1)
    reuse = {key: found for key, found in parsed_files(full).items() if key[1].path < "pipelines/m"}
    assert 50 < len(reuse) < len(parsed_files(full))
    parsed_here: list[str] = []
    real = loader.load_file
    monkeypatch.setattr(loader, "load_file", lambda ws, mf, source=None: parsed_here.append(mf.path) or real(ws, mf, source))
    again = load_with(messy_ws, workers=2, parsed=reuse)
    assert snapshot_of(again) == snapshot_of(full)
    assert parsed_here == []            # the workers did the rest
    assert all(again.manifests[i] is full.manifests[i] for i, m in enumerate(full.manifests)
               if m.file < "pipelines/m" and m.file in {k[1].path for k in reuse})


_PARENT = os.getpid()


def _fails_in_workers(path: str, source: Any, limit: int) -> Any:
    if os.getpid() != _PARENT and path.endswith("zz-dup/dk.yaml"):
        raise RuntimeError("worker trouble")
    return _REAL_PARSE_FILE(path, source, limit)


def _fails_everywhere(path: str, source: Any, limit: int) -> Any:
    if path.endswith("zz-dup/dk.yaml"):
        raise RuntimeError("bad file")
    return _REAL_PARSE_FILE(path, source, limit)


def _dies(task: tuple[str, int, list[str]]) -> Any:
    if any(p.endswith("zz-dup/dk.yaml") for p in task[2]):
        os._exit(3)
    return _REAL_PARSE_CHUNK(task)


_REAL_PARSE_FILE = loader._parse_file
_REAL_PARSE_CHUNK = loader._parse_chunk


def test_a_file_a_worker_fails_on_is_parsed_again_here(messy_ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serial = load_with(messy_ws, workers=1)
    monkeypatch.setattr(loader, "_parse_file", _fails_in_workers)
    assert snapshot_of(load_with(messy_ws, workers=2)) == snapshot_of(serial)


def test_an_error_in_a_worker_is_raised_not_lost(messy_ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "_parse_file", _fails_everywhere)
    with pytest.raises(RuntimeError, match="bad file"):
        load_with(messy_ws, workers=2)


def test_a_dead_worker_leaves_the_rest_to_the_parent(messy_ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serial = load_with(messy_ws, workers=1)
    monkeypatch.setattr(loader, "_parse_chunk", _dies)
    assert snapshot_of(load_with(messy_ws, workers=2)) == snapshot_of(serial)


def test_only_files_on_disk_are_parsed_in_workers(messy_ws: Path) -> None:
    class Elsewhere(loader.DiskSource):
        pass
    todo = [ManifestFile(f"p{i}/dk.yaml", f"p{i}", "dk.yaml") for i in range(500)]
    assert loader._parse_in_workers(todo, Elsewhere(messy_ws), 1000, 2) is None
    assert loader._parse_in_workers(todo[:10], loader.DiskSource(messy_ws), 1000, None) is None


def test_the_collector_is_back_on_after_a_load(messy_ws: Path) -> None:
    assert gc.isenabled()
    load_with(messy_ws, workers=2)
    assert gc.isenabled()
    gc.disable()
    try:
        load_with(messy_ws, workers=1)
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- data cycles -------------------------------------------------------------------------------

def reference_data_cycles(graph: Graph) -> list[Diagnostic]:
    """W506 as a search from every transform over the whole data flow finds it."""
    flow = graph_rules._data_graph(graph)
    everything = set(flow)
    found, reported = [], set()
    for start in sorted(n for n, node in graph.nodes.items() if node.kind == "Transform"):
        if start in reported:
            continue
        cycle = graph_rules._cycle_through(flow, start, everything)
        if cycle is not None:
            reported.update(cycle)
            found.append((start, cycle))
    return found


def random_flow(seed: int, datasets: int, transforms: int) -> list[Manifest]:
    rnd = random.Random(seed)
    docs = [dataset(f"d{i}") for i in range(datasets)]
    for i in range(transforms):
        docs.append(transform(f"t{i}", rnd.sample([f"d{j}" for j in range(datasets)], rnd.randint(0, 3)),
                              rnd.sample([f"d{j}" for j in range(datasets)], rnd.randint(1, 2))))
    manifests = []
    for doc in docs:
        name = doc["metadata"]["name"]
        manifests.append(Manifest(kind=doc["kind"], name=name, file=f"p/{name}/dk.yaml", doc_index=0, line=1,
                                  package=f"p/{name}", layout="dk.yaml", data=doc,
                                  model=MODEL_OF_KIND[doc["kind"]].model_validate(doc), positions={}))
    return manifests


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10**6), datasets=st.integers(3, 25), transforms=st.integers(1, 25))
def test_data_cycles_match_the_search_from_every_transform(seed: int, datasets: int, transforms: int) -> None:
    graph = build.build_graph(random_flow(seed, datasets, transforms))
    expected = reference_data_cycles(graph)
    found = graph_rules._data_cycles(graph)
    assert [d.message for d in found] == [f"data cycle: {' -> '.join(cycle + [start])}" for start, cycle in expected]


def test_an_acyclic_flow_leaves_nothing_to_search(bench_ws: Path) -> None:
    graph = load(bench_ws).graph
    assert graph_rules._maybe_cyclic(graph_rules._data_graph(graph)) == set()


# --- PII analysis: one walker for all the walks --------------------------------------------------

def reference_pii(graph: Graph) -> tuple[dict[Any, Any], list[Any]]:
    """pii_columns and origins as plain walks: a fresh walk per source and per column."""
    declared = pii.declared_pii(graph)
    sources: dict[Any, set[Any]] = {}
    for source in declared:
        for key, reached in column_lineage(graph, [source], DOWN, stop_at_masking=True).reached.items():
            if not reached.masked:
                sources.setdefault(key, set()).add(source)
    columns = {key: pii.PiiOrigin(key in set(declared), tuple(sorted(found)),
                                  column_lineage(graph, [min(found)], DOWN, stop_at_masking=True).reached[key].path)
               for key, found in sorted(sources.items())}
    roots = [k for k, o in columns.items() if o.declared and o.sources == (k,)]
    covered: set[Any] = set()
    for r in roots:
        covered |= {k for k, o in columns.items() if r in o.sources}
    for k, o in columns.items():
        if o.declared and k not in covered:
            roots.append(k)
            covered |= {c for c, oc in columns.items() if k in oc.sources}
    return columns, sorted(roots)


def random_lineage(seed: int, datasets: int) -> Graph:
    """Datasets whose columns derive from each other's (cycles, masking, PII, dangling refs included),
    with transforms that carry some of the edges."""
    rnd = random.Random(seed)
    docs = []
    for i in range(datasets):
        columns = []
        for _ in range(rnd.randint(1, 4)):
            # Names may repeat within a schema: the first of them is the one a from: means.
            column: dict[str, Any] = {"name": f"c{rnd.randrange(5)}", "type": "string", "pii": rnd.random() < 0.25}
            if rnd.random() < 0.7:
                column["from"] = f"d{rnd.randrange(datasets)}.c{rnd.randrange(5)}"
                if rnd.random() < 0.2:
                    column["masking"] = "hash"
            columns.append(column)
        docs.append(dataset(f"d{i}", columns=columns, classification=rnd.choice(["public", "restricted"])))
    for i in range(datasets // 2):
        docs.append(transform(f"t{i}", [f"d{rnd.randrange(datasets)}" for _ in range(2)], [f"d{rnd.randrange(datasets)}"]))
    manifests = [Manifest(kind=d["kind"], name=d["metadata"]["name"], file=f"p/{d['metadata']['name']}/dk.yaml",
                          doc_index=0, line=1, package=f"p/{d['metadata']['name']}", layout="dk.yaml", data=d,
                          model=MODEL_OF_KIND[d["kind"]].model_validate(d), positions={}) for d in docs]
    return build.build_graph(manifests)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), datasets=st.integers(1, 14))
def test_pii_analysis_matches_fresh_walks(seed: int, datasets: int) -> None:
    graph = random_lineage(seed, datasets)
    columns, roots = reference_pii(graph)
    assert pii.pii_columns(graph) == columns
    assert pii.origins(graph) == roots
    flows = pii.pii_flows(graph)
    assert [f.source for f in flows] == sorted(f.source for f in flows)
    assert {f.source for f in flows} <= set(roots)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), datasets=st.integers(1, 10), depth=st.sampled_from([None, 1, 2]))
def test_a_shared_walker_walks_as_fresh_ones_do(seed: int, datasets: int, depth: int | None) -> None:
    graph = random_lineage(seed, datasets)
    keys = sorted({(e.src, e.src_column) for e in graph.columns} | {(e.dst, e.dst_column) for e in graph.columns})
    for direction in (DOWN, UP):
        shared = ColumnWalker(graph, direction)
        for key in keys:
            for stop in (False, True):
                assert shared.walk([key], depth, stop_at_masking=stop) == \
                    ColumnWalker(graph, direction).walk([key], depth, stop_at_masking=stop)


def test_pii_analysis_of_a_generated_workspace(bench_ws: Path) -> None:
    graph = load(bench_ws).graph
    columns, roots = reference_pii(graph)
    assert len(columns) > 10
    assert pii.pii_columns(graph) == columns
    assert pii.origins(graph) == roots


def reference_pii_propagation(graph: Graph) -> list[tuple[str, int]]:
    """E601 as a search of both schemas per column edge: (file, schema index) of each finding."""
    found = []
    for edge in graph.columns:
        source = graph.nodes[edge.src].manifest.model.spec.schema_
        if not next(c for c in source if c.name == edge.src_column).pii:
            continue
        target = graph.nodes[edge.dst]
        index, column = next((i, c) for i, c in enumerate(target.manifest.model.spec.schema_)
                             if c.name == edge.dst_column)
        if not (column.pii or column.masking):
            found.append((target.manifest.file, index))
    return found


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10**6), datasets=st.integers(1, 14))
def test_pii_propagation_matches_the_schema_search(seed: int, datasets: int) -> None:
    graph = random_lineage(seed, datasets)
    found = policy._pii_propagation(graph)
    assert [(d.file, d.field) for d in found] == \
        [(file, f"spec.schema[{index}].from") for file, index in reference_pii_propagation(graph)]
