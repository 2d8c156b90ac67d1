"""Decoding and bad inputs: every file ends with a clear message or a sensible result, and the
original is never changed."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from conveyor.errors import InputRejectedError, PermanentStepError
from conveyor.pipelines.calls import audio, check_audio
from conveyor.store import queries
from support.calls_audio import Call, run


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_wav_and_mp3_decode_to_16_khz_keeping_stereo(
    angry_mono_wav: Call, happy_stereo_mp3: Call
) -> None:
    mono = audio.decode(angry_mono_wav.path)
    stereo = audio.decode(happy_stereo_mp3.path)
    assert mono.channels == 1 and abs(mono.duration - angry_mono_wav.duration) < 0.1
    assert stereo.channels == 2 and abs(stereo.duration - happy_stereo_mp3.duration) < 0.2
    assert not audio.same_channels(stereo.samples)
    assert audio.same_channels(mono.samples[[0, 0]])


def _m4a(source: Path, target: Path) -> None:
    """AAC in an MP4 container, written with PyAV (sox cannot write M4A)."""
    import av

    samples = audio.decode(source).samples
    with av.open(str(target), "w") as container:
        stream = container.add_stream("aac", rate=audio.RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[:1], format="fltp", layout="mono")
        frame.sample_rate = audio.RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


@pytest.mark.parametrize("suffix", ["flac", "ogg", "m4a"])
def test_other_containers_decode_too(tmp_path: Path, angry_mono_wav: Call, suffix: str) -> None:
    target = tmp_path / f"call.{suffix}"
    if suffix == "m4a":
        _m4a(angry_mono_wav.path, target)
    else:
        run(["sox", angry_mono_wav.path, target])
    check_audio(target)
    decoded = audio.decode(target)
    assert decoded.channels == 1 and abs(decoded.duration - angry_mono_wav.duration) < 0.2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.wav", b"", r"empty \(0 bytes\)"),
        ("notes.wav", b"this is a text file, not a recording\n" * 20, "not an audio file"),
    ],
)
def test_unusable_files_are_rejected_at_upload_with_the_reason(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputRejectedError, match=message):
        check_audio(path)
    with pytest.raises(PermanentStepError, match=message):
        audio.decode(path)
    assert path.read_bytes() == content


def test_a_file_without_an_audio_stream_is_named_as_such(tmp_path: Path) -> None:
    import av

    path = tmp_path / "picture only.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=1)
        stream.width, stream.height = 32, 32
        frame = av.VideoFrame(32, 32, "yuv420p")
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(InputRejectedError, match="no audio stream"):
        check_audio(path)


@pytest.mark.slow
def test_bad_inputs_through_the_engine(
    sqlite_installation, tmp_path: Path, angry_mono_wav: Call, neutral_stereo_wav: Call
) -> None:  # type: ignore[no-untyped-def]
    silent = tmp_path / "thirty minutes of silence.wav"
    run(["sox", "-n", "-r", "8000", "-c", "1", silent, "trim", "0", "1800"])
    truncated = tmp_path / "truncated.mp3"
    run(["sox", angry_mono_wav.path, truncated])
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    awkward = tmp_path / "call; rm -rf 'x' \"quoted\" and spaces.wav"
    shutil.copy(neutral_stereo_wav.path, awkward)
    originals = {p: _digest(p) for p in (silent, truncated, awkward)}
    installation = sqlite_installation

    submitted = {p: installation.submitter.submit_file("calls", p).item_id for p in originals}
    installation.controller().run_until_idle(timeout=300)

    with installation.sessions() as session:
        items = {p: queries.get_item(session, i) for p, i in submitted.items()}
        results = {p: queries.result_of(session, i) for p, i in submitted.items()}
    assert items[silent].status == "failed"
    assert "no speech: the recording is silent" in (items[silent].error or "")
    assert items[truncated].status == "succeeded"
    assert 10 < results[truncated].result["duration_s"] < angry_mono_wav.duration
    assert items[awkward].status == "succeeded", items[awkward].error
    assert items[awkward].input_name == awkward.name
    assert len(results[awkward].result["speakers"]) == 2
    for path, item in items.items():
        assert _digest(path) == originals[path]  # the user's file is untouched
        stored = installation.storage.local_path(item.work_dir, item.stored_name)
        assert _digest(stored) == originals[path]  # and so is the stored copy


def test_stereo_with_identical_channels_is_treated_as_mono(
    tmp_path: Path, angry_mono_wav: Call
) -> None:
    from conveyor.pipeline.context import StepContext
    from conveyor.pipelines.calls.steps import decode, load_audio

    work = tmp_path / "work" / "item"
    work.mkdir(parents=True)
    run(["sox", angry_mono_wav.path, "-c", "2", work / "twice.wav"])  # same signal on both
    context = StepContext(
        "item", "calls", "1", "decode", 1, str(tmp_path), "work/item", "twice.wav"
    )
    output = decode(context)
    assert output["channels"] == 1 and output["source_channels"] == 2
    assert output["warnings"] == ["both channels are identical: treated as mono"]
    assert load_audio(context, output["audio"]).shape[0] == 1
