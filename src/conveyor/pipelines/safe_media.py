"""Recognising uploaded media by its first bytes, and opening it with PyAV safely.

FFmpeg picks a demuxer by guessing from the content, and some demuxers read other files: an
HLS playlist (``#EXTM3U``), a concat list or a DASH manifest names files or URLs, so a small
text upload could make a pipeline read any local file (or fetch a URL). Here a file is
recognised by its magic bytes against a short allow-list, and PyAV is given exactly that
demuxer, may load no other one, and may use only the ``file`` protocol.

Sizes are read from headers (PNG, JPEG) or container headers (video), so that limits are
checked before anything is decoded; decoders are also told the largest frame they may
allocate, in case a stream's frames are bigger than its header said.
"""

from __future__ import annotations

import io
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from conveyor.errors import PermanentStepError

HEAD_BYTES = 64
MP4_ATOMS = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")
# FFmpeg decodes a frame or two while reading stream parameters (and forgets a frame size it
# could not decode). Pipelines that read no video keep that to Full HD frames by default.
PROBE_FRAME_PIXELS = 1920 * 1088
JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
MAX_JPEG_SEGMENTS = 256
INT_MAX = 2**31 - 1


class MediaError(PermanentStepError):
    """The file is not media the pipeline can read, or is over a limit; retrying cannot help."""


@dataclass(frozen=True)
class MediaFormat:
    name: str  # our name: "wav", "mp4", "jpeg", ...
    label: str  # for messages: "WAV", "MP4/MOV/M4A"
    demuxer: str  # the one FFmpeg demuxer allowed to read it ("" for images: OpenCV reads them)
    described: str  # what a refusal says the file holds: "a PNG image"


FORMATS = {
    f.name: f
    for f in (
        MediaFormat("wav", "WAV", "wav", "WAV audio"),
        MediaFormat("mp3", "MP3", "mp3", "MP3 audio"),
        MediaFormat("aac", "AAC", "aac", "AAC (ADTS) audio"),
        MediaFormat("flac", "FLAC", "flac", "FLAC audio"),
        MediaFormat("ogg", "Ogg", "ogg", "Ogg media"),
        MediaFormat("mp4", "MP4/MOV/M4A", "mov", "an MP4/MOV container"),
        MediaFormat("matroska", "MKV/WebM", "matroska", "a Matroska/WebM container"),
        MediaFormat("avi", "AVI", "avi", "an AVI container"),
        MediaFormat("amr", "AMR", "amr", "AMR telephone audio"),
        MediaFormat("jpeg", "JPEG", "", "a JPEG image"),
        MediaFormat("png", "PNG", "", "a PNG image"),
    )
}
# Demuxer options that keep a container from pointing at other files (defaults, made explicit).
_DEMUXER_OPTIONS = {"mov": {"enable_drefs": "0", "use_absolute_path": "0"}}
_TEXT_KINDS = (
    (b"#EXTM3U", "an HLS/M3U playlist"),
    (b"ffconcat", "an FFmpeg concat list"),
    (b"<?xml", "XML (such as a DASH manifest)"),
    (b"<MPD", "a DASH manifest"),
    (b"[playlist]", "a PLS playlist"),
)


def sniff(head: bytes) -> MediaFormat | None:
    """The format named by a file's first bytes, or None when it is none we read."""
    name = _sniff_name(head)
    return FORMATS[name] if name else None


def _sniff_name(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] in (b"WAVE", b"AVI "):
        return "wav" if head[8:12] == b"WAVE" else "avi"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith((b"#!AMR\n", b"#!AMR-WB\n")):
        return "amr"
    if head[4:8] in MP4_ATOMS:
        return "mp4"
    return _sniff_mpeg_audio(head)


def _sniff_mpeg_audio(head: bytes) -> str | None:
    """MPEG audio frame sync: 11 set bits; ADTS (AAC) has layer bits 00, MP3 does not."""
    if len(head) < 2 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    if head[1] & 0xF6 == 0xF0:
        return "aac"
    layer, version = (head[1] >> 1) & 3, (head[1] >> 3) & 3
    return "mp3" if layer != 0 and version != 1 else None


