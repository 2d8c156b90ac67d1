"""Uploads that make FFmpeg read other files (an HLS playlist, a concat list) are refused by
their content, at upload and again in the decode step; formats are recognised by magic bytes;
recordings over the length limit are refused before they fill a worker's memory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.auth.service import create_token
from conveyor.errors import InputRejectedError, PermanentStepError
from conveyor.pipelines.calls import audio, check_audio
from support.calls_audio import Call, run, speak

ACCEPTED = "send WAV, MP3, AAC, FLAC, Ogg, MP4/MOV/M4A, MKV/WebM or AMR"


@pytest.fixture(scope="module")
def secret_mp3(call_folder: Path) -> Path:
    """Speech in a file outside any upload: what an attacker wants to read."""
    folder = call_folder / "outside"
    folder.mkdir(exist_ok=True)
    spoken = speak("customer", "the secret password is blue elephant seven", folder / "s.wav")
    target = folder / "secret.mp3"
    run(["sox", spoken, target])
    return target


def _hls(folder: Path, secret: Path, name: str = "call.m3u8") -> Path:
    playlist = folder / name
    playlist.write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n"
        f"#EXTINF:10.0,\n{secret}\n#EXT-X-ENDLIST\n"
    )
    return playlist


def _concat(folder: Path, secret: Path) -> Path:
    shutil.copy(secret, folder / "neighbour.mp3")  # concat's safe mode allows only plain names
    listing = folder / "call.ffconcat"
    listing.write_text("ffconcat version 1.0\nfile neighbour.mp3\n")
    return listing


ATTACKS = {
    "hls playlist": (_hls, "an HLS/M3U playlist"),
    "hls playlist named .wav": (lambda f, s: _hls(f, s, "call.wav"), "an HLS/M3U playlist"),
    "concat list": (_concat, "an FFmpeg concat list"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_playlists_naming_another_file_are_refused_at_upload_and_in_decode(
    tmp_path: Path, secret_mp3: Path, attack: str
) -> None:
    make, held = ATTACKS[attack]
    path = make(tmp_path, secret_mp3)
    assert audio.decode(secret_mp3).duration > 1.5  # the target itself is readable speech
    message = rf"is not an audio file \(its first bytes hold {held}\); {ACCEPTED}"
    with pytest.raises(InputRejectedError, match=message):
        check_audio(path)
    with pytest.raises(PermanentStepError, match=message):
        audio.decode(path)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_api_refuses_an_hls_upload_and_keeps_nothing(
    installation, tmp_path: Path, secret_mp3: Path
) -> None:  # type: ignore[no-untyped-def]
    with installation.sessions.begin() as session:
        token = create_token(session, "uploads", "operator")
    client = TestClient(create_app(installation, auth_required=True))
    playlist = _hls(tmp_path, secret_mp3).read_bytes()
    answer = client.post(
        "/api/v1/items",
        files={"file": ("call.m3u8", playlist)},
        data={"pipeline": "calls"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "input_rejected"
    assert "its first bytes hold an HLS/M3U playlist" in error["message"]
    assert ACCEPTED in error["message"]
    assert installation.storage.list_work_dirs() == []


def _with_id3_tag(source: Path, target: Path) -> Path:
    body = b"TIT2" + (5).to_bytes(4, "big") + b"\0\0\0call" + b"\0" * 300  # a title and padding
    size = bytes((len(body) >> shift) & 0x7F for shift in (21, 14, 7, 0))  # syncsafe
    target.write_bytes(b"ID3\x04\x00\x00" + size + body + source.read_bytes())
    return target


def _adts(source: Path, target: Path) -> Path:
    import av

    samples = audio.decode(source).samples
    with av.open(str(target), "w", format="adts") as container:
        stream = container.add_stream("aac", rate=audio.RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[:1], format="fltp", layout="mono")
        frame.sample_rate = audio.RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return target


def _mkv_with_audio(source: Path, target: Path) -> Path:
    run(["sox", source, target.with_suffix(".ogg")])
    import av

    with av.open(str(target.with_suffix(".ogg"))) as ogg, av.open(str(target), "w") as mkv:
        stream = mkv.add_stream_from_template(ogg.streams.audio[0])
        for packet in ogg.demux(ogg.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = stream
                mkv.mux(packet)
    return target


@pytest.mark.parametrize(
    ("make", "name"),
    [(_with_id3_tag, "tagged.mp3"), (_adts, "raw.aac"), (_mkv_with_audio, "voice.webm")],
)
def test_formats_are_recognised_by_their_first_bytes(
    tmp_path: Path, angry_mono_wav: Call, make, name: str
) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "source.mp3"
    run(["sox", angry_mono_wav.path, source])
    path = make(source if name.endswith("mp3") else angry_mono_wav.path, tmp_path / name)
    check_audio(path)
    assert abs(audio.decode(path).duration - angry_mono_wav.duration) < 0.3


def test_a_picture_is_named_as_what_it_is(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(InputRejectedError, match=r"first bytes hold a PNG image\); send WAV"):
        check_audio(path)


def _tone(path: Path, seconds: float) -> Path:
    run(["sox", "-n", "-r", "16000", "-c", "1", path, "synth", str(seconds), "sine", "440"])
    return path


def test_recordings_over_the_length_limit_are_refused(tmp_path: Path) -> None:
    tone = _tone(tmp_path / "three seconds.flac", 3)
    with pytest.raises(PermanentStepError, match=r"lasts 3 s, longer than the 2 s limit"):
        audio.probe(tone, max_seconds=2)
    with pytest.raises(PermanentStepError, match=r"longer than the 2 s limit \(CONVEYOR_CALLS_"):
        audio.decode(tone, max_seconds=2)
    assert audio.decode(tone, max_seconds=4).duration == pytest.approx(3, abs=0.05)


def test_decoding_stops_at_the_limit_when_the_header_understates_the_length(
    tmp_path: Path,
) -> None:
    import av

    tone = tmp_path / "tone.mp3"
    with av.open(str(_tone(tmp_path / "tone.wav", 3))) as wav, av.open(str(tone), "w") as mp3:
        stream = mp3.add_stream("libmp3lame", rate=16000, layout="mono")
        for frame in wav.decode(audio=0):
            frame.pts = None
            mp3.mux(stream.encode(frame))
        mp3.mux(stream.encode(None))
    data = bytearray(tone.read_bytes())
    tag = max(data.find(b"Xing"), data.find(b"Info"))  # LAME's frame count says how long it is
    assert tag > 0 and data[tag + 7] & 1
    data[tag + 8 : tag + 12] = (10).to_bytes(4, "big")  # 10 frames: a quarter of a second
    liar = tmp_path / "liar.mp3"
    liar.write_bytes(bytes(data))
    audio.probe(liar, max_seconds=2)  # the header looks short
    with pytest.raises(PermanentStepError, match=r"longer than the 2 s limit .*stopped there"):
        audio.decode(liar, max_seconds=2)
