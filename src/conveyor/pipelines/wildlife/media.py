"""Reading camera-trap files: what a file is, its metadata, and frames sampled at a fixed rate.

Files are recognised by their content, never by their name: the first bytes decide whether a
file is a video container (MP4/MOV, AVI, MKV/WebM) or an image (JPEG, PNG), and only then is
it opened with PyAV (videos, with that demuxer only: ``safe_media``) or OpenCV (images). A file
whose name promises another kind than its content is refused, because a renamed file usually
means a broken export.

Sizes come from headers, so a decompression bomb (a small PNG of 16000x16000 pixels, a video
of huge frames or of hours) is refused before it is decoded: at upload no image is decoded
and no video frame over the frame limit, and the decode step checks again and counts what it
decodes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from conveyor.pipelines import safe_media
from conveyor.pipelines.safe_media import MediaError, MediaFormat

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
ACCEPTED = ("mp4", "matroska", "avi", "jpeg", "png")
SUPPORTED = "videos (MP4, MOV, AVI, MKV) and images (JPEG, PNG)"

__all__ = ["MediaError", "MediaInfo", "MediaLimits", "SampledFrames", "probe", "sample"]


@dataclass(frozen=True)
class MediaLimits:
    """The most a file may ask of a decoder: pixels of a photo, of one video frame, and of all
    of a video's frames together (frame size x frame count)."""

    image_pixels: int
    frame_pixels: int
    video_pixels: int

    @classmethod
    def from_settings(cls) -> MediaLimits:
        from conveyor.pipelines.wildlife.settings import wildlife_settings

        settings = wildlife_settings()
        return cls(settings.max_image_pixels, settings.max_frame_pixels, settings.max_video_pixels)


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # "video" or "image"
    container: str  # "mp4", "avi", "matroska", "jpeg", "png"
    width: int
    height: int
    duration_s: float  # 0 for images
    frame_rate: float  # 0 for images
    captured_at: datetime | None
    frame_count: int = 0  # declared or estimated from duration x rate; 0 when unknown


class TruncatedError(MediaError):
    """Decoding failed part-way through a video whose first frames were fine."""


@dataclass
class SampledFrames:
    """Frames (BGR uint8, scaled) and the time of each in seconds from the start."""

    frames: list[np.ndarray]
    times: list[float]
    info: MediaInfo
    warning: str | None = None  # set when less decoded than the container declares


def sniff_container(head: bytes) -> str | None:
    """The container named by a file's first bytes, or None when it is not one we read."""
    found = safe_media.sniff(head)
    return found.name if found is not None and found.name in ACCEPTED else None


def kind_of(container: str) -> str:
    return "image" if container in {"jpeg", "png"} else "video"


def check_file(path: Path) -> MediaFormat:
    """Check a file cheaply (size and first bytes only) and return its format."""
    media_format = safe_media.identify(path, ACCEPTED, "a video or image this pipeline reads")
    _check_suffix(path, media_format.name)
    return media_format


def _check_suffix(path: Path, container: str) -> None:
    suffix = path.suffix.lower()
    kind = kind_of(container)
    expected = VIDEO_SUFFIXES if kind == "video" else IMAGE_SUFFIXES
    other = IMAGE_SUFFIXES if kind == "video" else VIDEO_SUFFIXES
    if suffix in other and suffix not in expected:
        wanted = ".jpg" if container == "jpeg" else f".{container}" if kind == "image" else ".mp4"
        raise MediaError(
            f"{path.name!r} is named like a{'n image' if kind == 'video' else ' video'} "
            f"({suffix}) but holds a {container.upper()} {kind}; the file was probably "
            f"renamed or exported wrongly. Rename it to {wanted} if it is right, then send it "
            "again."
        )


def probe(path: Path, limits: MediaLimits | None = None) -> MediaInfo:
    """Read the file's kind, size, duration and capture time from its headers and refuse it
    when it is over ``limits`` (default: the settings). Images are not decoded at all; for a
    video FFmpeg may decode a frame to learn the stream's parameters, never one over
    ``limits.frame_pixels``. This is the whole check at upload; the decode step runs it again
    before decoding."""
    limits = limits or MediaLimits.from_settings()
    media_format = check_file(path)
    if kind_of(media_format.name) == "image":
        width, height = safe_media.image_size(path, media_format)
        _check_image(path, width, height, limits)
        captured = image_capture_time(path)
        return MediaInfo("image", media_format.name, width, height, 0.0, 0.0, captured)
    with _open_video(path, media_format, limits.frame_pixels) as media:
        info = _video_info(media, media_format.name)
    _check_video(path, info, limits)
    return info


