"""Benchmarks: each module measures one thing beside its ceiling, in the same run, and appends a
dated section to bench/RESULTS.md. `make bench` runs them all (python -m bench)."""
