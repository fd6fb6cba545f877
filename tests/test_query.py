"""The query language: lexer/parser (precedence, let, quoting, errors), evaluation on a real
workspace, renderers, and property tests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dkbuild.api import Loaded, load
from dkbuild.graph.labels import PatternError
from dkbuild.graph.model import Edge, EdgeKind, Graph, Node
from dkbuild.graph.query import (FUNCTIONS, Arg, Call, Function, Integer, Let, QuerySyntaxError, SetOp,
                                 Var, Word, evaluate, parse, register)
from dkbuild.graph.query.traversal import some_path
from dkbuild.graph.render import (render_dot, render_json, render_label_kind, render_labels,
                                  render_mermaid)
from dkbuild.manifests.manifest import Manifest
from tests.conftest import API, basic_files, connector, dataset, store, transform, write_tree

# --- the workspace -----------------------------------------------------------------------------
#
#   ingest  --reads--> raw    --store--> lake --connector--> postgres
#           --writes-> clean  --store--> warehouse --connector--> s3
#   publish --reads--> clean, --writes--> report (--store--> warehouse)
#   group   --store--> warehouse, --member--> clean, report
#   //pipelines/publish:extra (a flat dataset of the publish package) --store--> lake
#   //datasets/orphan --store--> lake
# (Column lineage, `schema[].from`, is kept in graph.columns, not as edges.)


def _files() -> dict[str, Any]:
    files = basic_files()
    publish = transform("publish", ["clean"], ["report"], runtime="dbt")
    publish["metadata"]["labels"] = {"team": "bi", "datakit.infoblox.dev/tier": "gold"}
    ingest = transform("ingest", ["raw"], ["clean"])
    ingest["metadata"]["labels"] = {"team": "core"}
    files.update({
        "platform/connectors/s3/dk.yaml": connector("s3"),
        "platform/stores/warehouse/dk.yaml": store("warehouse", connector="s3"),
        "datasets/clean/dk.yaml": dataset("clean", store="warehouse", columns=[
            {"name": "id", "type": "integer", "from": "raw.id"}]),
        "datasets/report/dk.yaml": dataset("report", store="warehouse", columns=[
            {"name": "id", "type": "integer", "from": "clean.id"}]),
        "datasets/orphan/dk.yaml": dataset("orphan"),
        "datasets/group/dk.yaml": {"apiVersion": API, "kind": "DataSetGroup", "metadata": {"name": "group"},
                                   "spec": {"store": "warehouse", "datasets": ["clean", "report"]}},
        "pipelines/ingest/dk.yaml": ingest,
        "pipelines/publish/dk.yaml": publish,
        "pipelines/publish/dataset/extra.yaml": dataset("extra"),
    })
    return files


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("query") / "ws", _files())


@pytest.fixture(scope="module")
def loaded(root: Path) -> Loaded:
    return load(root)


@pytest.fixture(scope="module")
def graph(loaded: Loaded) -> Graph:
    return loaded.graph


ALL = {"//platform/connectors/postgres", "//platform/connectors/s3", "//platform/stores/lake",
       "//platform/stores/warehouse", "//datasets/raw", "//datasets/clean", "//datasets/report",
       "//datasets/orphan", "//datasets/group", "//pipelines/ingest", "//pipelines/publish",
       "//pipelines/publish:extra"}


def q(graph: Graph, expr: str, package: str = "") -> set[str]:
    return evaluate(expr, graph, package)


def test_fixture_graph_is_what_the_tests_assume(graph: Graph) -> None:
    assert set(graph.nodes) == ALL
    assert not graph.dangling
    assert {(e.src, e.dst) for e in graph.edges} == {
        ("//pipelines/ingest", "//datasets/raw"), ("//pipelines/ingest", "//datasets/clean"),
        ("//pipelines/publish", "//datasets/clean"), ("//pipelines/publish", "//datasets/report"),
        ("//datasets/raw", "//platform/stores/lake"), ("//datasets/orphan", "//platform/stores/lake"),
        ("//pipelines/publish:extra", "//platform/stores/lake"),
        ("//datasets/clean", "//platform/stores/warehouse"), ("//datasets/report", "//platform/stores/warehouse"),
        ("//datasets/group", "//platform/stores/warehouse"), ("//datasets/group", "//datasets/clean"),
        ("//datasets/group", "//datasets/report"),
        ("//platform/stores/lake", "//platform/connectors/postgres"),
        ("//platform/stores/warehouse", "//platform/connectors/s3")}


# --- parser --------------------------------------------------------------------------------------

A, B, C = Word("//a"), Word("//b"), Word("//c")


@pytest.mark.parametrize("text, tree", [
    ("//a + //b - //c", SetOp("-", SetOp("+", A, B), C)),
    ("//a - //b + //c", SetOp("+", SetOp("-", A, B), C)),
    ("//a ^ //b union //c", SetOp("+", SetOp("^", A, B), C)),
    ("//a union //b except //c", SetOp("-", SetOp("+", A, B), C)),
    ("//a intersect //b", SetOp("^", A, B)),
    ("//a - (//b + //c)", SetOp("-", A, SetOp("+", B, C))),
    ("((//a))", A),
    ("//a -//b", SetOp("-", A, B)),
    ("//a+//b", SetOp("+", A, B)),
    ("//a^//b", SetOp("^", A, B)),
])
def test_set_operators_are_left_associative_with_equal_precedence(text: str, tree: Any) -> None:
    assert parse(text) == tree


def test_hyphen_inside_a_word_is_part_of_it() -> None:
    assert parse("//a/b-c") == Word("//a/b-c")
    assert parse("//a/b - c") == SetOp("-", Word("//a/b"), Word("c"))


def test_let_binds_and_its_body_extends_right() -> None:
    assert parse("let x = //a in $x + //b") == Let("x", A, SetOp("+", Var("x"), B))
    assert parse("//a + let x = //b in $x ^ //c") == SetOp("+", A, Let("x", B, SetOp("^", Var("x"), C)))
    assert parse("let x = //a in let y = $x + //b in $y - $x") == \
        Let("x", A, Let("y", SetOp("+", Var("x"), B), SetOp("-", Var("y"), Var("x"))))
    assert parse("(let x = //a in $x) + //b") == SetOp("+", Let("x", A, Var("x")), B)


def test_let_value_does_not_see_its_own_name() -> None:
    with pytest.raises(QuerySyntaxError) as err:
        parse("let x = $x in $x")
    assert err.value.column == 9


def test_variables_are_out_of_scope_after_the_let() -> None:
    with pytest.raises(QuerySyntaxError, match=r"unknown variable \$x") as err:
        parse("(let x = //a in $x) + $x")
    assert err.value.column == 23


def test_quoting() -> None:
    assert parse('"//a:b+c"') == Word("//a:b+c")
    assert parse("'//a:b=c'") == Word("//a:b=c")
    assert parse('"let" + \'in\'') == SetOp("+", Word("let"), Word("in"))
    assert parse('kind("^Data(Set)?$", //...)') == Call("kind", (Word("^Data(Set)?$"), Word("//...")))
    assert str(Word("let")) == '"let"'
    assert str(Word("a b")) == '"a b"'
    assert str(Word('say "hi"')) == "'say \"hi\"'"
    assert str(Word("//a/b:c")) == "//a/b:c"
    assert str(Word("-x")) == '"-x"'


def test_calls_and_argument_kinds() -> None:
    assert parse("deps(//a, 2)") == Call("deps", (A, Integer(2)))
    assert parse("rdeps(//..., //a)") == Call("rdeps", (Word("//..."), A))
    assert parse("attr(spec.runtime, dbt, //a + //b)") == \
        Call("attr", (Word("spec.runtime"), Word("dbt"), SetOp("+", A, B)))
    assert parse("deps(deps(//a, 1) - //b)") == Call("deps", (SetOp("-", Call("deps", (A, Integer(1))), B),))
    # A word not followed by '(' is a pattern, even if it names a function.
    assert parse("deps") == Word("deps")


@pytest.mark.parametrize("text, canonical", [
    ("(//a union //b)   except (//c)", "//a + //b - //c"),
    ("//a - (//b - //c)", "//a - (//b - //c)"),
    ("deps( //a ,3 )", "deps(//a, 3)"),
    ("let  x=//a in $x", "let x = //a in $x"),
    ("(let x = //a in $x) + //b", "(let x = //a in $x) + //b"),
    ("//a + (let x = //b in $x)", "//a + (let x = //b in $x)"),
    ("kind('Trans.*', //...)", "kind(Trans.*, //...)"),
    ("kind('^T', //...)", 'kind("^T", //...)'),
])
def test_canonical_spelling(text: str, canonical: str) -> None:
    tree = parse(text)
    assert str(tree) == canonical
    assert parse(canonical) == tree


@pytest.mark.parametrize("text, column, message, hint", [
    ("depz(//a)", 1, "unknown function 'depz'", "did you mean deps"),
    ("//a + rdep(//..., //a)", 7, "unknown function 'rdep'", "rdeps"),
    ("deps()", 6, "deps() takes 1 to 2 arguments; got 0", "usage: deps("),
    ("rdeps(//a)", 10, "rdeps() takes 2 to 3 arguments; got 1", ""),
    ("deps(//a, 1, 2)", 14, "too many arguments", ""),
    ("kind(Data)", 10, "kind() takes 2 arguments; got 1", ""),
    ("deps(//a", 9, "unbalanced '('", "missing ')'"),
    ("(//a + //b", 11, "unbalanced '('", ""),
    ("//a)", 4, "unbalanced ')'", ""),
    ("deps(//a))", 10, "unbalanced ')'", ""),
    ("(//a //b)", 6, "expected ')'", ""),
    ("$nope", 1, "unknown variable $nope", "let name"),
    ("let xs = //a in $x", 17, "unknown variable $x", "did you mean $xs?"),
    ("kind('[a-', //...)", 7, "invalid regular expression", ""),
    ("kind(abc(, //...)", 9, "expected ',' or ')'", ""),
    ("filter(\"a(b\", //...)", 10, "invalid regular expression", ""),
    ("attr(spec.runtime, '*x', //...)", 21, "invalid regular expression", ""),
    ("deps(//a, two)", 11, "expected a non-negative integer", ""),
    ("deps(//a, -1)", 11, "expected an integer as argument 2 of deps()", ""),
    ("attr(spec..runtime, x, //a)", 6, "invalid field path", ""),
    ("", 1, "empty query", ""),
    ("   ", 1, "empty query", ""),
    ("//a //b", 5, "after a complete expression", "join expressions"),
    ("+ //a", 1, "expected an expression", ""),
    ("//a +", 6, "expected an expression, found end of expression", ""),
    ("'//a", 1, "unterminated quoted word", ""),
    ("let = //a in //a", 5, "expected a variable name after 'let'", ""),
    ("let x //a in $x", 7, "expected '='", ""),
    ("let x = //a $x", 13, "expected 'in'", ""),
    ("//a + in", 7, "unexpected keyword 'in'", "quote it"),
    ("*", 1, "unexpected character '*'", ""),
    ("//a & //b", 5, "unexpected character '&'", ""),
    ("$", 1, "'$' must be followed by a variable name", ""),
])
def test_syntax_errors_point_at_the_offending_token(text: str, column: int, message: str, hint: str) -> None:
    with pytest.raises(QuerySyntaxError) as err:
        parse(text)
    assert message in str(err.value)
    assert err.value.column == column, str(err.value)
    assert hint in err.value.hint
    assert err.value.expr == text
    assert err.value.pointer().endswith(" " * (column - 1) + "^")


def test_function_table_is_extensible_without_touching_the_parser(graph: Graph) -> None:
    def produces(ctx: Any, args: list[Any]) -> set[str]:
        (targets,) = args
        return {e.dst for n in targets for e in ctx.graph.out_edges.get(n, ()) if e.kind is EdgeKind.WRITES}

    register(Function("produces_test", (Arg.EXPR,), produces, doc="datasets written"))
    try:
        assert parse("produces_test(//a)") == Call("produces_test", (A,))
        assert q(graph, "produces_test(//pipelines/...)") == {"//datasets/clean", "//datasets/report"}
        with pytest.raises(ValueError, match="already registered"):
            register(Function("produces_test", (Arg.EXPR,), produces))
    finally:
        del FUNCTIONS["produces_test"]
    with pytest.raises(ValueError):
        register(Function("in", (Arg.EXPR,), produces))
    assert {"deps", "rdeps", "allpaths", "somepath", "kind", "attr", "filter"} <= set(FUNCTIONS)


# --- evaluation ----------------------------------------------------------------------------------

def test_patterns(graph: Graph) -> None:
    assert q(graph, "//...") == ALL
    assert q(graph, "//datasets/...") == {"//datasets/raw", "//datasets/clean", "//datasets/report",
                                          "//datasets/orphan", "//datasets/group"}
    assert q(graph, "//pipelines/publish") == {"//pipelines/publish"}
    assert q(graph, "//pipelines/publish:publish") == {"//pipelines/publish"}
    assert q(graph, "//pipelines/publish:all") == {"//pipelines/publish", "//pipelines/publish:extra"}
    assert q(graph, "'//pipelines/publish:extra'") == {"//pipelines/publish:extra"}


def test_relative_labels_use_the_current_package(root: Path) -> None:
    here = load(root / "pipelines" / "publish")
    assert here.current_package == "pipelines/publish"
    assert evaluate(":extra", here.graph, here.current_package) == {"//pipelines/publish:extra"}
    assert evaluate(":all - :publish", here.graph, here.current_package) == {"//pipelines/publish:extra"}
    assert evaluate("deps(:extra, 1)", here.graph, here.current_package) == \
        {"//pipelines/publish:extra", "//platform/stores/lake"}
    assert evaluate("...", here.graph, here.current_package) == {"//pipelines/publish", "//pipelines/publish:extra"}


def test_unknown_pattern_is_a_pattern_error_with_suggestions(graph: Graph) -> None:
    with pytest.raises(PatternError) as err:
        q(graph, "deps(//datasets/raw) + //datasets/clen")
    assert "no target matches '//datasets/clen'" in str(err.value)
    assert "//datasets/clean" in err.value.hint
    assert err.value.column == 24
    assert err.value.text == "deps(//datasets/raw) + //datasets/clen"
    with pytest.raises(PatternError, match="no targets below //nowhere"):
        q(graph, "//nowhere/...")


def test_malformed_and_negative_patterns_are_pattern_errors(graph: Graph) -> None:
    with pytest.raises(PatternError, match="'..' is not allowed"):
        q(graph, "//a/../b")
    with pytest.raises(PatternError, match="subtracts with '-'") as err:
        q(graph, "//... + '-//datasets/raw'")
    assert err.value.column == 10  # the character after the opening quote


def test_deps_with_depth(graph: Graph) -> None:
    assert q(graph, "deps(//pipelines/ingest, 0)") == {"//pipelines/ingest"}
    assert q(graph, "deps(//pipelines/ingest, 1)") == {"//pipelines/ingest", "//datasets/raw", "//datasets/clean"}
    assert q(graph, "deps(//pipelines/ingest, 2)") == {
        "//pipelines/ingest", "//datasets/raw", "//datasets/clean", "//platform/stores/lake",
        "//platform/stores/warehouse"}
    assert q(graph, "deps(//pipelines/ingest)") == {
        "//pipelines/ingest", "//datasets/raw", "//datasets/clean", "//platform/stores/lake",
        "//platform/stores/warehouse", "//platform/connectors/postgres", "//platform/connectors/s3"}
    assert q(graph, "deps(//platform/connectors/...)") == {"//platform/connectors/postgres",
                                                           "//platform/connectors/s3"}


def test_rdeps(graph: Graph) -> None:
    assert q(graph, "rdeps(//..., //datasets/clean)") == {
        "//datasets/clean", "//pipelines/ingest", "//pipelines/publish", "//datasets/group"}
    assert q(graph, "rdeps(//..., //platform/stores/lake)") == {
        "//platform/stores/lake", "//datasets/raw", "//datasets/orphan", "//pipelines/publish:extra",
        "//pipelines/ingest"}
    assert q(graph, "rdeps(//..., //platform/stores/lake, 1)") == {
        "//platform/stores/lake", "//datasets/raw", "//datasets/orphan", "//pipelines/publish:extra"}
    assert q(graph, "rdeps(//..., //platform/stores/lake, 0)") == {"//platform/stores/lake"}
    assert q(graph, "rdeps(//..., //platform/connectors/s3)") == {
        "//platform/connectors/s3", "//platform/stores/warehouse", "//datasets/clean", "//datasets/report",
        "//datasets/group", "//pipelines/ingest", "//pipelines/publish"}


def test_rdeps_only_walks_through_the_universe(graph: Graph) -> None:
    # ingest reaches lake only through //datasets/raw, which is outside this universe.
    assert q(graph, "rdeps(//pipelines/..., //platform/stores/lake)") == {
        "//platform/stores/lake", "//pipelines/publish:extra"}
    assert q(graph, "rdeps(//pipelines/... + //datasets/raw, //platform/stores/lake)") == {
        "//platform/stores/lake", "//pipelines/publish:extra", "//datasets/raw", "//pipelines/ingest"}
    # Bazel's closed universe, spelled out:
    assert "//pipelines/ingest" in q(graph, "rdeps(deps(//pipelines/...), //platform/stores/lake)")
    # The targets themselves are kept even outside the universe.
    assert q(graph, "rdeps(//platform/connectors/..., //datasets/raw)") == {"//datasets/raw"}


def test_allpaths(graph: Graph) -> None:
    assert q(graph, "allpaths(//pipelines/publish, //platform/connectors/s3)") == {
        "//pipelines/publish", "//datasets/clean", "//datasets/report", "//platform/stores/warehouse",
        "//platform/connectors/s3"}
    assert q(graph, "allpaths(//datasets/group, //platform/stores/warehouse)") == {
        "//datasets/group", "//datasets/clean", "//datasets/report", "//platform/stores/warehouse"}
    assert q(graph, "allpaths(//datasets/raw, //pipelines/ingest)") == set()
    assert q(graph, "allpaths(//pipelines/publish, //platform/connectors/postgres)") == set()
    assert q(graph, "allpaths(//datasets/raw, //datasets/raw)") == {"//datasets/raw"}
    # //pipelines/... includes the flat dataset //pipelines/publish:extra, which is stored in lake.
    assert q(graph, "allpaths(//pipelines/..., //platform/connectors/postgres)") == {
        "//pipelines/ingest", "//pipelines/publish:extra", "//datasets/raw", "//platform/stores/lake",
        "//platform/connectors/postgres"}


def test_somepath_is_one_shortest_path_chosen_deterministically(graph: Graph) -> None:
    # publish -> clean -> warehouse -> s3 and publish -> report -> warehouse -> s3 are both
    # shortest; neighbours are tried in id order, so clean wins.
    assert q(graph, "somepath(//pipelines/publish, //platform/connectors/s3)") == {
        "//pipelines/publish", "//datasets/clean", "//platform/stores/warehouse", "//platform/connectors/s3"}
    assert some_path(graph, ["//pipelines/publish"], ["//platform/connectors/s3"]) == [
        "//pipelines/publish", "//datasets/clean", "//platform/stores/warehouse", "//platform/connectors/s3"]
    # The nearest of several targets; a direct edge beats a longer way round.
    assert q(graph, "somepath(//pipelines/publish, //platform/...)") == {
        "//pipelines/publish", "//datasets/clean", "//platform/stores/warehouse"}
    assert q(graph, "somepath(//datasets/group, //platform/stores/warehouse)") == {
        "//datasets/group", "//platform/stores/warehouse"}
    assert q(graph, "somepath(//datasets/raw, //pipelines/...)") == set()
    assert q(graph, "somepath(//datasets/... , //datasets/raw)") == {"//datasets/raw"}


def test_kind(graph: Graph) -> None:
    assert q(graph, "kind(Transform, //...)") == {"//pipelines/ingest", "//pipelines/publish"}
    assert q(graph, "kind(Data, //...)") == q(graph, "//datasets/... + //pipelines/publish:extra")
    assert q(graph, "kind('^DataSet$', //...)") == q(graph, "//datasets/... + :extra - //datasets/group",
                                                     "pipelines/publish")
    assert q(graph, "kind(store, //...)") == set()  # case-sensitive
    assert q(graph, "kind('Store|Connector', //...)") == q(graph, "//platform/...")


def test_attr(graph: Graph) -> None:
    assert q(graph, "attr(spec.runtime, dbt, //...)") == {"//pipelines/publish"}
    assert q(graph, "attr(spec.runtime, python, //...)") == {"//pipelines/ingest"}
    assert q(graph, "attr(metadata.labels.team, '^(bi|core)$', //...)") == {"//pipelines/ingest",
                                                                            "//pipelines/publish"}
    # A label key with dots in it.
    assert q(graph, "attr(metadata.labels.datakit.infoblox.dev/tier, gold, //...)") == {"//pipelines/publish"}
    # Lists: any element; lists of mappings are searched field by field, or by index.
    assert q(graph, "attr(spec.datasets, '^report$', //...)") == {"//datasets/group"}
    assert q(graph, "attr(spec.inputs.dataset, '^clean$', //...)") == {"//pipelines/publish"}
    assert q(graph, "attr(spec.outputs.0.dataset, clean, //...)") == {"//pipelines/ingest"}
    assert q(graph, "attr(spec.inputs.1.dataset, clean, //...)") == set()
    assert q(graph, "attr(spec.capabilities, destination, //...)") == q(graph, "//platform/connectors/...")
    # Mappings compare as canonical JSON; numbers and booleans in their JSON spelling.
    assert q(graph, "attr(spec.connection, '\"port\":5432', //...)") == q(graph, "//platform/stores/...")
    assert q(graph, "attr(spec.connection.port, '^5432$', //...)") == q(graph, "//platform/stores/...")
    assert q(graph, "attr(spec.schema.from, 'raw\\.id', //...)") == {"//datasets/clean"}
    # A missing field never matches, even the empty regex.
    assert q(graph, "attr(metadata.namespace, '', //...)") == set()
    assert q(graph, "attr(label, ':extra$', //...)") == {"//pipelines/publish:extra"}
    assert q(graph, "attr(label, 'publish:publish', //...)") == {"//pipelines/publish"}


def test_filter_matches_ids_and_every_label(graph: Graph) -> None:
    assert q(graph, "filter(pipelines, //...)") == {"//pipelines/ingest", "//pipelines/publish",
                                                    "//pipelines/publish:extra"}
    assert q(graph, "filter('^//datasets/r', //...)") == {"//datasets/raw", "//datasets/report"}
    assert q(graph, "filter(':publish$', //...)") == {"//pipelines/publish"}


def test_set_operations_and_let(graph: Graph) -> None:
    assert q(graph, "//datasets/... - //datasets/group") == q(graph, "kind('^DataSet$', //datasets/...)")
    assert q(graph, "//datasets/raw + //datasets/clean") == {"//datasets/raw", "//datasets/clean"}
    assert q(graph, "//datasets/raw union //datasets/clean except //datasets/raw") == {"//datasets/clean"}
    assert q(graph, "//datasets/raw + (//datasets/clean - //datasets/raw)") == {"//datasets/raw",
                                                                                "//datasets/clean"}
    assert q(graph, "deps(//pipelines/ingest) ^ kind(Connector, //...)") == q(graph, "//platform/connectors/...")
    assert q(graph, "deps(//pipelines/ingest) intersect //platform/stores/...") == q(graph, "//platform/stores/...")
    assert q(graph, "let p = //pipelines/... in deps($p, 1) - $p") == {
        "//datasets/raw", "//datasets/clean", "//datasets/report", "//platform/stores/lake"}
    assert q(graph, "let x = //datasets/clean in let y = rdeps(//..., $x, 1) in $y - $x") == {
        "//pipelines/ingest", "//pipelines/publish", "//datasets/group"}


def test_evaluate_accepts_a_parsed_tree(graph: Graph) -> None:
    tree = parse("kind(Transform, //...)")
    assert evaluate(tree, graph) == {"//pipelines/ingest", "//pipelines/publish"}


def test_demo_queries_on_the_example(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "monorepo"
    if not (example / "workspace.toml").is_file():
        pytest.skip("no example workspace")
    g = load(example).graph
    found = evaluate("deps(//pipelines/enrich)", g)
    assert "//pipelines/enrich" in found and len(found) > 1
    assert evaluate("kind(Transform, rdeps(//..., //pipelines/enrich))", g) == {"//pipelines/enrich"}


# --- a large generated graph ----------------------------------------------------------------------

def _generated_graph(chain: int, fan: int) -> Graph:
    """`//gen:c0 -> c1 -> ... -> c{chain-1}` plus `//gen:hub -> f0..f{fan-1} -> c{chain-1}`."""
    g = Graph()

    def add(name: str) -> str:
        node_id = f"//gen:{name}"
        manifest = Manifest("DataSet", name, "gen/dk.yaml", 0, 1, "gen", "flat",
                            {"metadata": {"name": name}}, None)  # type: ignore[arg-type]
        g.nodes[node_id] = Node(node_id, "DataSet", name, manifest, (manifest,))
        g.out_edges[node_id], g.in_edges[node_id] = [], []
        g.aliases[node_id] = node_id
        g.package_nodes.setdefault("gen", set()).add(node_id)
        return node_id

    chain_ids = [add(f"c{i}") for i in range(chain)]
    for a, b in zip(chain_ids, chain_ids[1:]):
        g.add_edge(Edge(a, b, EdgeKind.MEMBER, "spec.datasets[0]"))
    hub = add("hub")
    for i in range(fan):
        leaf = add(f"f{i}")
        g.add_edge(Edge(hub, leaf, EdgeKind.MEMBER, f"spec.datasets[{i}]"))
        g.add_edge(Edge(leaf, chain_ids[-1], EdgeKind.STORE, "spec.store"))
    return g


def test_traversals_scale_to_a_20k_node_graph() -> None:
    g = _generated_graph(chain=10_000, fan=10_000)
    assert len(g.nodes) == 20_001
    last = "//gen:c9999"
    assert evaluate(f"rdeps(//..., {last})", g) == set(g.nodes)
    assert len(evaluate("deps(//gen:c0)", g)) == 10_000
    assert evaluate("deps(//gen:hub, 1)", g) == {"//gen:hub"} | {f"//gen:f{i}" for i in range(10_000)}
    assert len(evaluate(f"somepath(//gen:c0, {last})", g)) == 10_000
    assert evaluate(f"somepath(//gen:hub, {last})", g) == {"//gen:hub", "//gen:f0", last}
    assert len(evaluate(f"allpaths(//gen:hub + //gen:c0, {last})", g)) == 20_001
    assert evaluate(f"rdeps(//gen:all - //gen:hub, {last}, 1)", g) == \
        {last, "//gen:c9998"} | {f"//gen:f{i}" for i in range(10_000)}
    long_union = " + ".join(f"//gen:f{i}" for i in range(3_000))   # deep left-nested tree
    assert len(evaluate(long_union, g)) == 3_000
    assert len(str(parse(long_union))) == len(long_union)


# --- renderers -----------------------------------------------------------------------------------

SOME = {"//pipelines/ingest", "//pipelines/publish", "//datasets/report", "//datasets/clean", "//platform/stores/warehouse",
        "//platform/connectors/s3", "//datasets/group"}


def test_render_labels_and_label_kind(graph: Graph) -> None:
    assert render_labels(graph, SOME).splitlines() == sorted(SOME)
    assert render_labels(graph, set()) == ""
    lines = render_label_kind(graph, SOME).splitlines()
    assert lines[0] == "DataSet //datasets/clean"
    assert "DataSetGroup //datasets/group" in lines
    assert "Connector //platform/connectors/s3" in lines
    assert [line.split(" ", 1)[1] for line in lines] == sorted(SOME)


def test_render_json(graph: Graph) -> None:
    doc = render_json(graph, SOME, keys={"//datasets/clean": "sha256:abc"})
    json.dumps(doc)  # serializable
    targets = doc["targets"]
    assert [t["label"] for t in targets] == sorted(SOME)
    clean = targets[0]
    assert clean == {
        "label": "//datasets/clean", "kind": "DataSet", "name": "clean", "package": "datasets/clean",
        "file": "datasets/clean/dk.yaml", "line": clean["line"], "labels": ["//datasets/clean:clean"],
        "key": "sha256:abc",
        "deps": [{"label": "//platform/stores/warehouse", "edge": "store", "field": "spec.store"}],
    }
    assert isinstance(clean["line"], int) and clean["line"] >= 1
    assert all(t["key"] is None for t in targets[1:])
    ingest = next(t for t in targets if t["label"] == "//pipelines/ingest")
    assert {"label": "//datasets/raw", "edge": "reads", "field": "spec.inputs[0].dataset"} in ingest["deps"]
    publish = next(t for t in targets if t["label"] == "//pipelines/publish")
    assert {"label": "//datasets/report", "edge": "writes", "field": "spec.outputs[0].dataset"} in publish["deps"]


def _dot_structure(text: str) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    lines = text.strip().splitlines()
    assert lines[0] == "digraph dkb {" and lines[-1] == "}"
    nodes, edges = {}, []
    quoted = r'"((?:[^"\\]|\\.)*)"'
    for line in lines[1:-1]:
        if m := re.fullmatch(rf"\s*{quoted} -> {quoted} \[label={quoted}\];", line):
            edges.append(m.groups())
        elif m := re.fullmatch(rf"\s*{quoted} \[shape=(\w+)\];", line):
            nodes[m.group(1)] = m.group(2)
        else:
            assert re.fullmatch(r"\s*(rankdir=LR|node \[.*\]);", line), line
    assert text.count("{") == text.count("}")
    return nodes, edges


def test_render_dot(graph: Graph) -> None:
    nodes, edges = _dot_structure(render_dot(graph, SOME))
    assert nodes == {"//pipelines/ingest": "box", "//pipelines/publish": "box", "//datasets/report": "cylinder",
                     "//datasets/clean": "cylinder", "//platform/stores/warehouse": "folder",
                     "//platform/connectors/s3": "component", "//datasets/group": "tab"}
    assert ("//pipelines/publish", "//datasets/clean", "reads") in edges
    assert ("//datasets/group", "//datasets/report", "member") in edges
    assert ("//platform/stores/warehouse", "//platform/connectors/s3", "connector") in edges
    # Only edges among the selected nodes (ingest also reads raw, which is not selected).
    assert ("//pipelines/ingest", "//datasets/clean", "writes") in edges
    assert all(src in SOME and dst in SOME for src, dst, _ in edges)
    assert render_dot(graph, SOME) == render_dot(graph, list(reversed(sorted(SOME))))


def test_render_dot_quotes_ids() -> None:
    g = _generated_graph(chain=2, fan=0)
    node = g.nodes.pop("//gen:c0")
    weird = 'x"y\\z'
    g.nodes[weird] = Node(weird, node.kind, node.name, node.manifest, node.definitions)
    text = render_dot(g, {weird, "//gen:c1"})
    assert '"x\\"y\\\\z" [shape=cylinder];' in text
    _dot_structure(text)


def test_render_mermaid(graph: Graph) -> None:
    text = render_mermaid(graph, SOME)
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    ids = {}
    for line in lines[1:]:
        if m := re.fullmatch(r'  (n\d+)(\[\(|\[/|\{\{|\[\[|\[)"([^"]*)"(\)\]|/\]|\}\}|\]\]|\])', line):
            ids[m.group(3)] = (m.group(1), m.group(2) + m.group(4))
        else:
            assert re.fullmatch(r"  n\d+ -->\|[a-z]+\| n\d+", line), line
    assert ids["//pipelines/publish"][1] == "[]"
    assert ids["//datasets/clean"][1] == "[()]"
    assert ids["//platform/stores/warehouse"][1] == "[//]"
    assert ids["//platform/connectors/s3"][1] == "{{}}"
    assert ids["//datasets/group"][1] == "[[]]"
    assert [ids[i][0] for i in sorted(SOME)] == [f"n{k}" for k in range(len(SOME))]
    publish, clean = ids["//pipelines/publish"][0], ids["//datasets/clean"][0]
    assert f"  {publish} -->|reads| {clean}" in lines


def test_render_mermaid_escapes_quotes() -> None:
    g = _generated_graph(chain=1, fan=0)
    node = g.nodes.pop("//gen:c0")
    g.nodes['a"b'] = Node('a"b', node.kind, node.name, node.manifest, node.definitions)
    assert render_mermaid(g, {'a"b'}) == 'flowchart LR\n  n0[("a#quot;b")]\n'


# --- properties ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def words(graph: Graph) -> list[str]:
    """Patterns that match something: every label, package, and recursive prefix."""
    out = set(graph.aliases) | {f"//{p}" for p in graph.package_default} | {f"//{p}:all" for p in graph.package_nodes}
    for package in graph.package_nodes:
        parts = package.split("/")
        out |= {"//" + "/".join(parts[:i]) + "/..." for i in range(1, len(parts) + 1)}
    return sorted(out | {"//..."})


def expression_texts(words: list[str], variables: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """Query text from the grammar, with every spelling the lexer accepts."""
    def word(w: str) -> st.SearchStrategy[str]:
        return st.sampled_from([w, f'"{w}"', f"'{w}'"])

    leaf = st.sampled_from(words).flatmap(word)
    if variables:
        leaf = st.one_of(leaf, st.sampled_from([f"${v}" for v in variables]))
    regex = st.sampled_from(["Transform", "Data", "'^DataSet$'", "'Store|Connector'", "\"^(S|C)\"", ".*"])
    op = st.sampled_from(["+", "-", "^", "union", "except", "intersect"])
    space = st.sampled_from([" ", "  ", "\t"])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, op, inner, space).map(lambda t: f"{t[0]}{t[3]}{t[1]}{t[3]}{t[2]}"),
            inner.map(lambda e: f"({e})"),
            st.tuples(inner, st.none() | st.integers(0, 3)).map(
                lambda t: f"deps({t[0]})" if t[1] is None else f"deps({t[0]},{t[1]})"),
            st.tuples(inner, inner, st.none() | st.integers(0, 3)).map(
                lambda t: f"rdeps({t[0]}, {t[1]})" if t[2] is None else f"rdeps({t[0]}, {t[1]}, {t[2]})"),
            st.tuples(inner, inner).map(lambda t: f"allpaths({t[0]}, {t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"somepath({t[0]}, {t[1]})"),
            st.tuples(regex, inner).map(lambda t: f"kind({t[0]}, {t[1]})"),
            st.tuples(regex, inner).map(lambda t: f"filter({t[0]}, {t[1]})"),
            st.tuples(st.sampled_from(["spec.runtime", "metadata.name", "label", "spec.inputs.dataset"]),
                      regex, inner).map(lambda t: f"attr({t[0]}, {t[1]}, {t[2]})"),
        )

    return st.recursive(leaf, extend, max_leaves=8)


def lets(words: list[str]) -> st.SearchStrategy[str]:
    return st.tuples(expression_texts(words), expression_texts(words, ("v",))).map(
        lambda t: f"let v = {t[0]} in {t[1]}")


NAME_CHARS = st.text(st.sampled_from("abz019/:._@~-*+,= ()^$'\"[]"), min_size=1, max_size=12)


def trees() -> st.SearchStrategy[Any]:
    """Arbitrary syntax trees, including words that need quoting (never both quote kinds)."""
    words = NAME_CHARS.filter(lambda w: not ("'" in w and '"' in w)).map(Word)
    regexes = st.sampled_from(["a", "^x$", "(a|b)+", "[,]", "let"]).map(Word)

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.builds(SetOp, st.sampled_from(["+", "-", "^"]), inner, inner),
            st.builds(Let, st.sampled_from(["v"]), inner, inner),
            st.builds(lambda e, d: Call("deps", (e,) if d is None else (e, Integer(d))),
                      inner, st.none() | st.integers(0, 99)),
            st.builds(lambda a, b: Call("rdeps", (a, b)), inner, inner),
            st.builds(lambda r, e: Call("kind", (r, e)), regexes, inner),
            st.builds(lambda r, e: Call("attr", (Word("spec.x"), r, e)), regexes, inner),
        )

    return st.recursive(words, extend, max_leaves=10)


def _bind_free_vars(tree: Any) -> Any:
    """Vars only where bound: generated trees have none, Let bodies get a `$v` mixed in."""
    if isinstance(tree, Let):
        return Let(tree.name, _bind_free_vars(tree.value), SetOp("+", _bind_free_vars(tree.body), Var(tree.name)))
    if isinstance(tree, SetOp):
        return SetOp(tree.op, _bind_free_vars(tree.left), _bind_free_vars(tree.right))
    if isinstance(tree, Call):
        return Call(tree.name, tuple(_bind_free_vars(a) for a in tree.args))
    return tree


_SETTINGS = settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_SETTINGS
@given(data=st.data())
def test_generated_expressions_parse_and_round_trip(words: list[str], graph: Graph, data: st.DataObject) -> None:
    text = data.draw(st.one_of(expression_texts(words), lets(words)))
    tree = parse(text)
    canonical = str(tree)
    assert parse(canonical) == tree
    assert str(parse(canonical)) == canonical
    assert evaluate(canonical, graph) == evaluate(text, graph)


@_SETTINGS
@given(tree=trees().map(_bind_free_vars))
def test_printed_trees_parse_back_to_themselves(tree: Any) -> None:
    assert parse(str(tree)) == tree


@_SETTINGS
@given(data=st.data())
def test_set_algebra(words: list[str], graph: Graph, data: st.DataObject) -> None:
    a = data.draw(expression_texts(words), label="a")
    b = data.draw(expression_texts(words), label="b")
    ea, eb = q(graph, a), q(graph, b)
    assert q(graph, f"({a}) - ({a})") == set()
    assert q(graph, f"({a}) + ({b})") == q(graph, f"({b}) union ({a})") == ea | eb
    assert q(graph, f"({a}) ^ ({b})") == q(graph, f"({b}) intersect ({a})") == ea & eb
    assert q(graph, f"({a}) - ({b})") == ea - eb
    assert q(graph, f"let v = {a} in $v - ({b})") == ea - eb


@_SETTINGS
@given(data=st.data())
def test_traversals_contain_their_targets(words: list[str], graph: Graph, data: st.DataObject) -> None:
    x = data.draw(expression_texts(words), label="x")
    ex = q(graph, x)
    deps, rdeps = q(graph, f"deps({x})"), q(graph, f"rdeps(//..., {x})")
    assert deps >= ex and rdeps >= ex
    assert q(graph, f"deps({x}, 1)") <= deps
    assert q(graph, f"deps({x}, 0)") == ex
    assert q(graph, f"rdeps(//..., {x}, 0)") == ex
    # allpaths(x, y) lies within deps(x) and rdeps(y); somepath within allpaths.
    y = data.draw(expression_texts(words), label="y")
    paths = q(graph, f"allpaths({x}, {y})")
    assert paths <= deps and paths <= q(graph, f"rdeps(//..., {y})")
    assert q(graph, f"somepath({x}, {y})") <= paths
    assert bool(paths) == bool(q(graph, f"somepath({x}, {y})"))