def _video_info(media: Any, container: str) -> MediaInfo:
    stream = media.streams.video[0]
    duration = _duration(media, stream)
    rate = float(stream.average_rate or stream.guessed_rate or 0)
    return MediaInfo(
        kind="video",
        container=container,
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        duration_s=duration,
        frame_rate=rate,
        captured_at=video_capture_time(media.metadata, stream.metadata),
        frame_count=stream.frames or round(duration * rate),
    )


def _check_image(path: Path, width: int, height: int, limits: MediaLimits) -> None:
    if width * height > limits.image_pixels:
        raise MediaError(
            f"{path.name!r} is an image of {width}x{height} pixels "
            f"({safe_media.megapixels(width * height)}), more than the "
            f"{safe_media.megapixels(limits.image_pixels)} limit "
            "(CONVEYOR_WILDLIFE_MAX_IMAGE_PIXELS); scale it down or raise the limit."
        )


def _check_video(path: Path, info: MediaInfo, limits: MediaLimits) -> None:
    pixels = info.width * info.height
    if pixels == 0:  # FFmpeg forgets the size when a frame over the limit could not be decoded
        raise MediaError(
            f"{path.name!r} has video frames over the "
            f"{safe_media.megapixels(limits.frame_pixels)} limit "
            "(CONVEYOR_WILDLIFE_MAX_FRAME_PIXELS), or frames whose size cannot be read (a "
            "corrupt file); scale the video down or raise the limit."
        )
    if pixels > limits.frame_pixels:
        raise MediaError(
            f"{path.name!r} has video frames of {info.width}x{info.height} pixels "
            f"({safe_media.megapixels(pixels)}), more than the "
            f"{safe_media.megapixels(limits.frame_pixels)} limit "
            "(CONVEYOR_WILDLIFE_MAX_FRAME_PIXELS); scale the video down or raise the limit."
        )
    if pixels * info.frame_count > limits.video_pixels:
        raise MediaError(
            f"{path.name!r} holds {info.frame_count} frames of {info.width}x{info.height} "
            f"({info.duration_s:.0f} s): {_too_many_pixels(limits)}; cut it into shorter clips "
            "or raise the limit."
        )


def _too_many_pixels(limits: MediaLimits) -> str:
    return (
        f"more than the {safe_media.megapixels(limits.video_pixels)} a video may decode "
        "(frame size x frames, CONVEYOR_WILDLIFE_MAX_VIDEO_PIXELS)"
    )


def _open_video(
    path: Path, media_format: MediaFormat | None = None, max_frame_pixels: int | None = None
) -> Any:
    """The video container, opened safely; decoders refuse frames over ``max_frame_pixels``
    (default: the setting), also while FFmpeg reads the stream parameters."""
    import av

    media_format = media_format or check_file(path)
    max_frame_pixels = max_frame_pixels or MediaLimits.from_settings().frame_pixels
    try:
        media = safe_media.open_container(path, media_format, max_frame_pixels)
    except av.error.InvalidDataError as error:
        raise MediaError(
            f"{path.name!r} could not be opened as a video ({error.strerror}): it is truncated "
            "or corrupt (for MP4/MOV a missing 'moov' atom means the recording was cut off "
            "before the camera finished writing it). Copy the file from the card again."
        ) from None
    except av.error.FFmpegError as error:
        raise MediaError(f"{path.name!r} could not be opened as a video: {error}.") from None
    if not media.streams.video:
        media.close()
        raise MediaError(f"{path.name!r} has no video stream; send {SUPPORTED}.")
    return media


def _duration(media, stream) -> float:  # type: ignore[no-untyped-def]
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if media.duration is not None:
        return media.duration / 1_000_000
    return 0.0


