"""Synthetic phone calls for the ``calls`` tests and benchmark: espeak-ng speaks each turn in
one of two voices, sox joins the turns with pauses and lays them out as mono or stereo.

Everything runs as argument lists (never a shell). A :class:`Call` knows when each scripted
turn starts and ends, so tests can score word error rate and speaker attribution.
"""

from __future__ import annotations

import subprocess
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

RATE = 16000
PAUSE_S = 0.6
VOICES = {
    # role: espeak-ng arguments (voice, pitch, speed)
    "agent": ["-v", "en-us", "-p", "35", "-s", "165"],
    "customer": ["-v", "en+f3", "-p", "75", "-s", "150"],
}

HAPPY = (
    (
        "agent",
        "Good morning, thank you for calling Northwind support, my name is Anna, "
        "how can I help you today?",
    ),
    (
        "customer",
        "Hi Anna, I bought the new router last week and it works great, I am really happy with it.",
    ),
    ("customer", "I only need to update the billing address on my account."),
    ("agent", "Of course, I can update that for you right now. What is the new address?"),
    ("customer", "It is twelve Market Street. Thank you so much, you have been wonderful."),
    ("agent", "You are welcome. The address is updated. Have a lovely day."),
)
ANGRY = (
    (
        "agent",
        "Hello, thank you for calling Northwind support, this is Mark speaking, "
        "how can I help you?",
    ),
    (
        "customer",
        "My internet has been down for a week and nobody fixed it. "
        "This is the third time I am calling.",
    ),
    ("agent", "I am sorry to hear that. Let me check your line."),
    ("customer", "I am not happy at all. I am furious. Your service is terrible and useless."),
    ("agent", "I understand. I will escalate this to a technician and call you back tomorrow."),
    (
        "customer",
        "This is unacceptable. I hate waiting, I am angry and I want to cancel my contract.",
    ),
)
NEUTRAL = (
    ("agent", "Good afternoon, thank you for calling Northwind support, how can I help?"),
    ("customer", "Hello, I would like to know when my next bill is due."),
    ("agent", "Your next bill is due on the fifth of next month."),
    ("customer", "All right, and can I pay it by bank transfer?"),
    ("agent", "Yes, bank transfer works. Is there anything else?"),
    ("customer", "No, that is all. Goodbye."),
)
SCRIPTS = {"happy": HAPPY, "angry": ANGRY, "neutral": NEUTRAL}


@dataclass(frozen=True)
class Turn:
    role: str
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Call:
    path: Path
    turns: tuple[Turn, ...]
    duration: float

    @property
    def words(self) -> list[str]:
        return [w for turn in self.turns for w in normalise_words(turn.text)]

    def role_at(self, time: float) -> str | None:
        """The role speaking at ``time``; the nearest turn when ``time`` is in a pause."""
        nearest = min(self.turns, key=lambda t: max(t.start - time, time - t.end, 0.0))
        return nearest.role


def run(arguments: Sequence[str | Path]) -> None:
    subprocess.run([str(a) for a in arguments], check=True, capture_output=True)


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as reader:
        return reader.getnframes() / reader.getframerate()


def speak(role: str, text: str, path: Path) -> Path:
    """One turn as 16 kHz mono WAV."""
    raw = path.with_suffix(".raw.wav")
    run(["espeak-ng", *VOICES[role], "-w", raw, text])
    run(["sox", raw, "-r", str(RATE), "-c", "1", "-b", "16", path])
    raw.unlink()
    return path


def silence(seconds: float, path: Path) -> Path:
    run(["sox", "-n", "-r", str(RATE), "-c", "1", "-b", "16", path, "trim", "0", f"{seconds}"])
    return path


def make_call(
    script: Sequence[tuple[str, str]],
    folder: Path,
    name: str,
    stereo: bool = False,
    fmt: str = "wav",
    repeat: int = 1,
) -> Call:
    """Speak ``script`` (role, text) turns into ``folder/name.fmt``; ``repeat`` plays the whole
    dialogue that many times (a long call without synthesising long speech)."""
    parts = folder / f"{name}-parts"
    parts.mkdir(parents=True, exist_ok=True)
    pause = silence(PAUSE_S, parts / "pause.wav")
    once, turns, clock = [], [], 0.0
    for index, (role, text) in enumerate(script):
        spoken = speak(role, text, parts / f"turn{index}.wav")
        length = wav_seconds(spoken)
        once.append((role, spoken, length))
        turns.append(Turn(role, text, clock, clock + length))
        clock += length + PAUSE_S
    if stereo:
        channels = [_channel(once, role, pause, parts) for role in ("agent", "customer")]
        joined = parts / "joined.wav"
        run(["sox", "-M", *channels, joined])
    else:
        joined = parts / "joined.wav"
        run(["sox", *[p for _, spoken, _ in once for p in (spoken, pause)], joined])
    single = clock
    if repeat > 1:
        repeated = parts / "repeated.wav"
        run(["sox", joined, repeated, "repeat", str(repeat - 1)])
        joined = repeated
        turns = [
            Turn(t.role, t.text, t.start + k * single, t.end + k * single)
            for k in range(repeat)
            for t in turns
        ]
    target = folder / f"{name}.{fmt}"
    run(["sox", joined, target])
    return Call(target, tuple(turns), single * repeat)


def _channel(once, role: str, pause: Path, parts: Path) -> Path:  # type: ignore[no-untyped-def]
    """One party's channel: their turns, and silence while the other party speaks."""
    pieces: list[Path] = []
    for index, (speaker, spoken, length) in enumerate(once):
        pieces.append(spoken if speaker == role else silence(length, parts / f"gap{index}.wav"))
        pieces.append(pause)
    out = parts / f"{role}.wav"
    run(["sox", *pieces, out])
    return out


def normalise_words(text: str) -> list[str]:
    cleaned = "".join(c.lower() if c.isalnum() or c == "'" else " " for c in text)
    return cleaned.split()


def word_error_rate(reference: Sequence[str], hypothesis: Sequence[str]) -> float:
    """Levenshtein distance over words divided by the reference length."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp in enumerate(hypothesis, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp))
        previous = current
    return previous[-1] / max(len(reference), 1)
