"""Benchmark scripts (``python -m benchmarks.<name>``); each prints its figures and a last ``name=value`` line."""
