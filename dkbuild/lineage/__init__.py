"""Lineage: static dataset and column lineage from the graph, OpenLineage events, transports, and
the run wrapper. Reads the graph; never imports engine, oci or gitops."""
