"""Cues for overlapping speech on mono calls, measured on real voices: two calls with a
planted 2.5 s overlap (tests/support/real_speech.overlapped_call) against the mixed calls with
none. Per 0.2 s step: the similarity of the step's raw resemblyzer 0.8 s embedding to the
second-best speaker centre, and its margin to the blend of the two best centres over the best
one. Prints the percentiles for overlapped steps and for steps without overlap.

Usage: ``.venv/bin/python benchmarks/calls_overlap_cues.py [--cache DIR]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conveyor.pipelines.calls import diarisation, embeddings, resegmentation  # noqa: E402
from conveyor.pipelines.calls.clustering import SpeakerBounds, cluster_speakers  # noqa: E402
from support import real_speech  # noqa: E402
from support.real_speech import RealCall  # noqa: E402


def step_cues(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step centres, second-best centre similarity and blend margin per step."""
    regions = diarisation.speech_regions(samples)
    centres = diarisation.window_centres(regions)
    labels = cluster_speakers(embeddings.embed_windows(samples, centres), SpeakerBounds(2, 4))
    steps = resegmentation.Steps.over(regions)
    points = resegmentation.short_window_points(samples, steps, embeddings.embed_windows)
    start = resegmentation.initial_labels(steps, centres, labels)
    speakers = int(labels.max()) + 1
    final = resegmentation.resegment(points, steps, start, speakers)
    raw = embeddings.embed_windows(samples, steps.centres.tolist(), resegmentation.SHORT_WINDOW_S)
    raw = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    speaker_centres = resegmentation.speaker_centres(raw, final, speakers)
    similarity = np.sort(raw @ speaker_centres.T, axis=1)
    best_two = np.argsort(raw @ speaker_centres.T, axis=1)[:, -2:]
    blends = speaker_centres[best_two].sum(axis=1)
    blends /= np.linalg.norm(blends, axis=1, keepdims=True)
    margin = (raw * blends).sum(axis=1) - similarity[:, -1]
    return steps.centres, similarity[:, -2], margin


def summary(values: np.ndarray) -> str:
    if len(values) == 0:
        return "-"
    return f"max {values.max():.3f}, p90 {np.percentile(values, 90):.3f} ({len(values)} steps)"


def row(call: RealCall, overlap: tuple[float, float] | None) -> str:
    centres, second, margin = step_cues(call.samples)
    inside = (
        (centres >= overlap[0]) & (centres <= overlap[1])
        if overlap
        else np.zeros(len(centres), bool)
    )
    return (
        f"| {call.name} | {summary(second[inside])} | {summary(second[~inside])} "
        f"| {summary(margin[inside])} | {summary(margin[~inside])} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=ROOT / ".pytest_cache" / "real-speech")
    folder = real_speech.fetch_sources(parser.parse_args().cache)
    conversation = real_speech.read_wav(folder / "conversation.wav")
    pieces = real_speech.solo_pieces(
        conversation, real_speech.read_rttm(folder / "conversation.rttm")
    )
    phone = real_speech.split(real_speech._trim(real_speech.read_wav(folder / "phone8k.wav")), 3)
    print(
        "| call | second-best similarity, overlap | no overlap "
        "| blend margin, overlap | no overlap |"
    )
    print("|---|---|---|---|---|")
    for first, second in (
        (("speaker90", pieces["speaker90"]), ("speaker91", pieces["speaker91"])),
        (("phone8k", phone), ("speaker91", pieces["speaker91"])),
    ):
        print(row(*real_speech.overlapped_call(first, second)), flush=True)
    for call in real_speech.real_calls(folder)[1:]:
        print(row(call, None), flush=True)


if __name__ == "__main__":
    main()
