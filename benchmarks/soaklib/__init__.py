"""Pieces of benchmarks/soak.py: the system under soak, its load, its faults and the checks."""
