"""Diarisation on real human speech, not espeak-ng: a natural two-person conversation and calls
mixed from real voices (tests/support/real_speech.py), then the same voices as telephone
audio: 8 kHz mu-law, A-law, GSM and AMR, and one channel per party in either order."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from conveyor.pipelines.calls import audio, diarisation, embeddings
from conveyor.pipelines.calls.clustering import SpeakerBounds
from conveyor.pipelines.calls.settings import CallsSettings
from support import real_speech
from support.real_speech import RealCall

TWO_VOICES = (
    "conversation (2 voices, natural)",
    "quick turns (speaker90 + speaker91, 0.25 s pauses)",
    "woman + man at 8 kHz (speaker91 + phone8k)",
    "two women (clb + slt)",
    "two voices (speaker90 + phone8k)",
    "two voices (speaker90 + clb)",
)
THREE_VOICES = "three voices (speaker90 + speaker91 + phone8k)"
THREE_VOICES_FOUND = (
    "three voices (clb + slt + phone8k)",
    "three voices (speaker91 + clb + slt)",
    "three voices (speaker90 + speaker91 + clb)",
)


@pytest.fixture(scope="session")
def real_voices(request: pytest.FixtureRequest) -> Path:
    return real_speech.fetch_sources(request.config.cache.mkdir("real-speech"))


@pytest.fixture(scope="module")
def calls(real_voices: Path) -> dict[str, RealCall]:
    return {call.name: call for call in real_speech.real_calls(real_voices)}


def _default_bounds() -> SpeakerBounds:
    settings = CallsSettings()
    return SpeakerBounds(settings.min_speakers, settings.max_speakers)


def _diarise(samples: np.ndarray, bounds: SpeakerBounds | None = None) -> list[list]:
    turns = diarisation.mono_turns(samples, embeddings.embed_windows, bounds or _default_bounds())
    return [t.as_list() for t in turns]


def _label_per_segment(call: RealCall, turns: list[list]) -> dict[str, set[str]]:
    """Per reference speaker, the labels that hold most of each stretch of 1 s or more where
    that speaker talks alone (a backchannel inside the other's turn may go either way)."""
    held: dict[str, set[str]] = {}
    for start, end, speaker in real_speech.solo_spans(call.reference):
        if end - start < 1.0:
            continue
        overlap: dict[str, float] = {}
        for left, right, label in turns:
            overlap[label] = overlap.get(label, 0.0) + max(0.0, min(end, right) - max(start, left))
        held.setdefault(speaker, set()).add(max(overlap, key=overlap.__getitem__))
    return held


def _assert_told_apart(call: RealCall, turns: list[list], speakers: int) -> None:
    score = real_speech.attribution(call.reference, turns)
    assert score["speakers"] == speakers, (call.name, turns)
    assert score["attribution"] >= 0.85, (call.name, score)
    held = _label_per_segment(call, turns)
    # one label per speaker from the first segment to the last, and no label shared
    assert all(len(labels) == 1 for labels in held.values()), (call.name, held)
    assert len(set.union(*held.values())) == len(held), (call.name, held)


@pytest.mark.parametrize("name", TWO_VOICES)
def test_two_real_voices_are_told_apart(calls: dict[str, RealCall], name: str) -> None:
    call = calls[name]
    _assert_told_apart(call, _diarise(call.samples), 2)


@pytest.mark.parametrize("name", THREE_VOICES_FOUND)
def test_a_third_real_voice_is_found(calls: dict[str, RealCall], name: str) -> None:
    call = calls[name]
    _assert_told_apart(call, _diarise(call.samples), 3)


def test_three_voices_are_told_apart_when_the_count_is_set(calls: dict[str, RealCall]) -> None:
    call = calls[THREE_VOICES]
    _assert_told_apart(call, _diarise(call.samples, SpeakerBounds(3, 3)), 3)


def _sox(source: Path, target: Path, *options: str) -> Path:
    subprocess.run(["sox", str(source), *options, str(target)], check=True, timeout=60)
    return target


@pytest.fixture(scope="module")
def conversation_wav(real_voices: Path) -> Path:
    return real_voices / "conversation.wav"


@pytest.mark.parametrize(
    ("suffix", "options"),
    [
        ("mulaw.wav", ("-r", "8000", "-e", "u-law")),
        ("alaw.wav", ("-r", "8000", "-e", "a-law")),
        ("gsm.wav", ("-r", "8000", "-e", "gsm-full-rate")),
        ("amr", ("-r", "8000", "-t", "amr-nb")),
    ],
)
def test_telephone_codecs_decode_whole(
    tmp_path: Path, conversation_wav: Path, suffix: str, options: tuple[str, ...]
) -> None:
    phone = _sox(conversation_wav, tmp_path / f"call.{suffix}", *options)
    decoded = audio.decode(phone)
    assert decoded.channels == 1 and abs(decoded.duration - 30.0) < 0.1, suffix
    assert decoded.warning is None


def test_mulaw_telephone_call_keeps_both_voices(
    tmp_path: Path, conversation_wav: Path, calls: dict[str, RealCall]
) -> None:
    phone = _sox(conversation_wav, tmp_path / "call.wav", "-r", "8000", "-e", "u-law")
    turns = _diarise(audio.decode(phone).mono())
    _assert_told_apart(calls[TWO_VOICES[0]], turns, 2)


@pytest.mark.parametrize("first_channel", ["speaker90", "speaker91"])
def test_one_channel_per_party_in_either_order(
    tmp_path: Path, calls: dict[str, RealCall], first_channel: str
) -> None:
    call = calls[TWO_VOICES[0]]
    tracks = {s: _only(call, s) for s in ("speaker90", "speaker91")}
    order = [first_channel, *(s for s in tracks if s != first_channel)]
    stereo = tmp_path / "stereo.wav"
    _write_stereo(np.stack([tracks[s] for s in order]), stereo)
    phone = _sox(stereo, tmp_path / "stereo-mulaw.wav", "-r", "8000", "-e", "u-law")
    decoded = audio.decode(phone)
    assert decoded.channels == 2
    turns, channel_speakers = diarisation.stereo_turns(decoded.samples)
    score = real_speech.attribution(call.reference, [t.as_list() for t in turns])
    assert score["speakers"] == 2 and score["attribution"] >= 0.95, score
    assert sorted(channel_speakers.values()) == ["S1", "S2"]


def _only(call: RealCall, speaker: str) -> np.ndarray:
    track = np.zeros_like(call.samples)
    for start, end, who in call.reference:
        if who == speaker:
            a, b = int(start * real_speech.RATE), int(end * real_speech.RATE)
            track[a:b] = call.samples[a:b]
    return track


def _write_stereo(samples: np.ndarray, path: Path) -> None:
    import soundfile

    soundfile.write(path, samples.T, real_speech.RATE, subtype="PCM_16")


def test_a_cut_off_recording_is_analysed_with_a_warning(
    tmp_path: Path, conversation_wav: Path
) -> None:
    """A WAV whose upload stopped half-way: its header still declares 30 s."""
    data = conversation_wav.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    decoded = audio.decode(cut)
    assert decoded.duration == pytest.approx(15.0, abs=0.1)
    assert decoded.warning is not None
    assert decoded.warning.startswith("truncated/corrupt at 15.0 s: the file declares 30.0 s")
