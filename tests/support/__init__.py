"""Helpers and test pipelines shared by the test suite (importable by Ray workers)."""
