"""Precision and recall of simple overlap detectors on mono calls of real voices, with known
ground truth: five calls where a second real voice is mixed over the first for up to 2.5 s
(tests/support/real_speech.overlapped_call), the natural conversation (its reference marks its
own overlaps) and the mixed calls with no overlap.

Per 0.2 s step, after the diarisation's own step labels: ``z``, how much nearer the step's raw
0.8 s embedding is to the second-best speaker's centre than the steps given to its best
speaker are (in standard deviations of theirs), and ``loud``, the step's level over the median
step of its speech region (dB). A detector flags steps over a threshold, kept only in runs of
at least ``run`` steps. Counted over all steps of all calls.

Usage: ``.venv/bin/python benchmarks/calls_overlap_detector.py [--cache DIR]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conveyor.pipelines.calls import diarisation, embeddings, resegmentation  # noqa: E402
from conveyor.pipelines.calls.clustering import SpeakerBounds  # noqa: E402
from support import real_speech  # noqa: E402
from support.real_speech import RealCall  # noqa: E402

RATE = real_speech.RATE
DETECTORS = {
    "z > 1.5": lambda cue: cue["z"] > 1.5,
    "z > 2": lambda cue: cue["z"] > 2.0,
    "z > 1 and loud > 2 dB": lambda cue: (cue["z"] > 1.0) & (cue["loud"] > 2.0),
    "z > 1.5 and loud > 2 dB": lambda cue: (cue["z"] > 1.5) & (cue["loud"] > 2.0),
}


def step_cues(samples: np.ndarray) -> dict[str, np.ndarray]:
    regions = diarisation.speech_regions(samples)
    steps, raw, labels = diarisation.step_speakers(
        samples, regions, embeddings.embed_windows, SpeakerBounds(2, 4)
    )
    raw = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    speakers = int(labels.max()) + 1
    similarity = raw @ resegmentation.speaker_centres(raw, labels, speakers).T
    order = np.argsort(similarity, axis=1)
    best, second = order[:, -1], order[:, -2]
    z = np.zeros(len(raw))
    for speaker in range(speakers):
        own = labels == speaker
        for other in range(speakers):
            pool = similarity[own, other] if own.any() else similarity[:, other]
            chosen = (best == speaker) & (second == other)
            z[chosen] = (similarity[chosen, other] - np.median(pool)) / (np.std(pool) + 1e-6)
    return {"centres": steps.centres, "z": z, "loud": _loudness(samples, steps)}


def _loudness(samples: np.ndarray, steps: resegmentation.Steps) -> np.ndarray:
    levels = np.array(
        [
            np.sqrt(np.mean(samples[int((c - w / 2) * RATE) : int((c + w / 2) * RATE)] ** 2))
            for c, w in zip(steps.centres, steps.widths, strict=True)
        ]
    )
    levels = np.maximum(levels, 1e-9)
    relative = np.zeros(len(levels))
    for region in np.unique(steps.regions):
        inside = steps.regions == region
        relative[inside] = 20 * np.log10(levels[inside] / np.median(levels[inside]))
    return relative


def overlapping(call: RealCall, centres: np.ndarray) -> np.ndarray:
    speaking = np.zeros(len(centres), dtype=int)
    for start, end, _ in call.reference:
        speaking += (centres >= start) & (centres < end)
    return speaking >= 2


def in_runs(flags: np.ndarray, run: int) -> np.ndarray:
    kept = np.zeros_like(flags)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(int), [0]])))
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if end - start >= run:
            kept[start:end] = True
    return kept


def calls(folder: Path) -> list[RealCall]:
    conversation = real_speech.read_wav(folder / "conversation.wav")
    pieces = real_speech.solo_pieces(
        conversation, real_speech.read_rttm(folder / "conversation.rttm")
    )
    phone = real_speech.split(real_speech._trim(real_speech.read_wav(folder / "phone8k.wav")), 3)
    clb = real_speech.split(real_speech._trim(real_speech.read_wav(folder / "clb.wav")), 3)
    voices = {"speaker90": pieces["speaker90"], "speaker91": pieces["speaker91"]}
    voices |= {"phone8k": phone, "clb": clb}
    pairs = [
        ("speaker90", "speaker91"),
        ("phone8k", "speaker91"),
        ("speaker91", "phone8k"),
        ("speaker90", "phone8k"),
        ("clb", "speaker90"),
    ]
    mixed = [real_speech.overlapped_call((a, voices[a]), (b, voices[b]))[0] for a, b in pairs]
    return mixed + real_speech.real_calls(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=ROOT / ".pytest_cache" / "real-speech")
    folder = real_speech.fetch_sources(parser.parse_args().cache)
    measured = []
    for call in calls(folder):
        cue = step_cues(call.samples)
        truth = overlapping(call, cue["centres"])
        measured.append((cue, truth))
        print(f"{call.name}: {int(truth.sum())} overlapped steps of {len(truth)}", flush=True)
    print("| detector | run | flagged | right | precision | recall |")
    print("|---|---|---|---|---|---|")
    total = sum(int(truth.sum()) for _, truth in measured)
    for name, detect in DETECTORS.items():
        for run in (1, 2, 3):
            flags = [(in_runs(detect(cue), run), truth) for cue, truth in measured]
            flagged = sum(int(f.sum()) for f, _ in flags)
            right = sum(int((f & t).sum()) for f, t in flags)
            print(
                f"| {name} | {run} | {flagged} | {right} | {right / max(flagged, 1):.2f} "
                f"| {right / max(total, 1):.2f} |"
            )


if __name__ == "__main__":
    main()
