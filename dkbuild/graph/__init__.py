"""The graph: labels and patterns, nodes and typed edges, content keys, query, affected."""
