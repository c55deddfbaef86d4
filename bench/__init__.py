"""Benchmarks, run on demand by `make bench` (never by the test suite).

Each benchmark measures its subject and, in the same run on the same machine, a baseline, and
reports the ratio: this machine is shared and noisy, so only ratios compare across runs.
"""
