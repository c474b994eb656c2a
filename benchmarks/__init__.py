"""Benchmark scripts (run as files: python benchmarks/<name>.py); numbers in benchmarks/README.md."""