def video_capture_time(*metadata: dict[str, str]) -> datetime | None:
    """``creation_time`` from container or stream metadata (ISO 8601), as an aware datetime."""
    for tags in metadata:
        value = tags.get("creation_time")
        if not value:
            continue
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            continue
        if moment.year <= 1970:  # cameras without a clock write the epoch
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def image_capture_time(path: Path) -> datetime | None:
    """EXIF DateTimeOriginal (camera local time, no zone) of a JPEG, when present."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            exif = image.getexif()
            value = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)
    except Exception:
        return None
    try:
        return datetime.strptime(str(value), "%Y:%m:%d %H:%M:%S") if value else None
    except ValueError:
        return None


def read_image(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(
            f"{path.name!r} starts like an image but could not be decoded: it is truncated "
            "or corrupt. Copy the file again."
        )
    return image


def scaled_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """(width, height) no wider than max_width, aspect kept, both even (H.264 wants even)."""
    scale = min(1.0, max_width / width) if width else 1.0
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def sample_times(duration_s: float, fps: float, max_frames: int) -> list[float]:
    """Wanted sample times: every 1/fps s, spread wider when that would exceed max_frames."""
    count = max(1, math.floor(duration_s * fps + 1e-9))
    step = 1.0 / fps
    if count > max_frames:
        count, step = max_frames, duration_s / max_frames
    return [index * step for index in range(count)]


def sample(
    path: Path, fps: float, max_width: int, max_frames: int, limits: MediaLimits | None = None
) -> SampledFrames:
    """Decode the file and keep frames at ``fps`` (one frame for an image), scaled down.
    ``limits`` (default: the settings) are checked on the headers, then on what is decoded."""
    limits = limits or MediaLimits.from_settings()
    info = probe(path, limits)
    if info.kind == "image":
        import cv2

        width, height = scaled_size(info.width, info.height, max_width)
        image = cv2.resize(read_image(path), (width, height), interpolation=cv2.INTER_AREA)
        return SampledFrames([image], [0.0], info)
    frames: list[np.ndarray] = []
    times: list[float] = []
    failure: str | None = None
    try:
        for time_s, frame in _decode_at(path, info, (fps, max_width, max_frames), limits):
            frames.append(frame)
            times.append(time_s)
    except TruncatedError as error:  # keep what decoded: a cut-off clip still shows animals
        failure = str(error)
    _check_any(path, frames)
    return SampledFrames(frames, times, info, failure or _shortfall(info, times, fps))


def _decode_at(
    path: Path, info: MediaInfo, wanted_frames: tuple[float, int, int], limits: MediaLimits
) -> Iterator[tuple[float, np.ndarray]]:
    import av

    fps, max_width, max_frames = wanted_frames
    width, height = scaled_size(info.width, info.height, max_width)
    wanted = iter(sample_times(info.duration_s or 1e9, fps, max_frames))
    next_time = next(wanted, None)
    time_s = 0.0
    with _open_video(path, max_frame_pixels=limits.frame_pixels) as media:
        stream = media.streams.video[0]
        stream.thread_type = "AUTO"
        start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
        try:
            for frame in _within_budget(media.decode(stream), path, limits):
                if next_time is None:
                    return
                time_s = (frame.time or 0.0) - start
                if time_s + 1e-6 < next_time:
                    continue
                yield time_s, frame.to_ndarray(width=width, height=height, format="bgr24")
                while next_time is not None and next_time <= time_s + 1e-6:
                    next_time = next(wanted, None)
        except av.error.FFmpegError as error:
            raise TruncatedError(
                f"truncated/corrupt at {time_s:.1f} s: the file declares "
                f"{info.duration_s:.1f} s and decoding failed there ({error.strerror}); the "
                "decodable part was analysed. Copy the file from the card again."
            ) from None


def _within_budget(frames: Iterator[Any], path: Path, limits: MediaLimits) -> Iterator[Any]:
    """The decoded frames, stopped with an error once they add up to more pixels than a video
    may decode: a header can understate a video's length."""
    decoded = 0
    for count, frame in enumerate(frames, start=1):
        decoded += frame.width * frame.height
        if decoded > limits.video_pixels:
            raise MediaError(
                f"{path.name!r}: decoding stopped after {count} frames, "
                f"{_too_many_pixels(limits)}; cut it into shorter clips or raise the limit."
            )
        yield frame


def _check_any(path: Path, frames: list[np.ndarray]) -> None:
    if not frames:
        raise MediaError(
            f"{path.name!r} has a video stream but no frame could be decoded: it is truncated "
            "or corrupt. Copy the file again."
        )


def _shortfall(info: MediaInfo, times: list[float], fps: float) -> str | None:
    """A warning when the frames stop well before the length the container declares."""
    reached = times[-1] + 1.0 / fps
    if not info.duration_s or reached >= info.duration_s - max(1.0, 0.05 * info.duration_s):
        return None
    return (
        f"truncated/corrupt at {reached:.1f} s: the file declares {info.duration_s:.1f} s; "
        "the decodable part was analysed. Copy the file from the card again."
    )


def save_frames(path: Path, frames: list[np.ndarray], times: list[float]) -> None:
    """Store frames as JPEG (quality 95) in one .npz: a tenth of the raw size, fast to read."""
    import cv2

    encoded = [cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])[1] for frame in frames]
    offsets = np.cumsum([0] + [len(item) for item in encoded])
    data = np.concatenate(encoded) if encoded else np.zeros(0, np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, data=data, offsets=offsets, times=np.asarray(times, dtype=np.float64))
    path.write_bytes(buffer.getvalue())


def load_frames(path: Path) -> tuple[list[np.ndarray], list[float]]:
    import cv2

    with np.load(path) as stored:
        data, offsets, times = stored["data"], stored["offsets"], stored["times"]
    frames = [
        cv2.imdecode(data[offsets[index] : offsets[index + 1]], cv2.IMREAD_COLOR)
        for index in range(len(offsets) - 1)
    ]
    return frames, [float(t) for t in times]
