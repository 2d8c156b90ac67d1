"""Reading camera-trap files: what a file is, its metadata, and frames sampled at a fixed rate.

Files are recognised by their content, never by their name: the first bytes decide whether a
file is a video container (MP4/MOV, AVI, MKV/WebM) or an image (JPEG, PNG), and only then is
it opened with PyAV (videos) or OpenCV (images). A file whose name promises another kind than
its content is refused, because a renamed file usually means a broken export.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from conveyor.errors import PermanentStepError

HEAD_BYTES = 64
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
SUPPORTED = "videos (MP4, MOV, AVI, MKV) and images (JPEG, PNG)"
MP4_ATOMS = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")


class MediaError(PermanentStepError):
    """The file is not media this pipeline can read; retrying cannot help."""


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # "video" or "image"
    container: str  # "mp4", "avi", "matroska", "jpeg", "png"
    width: int
    height: int
    duration_s: float  # 0 for images
    frame_rate: float  # 0 for images
    captured_at: datetime | None


@dataclass
class SampledFrames:
    """Frames (BGR uint8, scaled) and the time of each in seconds from the start."""

    frames: list[np.ndarray]
    times: list[float]
    info: MediaInfo


def sniff_container(head: bytes) -> str | None:
    """The container named by a file's first bytes, or None when it is not one we read."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head[4:8] in MP4_ATOMS:
        return "mp4"
    return None


def kind_of(container: str) -> str:
    return "image" if container in {"jpeg", "png"} else "video"


def check_file(path: Path) -> str:
    """Check a file cheaply (size and first bytes only) and return its container name."""
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"{path.name!r} is empty (0 bytes); upload the file again.")
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
    container = sniff_container(head)
    if container is None:
        described = "only zero bytes" if not head.strip(b"\0") else "unknown content"
        raise MediaError(
            f"{path.name!r} is not a video or image this pipeline reads (its first bytes hold "
            f"{described}); send {SUPPORTED}."
        )
    _check_suffix(path, container)
    return container


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


def probe(path: Path) -> MediaInfo:
    """Open the file (header only) and read its kind, size, duration and capture time."""
    container = check_file(path)
    if kind_of(container) == "image":
        image = read_image(path)
        height, width = image.shape[:2]
        return MediaInfo("image", container, width, height, 0.0, 0.0, image_capture_time(path))
    with _open_video(path) as media:
        stream = media.streams.video[0]
        return MediaInfo(
            kind="video",
            container=container,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            duration_s=_duration(media, stream),
            frame_rate=float(stream.average_rate or stream.guessed_rate or 0),
            captured_at=video_capture_time(media.metadata, stream.metadata),
        )


def check_playable(path: Path) -> MediaInfo:
    """:func:`probe`, and for a video the first frame decoded too (seconds at most)."""
    info = probe(path)
    if info.kind == "video":
        import av

        with _open_video(path) as media:
            try:
                next(media.decode(media.streams.video[0]), None)
            except av.error.FFmpegError as error:
                raise MediaError(
                    f"{path.name!r} is corrupt: its first frame cannot be decoded ({error}). "
                    "Copy the file again."
                ) from None
    return info


def _open_video(path: Path):  # type: ignore[no-untyped-def]
    import av

    try:
        media = av.open(str(path), metadata_errors="ignore")
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


def sample(path: Path, fps: float, max_width: int, max_frames: int) -> SampledFrames:
    """Decode the file and keep frames at ``fps`` (one frame for an image), scaled down."""
    info = probe(path)
    if info.kind == "image":
        import cv2

        width, height = scaled_size(info.width, info.height, max_width)
        image = cv2.resize(read_image(path), (width, height), interpolation=cv2.INTER_AREA)
        return SampledFrames([image], [0.0], info)
    frames: list[np.ndarray] = []
    times: list[float] = []
    for time_s, frame in _decode_at(path, info, fps, max_width, max_frames):
        frames.append(frame)
        times.append(time_s)
    _check_complete(path, info, frames, times, fps)
    return SampledFrames(frames, times, info)


def _decode_at(
    path: Path, info: MediaInfo, fps: float, max_width: int, max_frames: int
) -> Iterator[tuple[float, np.ndarray]]:
    import av

    width, height = scaled_size(info.width, info.height, max_width)
    wanted = iter(sample_times(info.duration_s or 1e9, fps, max_frames))
    next_time = next(wanted, None)
    time_s = 0.0
    with _open_video(path) as media:
        stream = media.streams.video[0]
        stream.thread_type = "AUTO"
        start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
        try:
            for frame in media.decode(stream):
                if next_time is None:
                    return
                time_s = (frame.time or 0.0) - start
                if time_s + 1e-6 < next_time:
                    continue
                yield time_s, frame.to_ndarray(width=width, height=height, format="bgr24")
                while next_time is not None and next_time <= time_s + 1e-6:
                    next_time = next(wanted, None)
        except av.error.FFmpegError as error:
            raise MediaError(
                f"{path.name!r} is truncated or corrupt after {time_s:.1f} s of "
                f"{info.duration_s:.1f} s: decoding failed ({error.strerror}). Copy the file "
                "from the card again."
            ) from None


def _check_complete(
    path: Path, info: MediaInfo, frames: list[np.ndarray], times: list[float], fps: float
) -> None:
    if not frames:
        raise MediaError(
            f"{path.name!r} has a video stream but no frame could be decoded: it is truncated "
            "or corrupt. Copy the file again."
        )
    reached = times[-1] + 1.0 / fps
    if info.duration_s and reached < 0.8 * info.duration_s:
        raise MediaError(
            f"{path.name!r} is truncated or corrupt after {times[-1]:.1f} s: its header "
            f"declares {info.duration_s:.1f} s. Copy the file from the card again."
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
