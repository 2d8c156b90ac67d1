"""Decoding any audio container with PyAV into 16 kHz float32 samples, one row per channel.

No system ffmpeg is needed, the input file is only read, and every failure names what was
wrong with the file: not audio, no audio stream, truncated, empty, too long or silent. Files
are recognised by their first bytes and opened only with that demuxer (``safe_media``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conveyor.errors import PermanentStepError
from conveyor.pipelines import safe_media
from conveyor.pipelines.calls.settings import calls_settings

# Containers recognised by their first bytes; anything else (playlists, concat lists, DASH
# manifests, image sequences...) is refused, because those make FFmpeg read other files.
ACCEPTED = ("wav", "mp3", "aac", "flac", "ogg", "mp4", "matroska", "amr")
LIMIT_SETTING = "CONVEYOR_CALLS_MAX_DURATION_SECONDS"
RATE = 16000
SILENCE_RMS = 1e-3  # about -60 dBFS: quieter than any line noise on a real call
SILENCE_BLOCK_S = 0.5


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # shape (channels, frames), float32 in [-1, 1], RATE Hz
    source_channels: int
    warning: str | None = None

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / RATE

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    def mono(self) -> np.ndarray:
        return self.samples.mean(axis=0).astype(np.float32)


def probe(path: Path, max_seconds: float | None = None) -> None:
    """Raise :class:`PermanentStepError` when ``path`` is not an accepted audio container, has
    no audio stream or declares more than ``max_seconds`` (default: the setting). Reads
    headers only."""
    with _open(path) as container:
        stream = _audio_stream(container, path)
        _check_declared_length(path, _declared_seconds(container, stream), _limit(max_seconds))


def decode(path: Path, keep_channels: int = 2, max_seconds: float | None = None) -> DecodedAudio:
    """All of ``path``'s first audio stream at 16 kHz; stereo stays stereo (up to
    ``keep_channels`` channels), anything wider is mixed down to mono. Decoding stops with an
    error past ``max_seconds`` (default: the setting), whatever the header declared."""
    limit = _limit(max_seconds)
    with _open(path) as container:
        stream = _audio_stream(container, path)
        channels = stream.codec_context.channels or 1
        layout = "stereo" if channels == 2 and keep_channels >= 2 else "mono"
        declared = _declared_seconds(container, stream)
        _check_declared_length(path, declared, limit)
        samples = _read_all(container, stream, layout, path, int(limit * RATE))
        if container.format.name == "wav":  # FFmpeg trims a WAV's length to the file's size
            declared = max(declared or 0.0, wav_header_seconds(path) or 0.0) or None
    decoded = DecodedAudio(samples, channels, _truncation(declared, samples.shape[1] / RATE))
    if decoded.samples.shape[1] == 0:
        raise PermanentStepError(f"{path.name!r} decodes to no audio samples; check the file.")
    if is_silent(decoded.samples):
        raise PermanentStepError(
            f"no speech: the recording is silent ({decoded.duration:.0f} s below -60 dBFS); "
            "check the recording source."
        )
    return decoded


def _open(path: Path):  # type: ignore[no-untyped-def]
    """The container, opened only with the demuxer its first bytes name (never a playlist)."""
    import av

    media_format = safe_media.identify(path, ACCEPTED, "an audio file")
    try:
        return safe_media.open_container(path, media_format)
    except av.FFmpegError as error:
        raise PermanentStepError(
            f"{path.name!r} starts like {media_format.described} but cannot be opened "
            f"({error}); it is truncated or corrupt: upload the complete recording again."
        ) from error


def _audio_stream(container, path: Path):  # type: ignore[no-untyped-def]
    if not container.streams.audio:
        raise PermanentStepError(_no_audio_stream(path))
    return container.streams.audio[0]


def _limit(max_seconds: float | None) -> float:
    return calls_settings().max_duration_seconds if max_seconds is None else max_seconds


def _check_declared_length(path: Path, declared: float | None, limit: float) -> None:
    if declared is not None and declared > limit:
        raise PermanentStepError(
            f"{path.name!r} lasts {declared:.0f} s, longer than the {limit:g} s limit "
            f"({LIMIT_SETTING}); split the recording or raise the limit."
        )


# Containers with no length in their header: FFmpeg guesses one from the first frames' bit
# rate, and AMR's comfort-noise frames make that guess several times too long.
_NO_DECLARED_LENGTH = {"amr"}


def _declared_seconds(container, stream) -> float | None:  # type: ignore[no-untyped-def]
    if container.format.name in _NO_DECLARED_LENGTH:
        return None
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # av.time_base
    return None


def wav_header_seconds(path: Path) -> float | None:
    """The length a RIFF/WAVE header declares (data chunk size / byte rate), or None when it
    declares none (streamed WAVs write 0 or 0xFFFFFFFF)."""
    import struct

    with path.open("rb") as stream:
        head = stream.read(4096)
    byte_rate, offset = None, 12
    while offset + 8 <= len(head):
        chunk, size = (
            head[offset : offset + 4],
            struct.unpack("<I", head[offset + 4 : offset + 8])[0],
        )
        if chunk == b"fmt " and offset + 16 <= len(head):
            byte_rate = struct.unpack("<I", head[offset + 16 : offset + 20])[0]
        if chunk == b"data":
            usable = byte_rate and size not in (0, 0xFFFFFFFF)
            return size / byte_rate if usable else None
        offset += 8 + size + (size & 1)
    return None


def _truncation(declared: float | None, decoded: float) -> str | None:
    """A note when the file says it is longer than what could be decoded (a cut-off upload)."""
    if declared is None or decoded >= declared - max(1.0, 0.02 * declared):
        return None
    return (
        f"truncated/corrupt at {decoded:.1f} s: the file declares {declared:.1f} s; "
        "the decodable part was analysed"
    )


def _read_all(container, stream, layout: str, path: Path, max_samples: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    width = 2 if layout == "stereo" else 1
    blocks: list[np.ndarray] = []
    decoded = 0
    for block in _blocks(container, stream, layout, path):
        blocks.append(block)
        decoded += block.shape[1]
        if decoded > max_samples:  # a header can understate the length: count what comes out
            raise PermanentStepError(
                f"{path.name!r} is longer than the {max_samples / RATE:g} s limit "
                f"({LIMIT_SETTING}): decoding stopped there; split the recording or raise "
                "the limit."
            )
    if not blocks:
        return np.zeros((width, 0), dtype=np.float32)
    return np.concatenate(blocks, axis=1)


def _blocks(container, stream, layout: str, path: Path) -> Iterator[np.ndarray]:  # type: ignore[no-untyped-def]
    import av

    resampler = av.AudioResampler(format="flt", layout=layout, rate=RATE)
    width = 2 if layout == "stereo" else 1
    seconds = 0.0
    try:
        for frame in _frames(container, stream):
            seconds = float(frame.time or seconds)
            yield from (_planar(f, width) for f in resampler.resample(frame))
        yield from (_planar(f, width) for f in resampler.resample(None))
    except av.FFmpegError as error:
        raise PermanentStepError(
            f"{path.name!r} is truncated/corrupt at {seconds:.1f} s ({error}); "
            "upload the complete recording again."
        ) from error


# FFmpeg's own AMR-NB decoder stops at comfort-noise (DTX/SID) frames, which phones and
# gateways send in every pause; the opencore decoder bundled with PyAV reads them.
_PREFERRED_DECODERS = {"amrnb": "libopencore_amrnb"}


def _frames(container, stream) -> Iterator:  # type: ignore[no-untyped-def]
    preferred = _PREFERRED_DECODERS.get(stream.codec_context.name)
    if preferred is None or not _decoder_available(preferred):
        yield from container.decode(stream)
        return
    import av

    decoder = av.CodecContext.create(preferred, "r")
    for packet in container.demux(stream):
        yield from decoder.decode(packet)


def _decoder_available(name: str) -> bool:
    import av

    try:
        av.Codec(name, "r")
    except (av.FFmpegError, ValueError):
        return False
    return True


def _planar(frame, width: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    # Packed float ("flt") arrives as one row of interleaved samples.
    return frame.to_ndarray().reshape(-1, width).T.astype(np.float32, copy=False)


def is_silent(samples: np.ndarray) -> bool:
    """True when no half-second block of any channel rises above the silence level."""
    block = int(RATE * SILENCE_BLOCK_S)
    for channel in samples:
        usable = (
            channel[: len(channel) // block * block].reshape(-1, block)
            if len(channel) >= block
            else channel[None, :]
        )
        if (
            usable.size
            and float(np.sqrt((usable.astype(np.float64) ** 2).mean(axis=1)).max()) > SILENCE_RMS
        ):
            return False
    return True


def same_channels(samples: np.ndarray, tolerance: float = 1e-3) -> bool:
    """True when a two-channel recording carries the same signal twice (mono saved as stereo)."""
    if samples.shape[0] < 2:
        return True
    difference = float(np.abs(samples[0] - samples[1]).mean())
    level = float(np.abs(samples).mean()) + 1e-9
    return difference / level < tolerance


def _no_audio_stream(path: Path) -> str:
    return f"{path.name!r} has no audio stream; upload a file that contains the call's audio."


def listening_copy(samples: np.ndarray, bit_rate: int = 32000) -> bytes:
    """The decoded call as a small AAC file (.m4a) that every browser plays and seeks in:
    about 4 KB a second, a tenth of 16-bit WAV at 16 kHz."""
    import io

    import av

    layout = "stereo" if samples.shape[0] == 2 else "mono"
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=RATE, layout=layout)
        stream.bit_rate = bit_rate
        interleaved = np.ascontiguousarray(samples.T.reshape(1, -1), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(interleaved, format="flt", layout=layout)
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
