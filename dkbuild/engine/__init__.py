"""The engine: plans actions from the graph, runs rules, reads and writes the cache."""
