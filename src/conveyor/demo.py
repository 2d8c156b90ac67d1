"""The demo job: sample CSV files and sample phone calls through the inbox, and records
through ``noop``."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from importlib import resources

from conveyor.installation import Installation

SAMPLE_FILES = 6
CALL_PACKAGE = "conveyor.pipelines.calls"


def sample_csv(seed: int, rows: int) -> bytes:
    """A small, plausible sensor table; a few gaps and a duplicate row on purpose."""
    generator = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["station", "timestamp", "temperature_c", "humidity_pct", "status"])
    lines = []
    for row in range(rows):
        temperature = round(generator.gauss(14 + seed, 4), 2)
        humidity = "" if generator.random() < 0.05 else round(generator.uniform(30, 95), 1)
        status = generator.choice(["ok", "ok", "ok", "maintenance"])
        lines.append(
            [
                f"st-{seed:02d}",
                f"2026-11-{1 + row % 28:02d}T{row % 24:02d}:00Z",
                temperature,
                humidity,
                status,
            ]
        )
    lines.append(lines[0])
    writer.writerows(lines)
    return out.getvalue().encode()


@dataclass(frozen=True)
class DemoInput:
    files: list[str]
    records: int
    calls: list[str] = field(default_factory=list)


def sample_calls() -> dict[str, bytes]:
    """The bundled sample calls (made by scripts/make_call_samples.py), by file name."""
    folder = resources.files(CALL_PACKAGE) / "samples"
    return {
        entry.name: entry.read_bytes()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".mp3")
    }


def stage_demo_inputs(installation: Installation, records: int = 200) -> DemoInput:
    names = []
    for seed in range(SAMPLE_FILES):
        data = sample_csv(seed, rows=200 + 150 * seed)
        names.append(
            installation.storage.put_in_inbox(f"station {seed:02d}.csv", data, "csv_profile")
        )
    installation.storage.put_in_inbox("empty.csv", b"", "csv_profile")
    names.append("empty.csv")
    installation.submitter.submit_records(
        "noop", [{"reading": n} for n in range(records)], source="demo"
    )
    calls = [
        installation.storage.put_in_inbox(name, data, "calls")
        for name, data in sample_calls().items()
    ]
    return DemoInput(names, records, calls)
