"""Speed of the ``wildlife`` pipeline: seconds per clip end to end and frames per second per step.

Clips: the two real camera-trap clips (``$CONVEYOR_TEST_DATA/wildlife/*.mp4``, default: the
``shared/data`` folder beside the repository) and a synthetic 60-second 1080p clip made here
with PyAV (a cat crossing a textured scene). Each clip goes through one embedded installation
(SQLite, local Ray) as a real item: "end to end" is submit -> succeeded, Ray scheduling and
the database included. Three small warm-up clips run first so that the workers have loaded
the classifier, as they have in a running service; the cold start is printed separately.

Per step, "frames/s" is analysed frames (``fps`` per second of video, 5 by default) divided by
that step's own seconds, as the step measured them.

Usage: ``.venv/bin/python benchmarks/wildlife_speed.py [--long-seconds 60] [--json]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS.parent / "tests"))

from conveyor.installation import Installation  # noqa: E402
from conveyor.settings import load_settings  # noqa: E402
from conveyor.store import queries  # noqa: E402
from support import wildlife_video  # noqa: E402

SHARED_DATA = [BENCHMARKS.parent.parent / "shared" / "data", Path("/work/shared/data")]
# $CONVEYOR_TEST_DATA, else the shared data folder beside the repository (as CI lays it out)
DATA = (
    Path(
        os.environ.get("CONVEYOR_TEST_DATA")
        or next((p for p in SHARED_DATA if p.is_dir()), SHARED_DATA[-1])
    )
    / "wildlife"
)
STEPS = ("decode", "detect", "track", "render", "summarise")
TARGET_SECONDS = 10.0


def run_clip(installation: Installation, path: Path) -> dict[str, Any]:
    started = time.perf_counter()
    submission = installation.submitter.submit_file("wildlife", path, force=True)
    installation.controller().run_until_idle(timeout=1800)
    seconds = time.perf_counter() - started
    with installation.sessions() as session:
        item = queries.get_item(session, submission.item_id)
        stored = queries.result_of(session, item.id)
    if item.status != "succeeded" or stored is None:
        raise RuntimeError(f"{path.name} ended {item.status}: {item.error}")
    result = stored.result
    frames = result["file"]["frames"]
    return {
        "clip": path.name,
        "duration_s": result["file"]["duration_s"],
        "size": "x".join(str(v) for v in result["file"]["size"]),
        "frames": frames,
        "seconds": round(seconds, 2),
        "tracks": len(result["tracks"]),
        "groups": result["counts"],
        "step_seconds": result["seconds"],
        "frames_per_second": {
            step: round(frames / result["seconds"][step], 1) if result["seconds"][step] else None
            for step in STEPS
        },
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'clip':<26}{'length':>8}{'frames':>8}{'end to end':>12}  " + "".join(
        f"{step + ' f/s':>15}" for step in STEPS
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        rates = "".join(
            f"{row['frames_per_second'][s]:>9} ({row['step_seconds'][s]:.2f}s)".rjust(15)
            for s in STEPS
        )
        print(
            f"{row['clip'][:25]:<26}{row['duration_s']:>7.1f}s{row['frames']:>8}"
            f"{row['seconds']:>11.2f}s  {rates}"
        )
    for row in rows:
        print(f"  {row['clip']}: {row['tracks']} tracks {row['groups']}, analysed at {row['size']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-seconds", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="conveyor-wildlife-bench-") as folder:
        work = Path(folder)
        warmup = wildlife_video.crossing_clip(work / "warmup.mp4", [((0.2, 0.5), (0.8, 0.5))])
        started = time.perf_counter()
        made = wildlife_video.long_clip(
            work / "synthetic_1080p.mp4", arguments.long_seconds, (1920, 1080)
        )
        print(
            f"made the {arguments.long_seconds:.0f} s 1080p clip in "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        clips = [*sorted(DATA.glob("*.mp4")), made.path]
        installation = Installation(load_settings(work / "home"))
        try:
            cold = run_clip(installation, warmup.path)
            for _ in range(2):  # every worker process Ray keeps for these steps is warm
                run_clip(installation, warmup.path)
            print(
                f"cold start (workers load the classifier): {cold['seconds']:.2f} s "
                "for a 4 s 320x240 clip",
                file=sys.stderr,
            )
            rows = [run_clip(installation, clip) for clip in clips]
        finally:
            installation.close()
    if arguments.json:
        print(json.dumps(rows, indent=2))
        return
    print_table(rows)
    real = [row for row in rows if row["clip"] != made.path.name]
    if real:
        worst = max(row["seconds"] for row in real)
        verdict = "meets" if worst < TARGET_SECONDS else "misses"
        print(
            f"real clips: slowest {worst:.2f} s end to end, {verdict} the "
            f"{TARGET_SECONDS:.0f} s target"
        )


if __name__ == "__main__":
    main()
