"""``csv_profile`` streams its input: the profile of a file read in many small blocks equals the
profile computed on the whole file in memory, and profiling a file ten times larger raises the
peak RSS by no more than a bound set by the block size."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conveyor.pipelines.csv_profile import _layout
from conveyor.pipelines.csv_profile.scan import profile_csv
from conveyor.pipelines.csv_profile.sketches import DistinctSketch, QuantileSample

BLOCK = 4096


def in_memory_profile(text: str) -> dict[str, Any]:
    """The profile as csv_profile computed it before streaming: every row in a list."""
    rows = [row for row in csv.reader(io.StringIO(text))]
    header, body = rows[0], [row for row in rows[1:] if row]
    width = len(header)
    padded = [row[:width] + [None] * (width - len(row)) for row in body]
    columns = {}
    for number, name in enumerate(header):
        values = [row[number] for row in padded]
        present = [v for v in values if v is not None and v.strip() != ""]
        numbers = [_number(v) for v in present]
        profile: dict[str, Any] = {"missing": len(values) - len(present)}
        if present and None not in numbers:
            mean = sum(numbers) / len(numbers)  # type: ignore[arg-type]
            std = math.sqrt(sum((n - mean) ** 2 for n in numbers) / len(numbers))  # type: ignore[operator]
            profile |= {"type": "number", "min": min(numbers), "max": max(numbers)}  # type: ignore[type-var]
            profile |= {"mean": round(mean, 6), "std": round(std, 6)}
            quartiles = np.quantile(numbers, [0.25, 0.5, 0.75])  # all kept: exact
            profile |= dict(zip(("p25", "median", "p75"), quartiles.round(6).tolist(), strict=True))
        else:
            top = [[v, c] for v, c in Counter(present).most_common(3)]
            profile |= {"type": "text", "distinct": len(set(present)), "top": top}
        columns[name] = profile
    incomplete = sum(1 for row in padded if any(v is None or v.strip() == "" for v in row))
    keys = [tuple(row) for row in padded]
    quality = {"duplicate_rows": len(keys) - len(set(keys)), "incomplete_rows": incomplete}
    return {"rows": len(body), "columns": columns, "quality": quality}


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def tricky_csv(rows: int) -> str:
    """Numbers, text, missing cells, quoted separators and newlines, blank lines, short and
    long rows, duplicates, and a column that turns to text after thousands of numbers."""
    rng = np.random.default_rng(7)
    lines = ["id,amount,city,note,late"]
    cities = ["Lyon", "Oslo", "Porto", "Quito", " "]
    for n in range(rows):
        amount = "" if n % 17 == 0 else f"{rng.normal(50, 20):.3f}"
        city = cities[int(rng.integers(0, len(cities)))]
        note = '"a, quoted\nnote"' if n % 101 == 0 else f"n{n % 40}"
        late = "oops" if n == rows - 3 else str(int(rng.integers(0, 9)))
        lines.append(f"{n},{amount},{city},{note},{late}")
        if n % 500 == 0:
            lines.append(lines[-1])
        if n % 997 == 0:
            lines += ["", f"{n},1.5", f"{n},2,Lyon,x,3,extra"]
    return "\n".join(lines) + "\n"


def test_a_file_read_in_small_blocks_profiles_as_the_whole_file(tmp_path: Path) -> None:
    text = tricky_csv(6000)
    path = tmp_path / "tricky.csv"
    path.write_text(text)
    layout = _layout(path, "tricky.csv")
    assert layout.header == ["id", "amount", "city", "note", "late"]
    spill = tmp_path / "spill"
    spill.mkdir()
    streamed = profile_csv(path, layout, spill, BLOCK)
    expected = in_memory_profile(text)
    assert len(text) > 30 * BLOCK
    assert streamed["rows"] == expected["rows"]
    assert streamed["quality"] == expected["quality"]
    assert expected["quality"]["duplicate_rows"] > 0
    for name, profile in expected["columns"].items():
        got = streamed["columns"][name]
        assert got.keys() == profile.keys(), name
        for key, value in profile.items():
            close = key in ("mean", "std", "p25", "median", "p75")
            assert got[key] == (pytest.approx(value) if close else value), key
    assert streamed["columns"]["late"]["type"] == "text"
    assert not list(spill.iterdir())  # the row hashes spilled to disk are removed


def test_the_distinct_estimate_is_exact_when_small_and_close_when_large() -> None:
    rng = np.random.default_rng(1)
    small = DistinctSketch(size=1024)
    small.add(rng.integers(0, 2**63, 500, dtype=np.uint64))
    assert small.estimate() == 500
    large = DistinctSketch(size=4096)
    values = rng.integers(0, 2**63, 300_000, dtype=np.uint64) * np.uint64(2)
    for block in np.array_split(values, 30):
        large.add(np.concatenate([block, block[:100]]))  # repeats are not counted twice
    assert abs(large.estimate() - 300_000) < 300_000 * 0.05


def test_quartiles_are_exact_when_few_and_close_from_the_sample_when_many() -> None:
    rng = np.random.default_rng(2)
    few = rng.normal(size=800)
    exact = QuantileSample(size=1000)
    exact.add(few[:500])
    exact.add(few[500:])
    quartiles = np.quantile(few, [0.25, 0.5, 0.75]).round(6).tolist()
    assert exact.summary() == dict(zip(("p25", "median", "p75"), quartiles, strict=True))
    sampled = QuantileSample(size=10_000)
    for _ in range(30):
        sampled.add(rng.normal(size=10_000))
    summary = sampled.summary()
    assert summary["quartiles_approximate"] is True
    assert abs(summary["median"]) < 0.05 and abs(summary["p75"] - 0.6745) < 0.05


PEAK_SCRIPT = """
import json, resource, sys, tempfile
from pathlib import Path
from conveyor.pipelines.csv_profile import _layout
from conveyor.pipelines.csv_profile.scan import profile_csv
path, block = Path(sys.argv[1]), int(sys.argv[2])
with tempfile.TemporaryDirectory() as spill:
    profile = profile_csv(path, _layout(path, path.name), Path(spill), block)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"rows": profile["rows"], "peak": peak}))
"""


def write_numbers_csv(path: Path, rows: int) -> None:
    rng = np.random.default_rng(3)
    with path.open("w") as handle:
        handle.write("id,a,b,c,label,code\n")
        for start in range(0, rows, 100_000):
            count = min(100_000, rows - start)
            ids = np.arange(start, start + count)
            numbers = rng.normal(size=(count, 3)).round(5)
            labels = rng.integers(0, 50, count)
            handle.writelines(
                f"{i},{a},{b},{c},k{k},c{i}\n"
                for i, (a, b, c), k in zip(ids, numbers, labels, strict=True)
            )


def test_peak_memory_grows_with_the_block_not_the_file(tmp_path: Path) -> None:
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    write_numbers_csv(small, 60_000)
    write_numbers_csv(large, 600_000)
    block = 512 * 1024
    peaks = {}
    for path in (small, large):
        done = subprocess.run(
            [sys.executable, "-c", PEAK_SCRIPT, str(path), str(block)],
            capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
        measured = json.loads(done.stdout)
        assert measured["rows"] == {"small": 60_000, "large": 600_000}[path.stem]
        peaks[path.stem] = measured["peak"]
    assert large.stat().st_size > 40 * block
    assert peaks["large"] < peaks["small"] + 24 * block, peaks