def sniff_file(path: Path) -> tuple[bytes, MediaFormat | None]:
    """A file's first bytes and the format they name, looking past an ID3 tag (which MP3s,
    and some FLAC and AAC files, start with)."""
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
        if not head.startswith(b"ID3") or len(head) < 10:
            return head, sniff(head)
        stream.seek(_id3_length(head))
        after = _sniff_name(stream.read(HEAD_BYTES))
    # Anything else after a tag is left to the MP3 demuxer, which skips padding and junk.
    return head, FORMATS[after if after in ("flac", "aac") else "mp3"]


def _id3_length(head: bytes) -> int:
    size = 0
    for byte in head[6:10]:  # "syncsafe": 7 bits per byte
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def describe_head(head: bytes) -> str:
    """What an unrecognised file's first bytes look like, for the refusal message."""
    if not head.strip(b"\0"):
        return "only zero bytes"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    for magic, described in _TEXT_KINDS:
        if text.startswith(magic):
            return described
    printable = sum(32 <= byte < 127 or byte in b"\t\r\n" for byte in head)
    return "text" if printable == len(head) else "unknown content"


def labels(accepted: Collection[str]) -> str:
    """ "WAV, MP3 or FLAC" for a refusal message."""
    names = [FORMATS[name].label for name in accepted]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def identify(path: Path, accepted: Collection[str], what: str) -> MediaFormat:
    """The format of ``path`` by its first bytes when it is one of ``accepted``; else a
    :class:`MediaError` saying what the file holds and what is accepted."""
    if path.stat().st_size == 0:
        raise MediaError(f"{path.name!r} is empty (0 bytes); upload the file again.")
    head, found = sniff_file(path)
    if found is not None and found.name in accepted:
        return found
    held = found.described if found else describe_head(head)
    raise MediaError(
        f"{path.name!r} is not {what} (its first bytes hold {held}); send {labels(accepted)}."
    )


def open_container(
    path: Path, media_format: MediaFormat, max_frame_pixels: int = PROBE_FRAME_PIXELS
) -> Any:
    """Open ``path`` with PyAV using only ``media_format``'s demuxer and the file protocol;
    video decoders refuse frames over ``max_frame_pixels``, both while the stream parameters
    are read and when decoding later. Raises PyAV's errors."""
    import av

    if not media_format.demuxer:
        raise ValueError(f"{media_format.label} is not a container format")
    max_pixels = str(min(max_frame_pixels, INT_MAX))  # FFmpeg's option is an int
    options = {
        "protocol_whitelist": "file",
        "format_whitelist": media_format.demuxer,
        "max_pixels": max_pixels,  # applies while stream parameters are read
        **_DEMUXER_OPTIONS.get(media_format.demuxer, {}),
    }
    container = av.open(
        str(path), format=media_format.demuxer, options=options, metadata_errors="ignore"
    )
    for stream in container.streams.video:  # and to the decoder opened later
        stream.codec_context.options = {"max_pixels": max_pixels}
    return container


def image_size(path: Path, media_format: MediaFormat) -> tuple[int, int]:
    """(width, height) from a PNG or JPEG header, without decoding any pixel."""
    with path.open("rb") as stream:
        size = _png_size(stream) if media_format.name == "png" else _jpeg_size(stream)
    if size is None or 0 in size:
        raise MediaError(
            f"{path.name!r} starts like a {media_format.label} image but its header holds no "
            "readable size: it is truncated or corrupt. Copy the file again."
        )
    return size


def _png_size(stream: IO[bytes]) -> tuple[int, int] | None:
    header = stream.read(24)
    if len(header) < 24 or header[12:16] != b"IHDR":
        return None
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def _jpeg_size(stream: IO[bytes]) -> tuple[int, int] | None:
    """Walk the segments after SOI up to the frame header (SOFn), which holds the size."""
    stream.seek(2)
    for _ in range(MAX_JPEG_SEGMENTS):
        marker = _next_marker(stream)
        if marker is None or marker in (0xD9, 0xDA):  # end of image or scan before a frame
            return None
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            continue
        length = int.from_bytes(stream.read(2), "big")
        if marker in JPEG_FRAME_MARKERS:
            frame = stream.read(5)  # precision, height, width
            if len(frame) < 5:
                return None
            return int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
        if length < 2:
            return None
        stream.seek(length - 2, io.SEEK_CUR)
    return None


def _next_marker(stream: IO[bytes]) -> int | None:
    byte = stream.read(1)
    if byte != b"\xff":
        return None
    while byte == b"\xff":  # fill bytes
        byte = stream.read(1)
    return byte[0] if byte else None


def megapixels(pixels: float) -> str:
    return f"{pixels / 1e6:.3g} MP"
