"""Make the three sample calls bundled for ``conveyor demo`` (happy, angry, neutral).

    .venv/bin/python scripts/make_call_samples.py

Needs espeak-ng and sox (with MP3 support: libsox-fmt-mp3). The calls are the scripted
dialogues of tests/support/calls_audio.py, spoken by two espeak-ng voices; the output files
are committed under src/conveyor/pipelines/calls/samples/.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.calls_audio import SCRIPTS, make_call, run  # noqa: E402

SAMPLES = ROOT / "src" / "conveyor" / "pipelines" / "calls" / "samples"
LAYOUT = {"happy": True, "angry": False, "neutral": True}  # stereo?
BITRATE_KBPS = "40"


def main() -> None:
    SAMPLES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for name, stereo in LAYOUT.items():
            call = make_call(SCRIPTS[name], Path(folder), name, stereo=stereo)
            target = SAMPLES / f"{name} call.mp3"
            run(["sox", call.path, "-C", BITRATE_KBPS, target])
            print(
                f"{target.relative_to(ROOT)}: {call.duration:.1f} s, {target.stat().st_size} bytes"
            )


if __name__ == "__main__":
    main()
