"""Helpers of the monitoring tests: reading metric values, finding the Prometheus binaries."""

from __future__ import annotations

import os
import shutil

import pytest
from prometheus_client import CollectorRegistry


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A sample's value, 0 when the series does not exist (as PromQL's ``or vector(0)``)."""
    return registry.get_sample_value(name, labels) or 0.0


def require_binary(name: str) -> str:
    """The path of a Debian Prometheus binary; skipped outside CI when missing, failed in CI."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed; scripts/test-services.sh installs it")
    pytest.skip(f"{name} not installed (apt-get install prometheus)")
