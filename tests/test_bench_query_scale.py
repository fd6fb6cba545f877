"""bench.query_scale builds a real graph: the store every dataset is on is reached from everything."""

from bench.query_scale import synthetic_graph
from dkbuild.graph.query.evaluate import evaluate


def test_synthetic_graph_has_the_expected_shape() -> None:
    graph, hub = synthetic_graph(400)
    kinds = [n.kind for n in graph.nodes.values()]
    assert kinds.count("DataSet") == 200 and kinds.count("Transform") == 199
    assert len(evaluate("rdeps(//..., //platform/stores/lake)", graph)) == len(graph.nodes) - 1
    readers = evaluate(f"rdeps(//..., {hub}, 1)", graph)
    assert len(readers) > 2 and all(graph.nodes[r].kind == "Transform" for r in readers - {hub})
