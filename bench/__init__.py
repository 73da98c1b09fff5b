"""Benchmarks: `python -m bench.score_cpu`, `python -m bench.ingest`, `python -m bench.score_gpu` (see RESULTS.md)."""
