"""Benchmarks: figures measured beside their baselines in the same run (see bench/run.py)."""
