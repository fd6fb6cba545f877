"""Query evaluation at scale, once the graph is loaded: `rdeps` on a graph of 50,000 nodes.

    python -m bench.query_scale [--nodes 50000] [--runs 5]

Builds a layered graph in memory through the real graph builder (transforms reading datasets of
earlier layers, datasets on stores on connectors), then times `dkb query`'s evaluator alone, so
the number is query cost, not load cost. Prints the median in milliseconds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from dkbuild.graph.build import build_graph
from dkbuild.graph.model import Graph
from dkbuild.graph.query.evaluate import evaluate
from dkbuild.manifests.manifest import Manifest
from dkbuild.manifests.models import MODEL_OF_KIND


def _manifest(kind: str, name: str, package: str, spec: dict) -> Manifest:
    data = {"apiVersion": "datakit.infoblox.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return Manifest(kind=kind, name=name, file=f"{package}/dk.yaml", doc_index=0, line=1, package=package,
                    layout="dk.yaml", data=data, model=MODEL_OF_KIND[kind].model_validate(data))


def synthetic_graph(nodes: int, seed: int = 0) -> tuple[Graph, str]:
    """About `nodes` nodes: half datasets, half transforms, 1-4 inputs each; returns the graph and the
    most-read dataset."""
    rng = random.Random(seed)
    manifests = [_manifest("Connector", "pg", "platform/connectors/pg", {"type": "postgres"}),
                 _manifest("Store", "lake", "platform/stores/lake", {"connector": "pg"})]
    datasets: list[str] = []
    reads: dict[str, int] = {}
    for i in range(nodes // 2):
        name = f"ds-{i:06d}"
        manifests.append(_manifest("DataSet", name, f"datasets/{name}", {"store": "lake"}))
        if datasets:
            inputs = sorted({rng.choice(datasets[-2000:]) for _ in range(rng.randint(1, 4))})
            for d in inputs:
                reads[d] = reads.get(d, 0) + 1
            manifests.append(_manifest("Transform", f"t-{i:06d}", f"pipelines/t-{i:06d}",
                                       {"runtime": "generic-python",
                                        "inputs": [{"dataset": d} for d in inputs],
                                        "outputs": [{"dataset": name}]}))
        datasets.append(name)
    hub = max(reads, key=lambda d: reads[d])
    return build_graph(manifests), f"//datasets/{hub}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    graph, hub = synthetic_graph(args.nodes)
    # The most-read dataset, and the store every dataset is on: the widest answer there is.
    for target in (hub, "//platform/stores/lake"):
        expr = f"rdeps(//..., {target})"
        timings, found = [], 0
        for _ in range(args.runs + 1):              # the first run warms up
            start = time.perf_counter()
            found = len(evaluate(expr, graph))
            timings.append(time.perf_counter() - start)
        print(f"{len(graph.nodes):,} nodes, {sum(len(e) for e in graph.out_edges.values()):,} edges: {expr} -> "
              f"{found:,} targets in {statistics.median(timings[1:]) * 1000:.0f} ms (median of {args.runs})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
