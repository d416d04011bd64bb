"""The benchmark harness (`make bench`, run_bench.py) and its settings for the servers it starts."""
