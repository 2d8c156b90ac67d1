"""Telemetry retention: per-minute and per-hour roll-ups of the prediction log and of step
runs, and pruning of raw rows in small batches once they are rolled up (docs/monitoring.md)."""
