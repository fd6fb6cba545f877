"""Benchmark harness for dkb: a synthetic workspace generator (`bench.generate`) and a runner (`bench.run`)."""
