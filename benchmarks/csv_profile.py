"""``csv_profile``'s streaming scan on the batch-scoring benchmark's heart CSV: MB/s and peak RSS.

The file is ``benchmarks/batch_scoring.py``'s (header, ``id`` column, ``--rows`` rows, kept in
benchmarks/.cache/ and shared with that benchmark): the issue's figure is the 10 GB one,
``--rows 223000000`` (about 45 bytes a row), to be generated once on a machine with the disk
for it. The scan runs in a subprocess (the code of the pipeline's ``parse`` step, with the
row hashes spilled to a temporary folder) whose peak RSS is polled every 0.1 s.

Usage: ``.venv/bin/python benchmarks/csv_profile.py [--rows 4000000] [--block-size 1048576]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from batch_scoring import PYTHON, heart_csv, run_measured

SCAN = """
import json, sys, tempfile
from pathlib import Path
from conveyor.pipelines.csv_profile import _layout
from conveyor.pipelines.csv_profile.scan import profile_csv
path = Path(sys.argv[1])
with tempfile.TemporaryDirectory(prefix="csv-profile-bench-") as spill:
    profile = profile_csv(path, _layout(path, path.name), Path(spill), int(sys.argv[2]))
print(json.dumps({"rows": profile["rows"], "quality": profile["quality"]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--block-size", type=int, default=1024 * 1024)
    arguments = parser.parse_args()
    path = heart_csv(arguments.rows)
    size = path.stat().st_size
    command = [str(PYTHON), "-c", SCAN, str(path), str(arguments.block_size)]
    seconds, peak_rss, _, _, _ = run_measured(command, dict(os.environ))
    print(
        json.dumps(
            {
                "file_mb": round(size / 1e6, 1),
                "block_size": arguments.block_size,
                "seconds": round(seconds, 1),
                "mb_per_second": round(size / 1e6 / seconds, 1),
                "rows_per_second": round(arguments.rows / seconds),
                "peak_rss_mb": round(peak_rss / 1e6),
                "load_average": round(os.getloadavg()[0], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
