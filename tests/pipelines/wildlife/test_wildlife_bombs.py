"""Decompression bombs: files that are small on disk but decode to gigabytes are refused from
their headers, at upload without decoding anything in the API process and again in the decode
step, which also counts what it decodes; ordinary photos and videos still pass."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from conveyor.errors import InputRejectedError, PermanentStepError
from conveyor.pipelines.wildlife import check_input, media

NO_LIMITS = media.MediaLimits(10**12, 10**12, 10**15)


def png_bomb(width: int, height: int) -> bytes:
    """A grey PNG of zeros, compressed row by row: 16000x16000 takes 250 KB, never 256 MB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + one grey byte per pixel
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def png_video(path: Path, png: bytes, frames: int = 2) -> Path:
    """A video whose frames are ``png`` (muxed as they are, nothing is encoded)."""
    width, height = struct.unpack(">II", png[16:24])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, "gray"
        for index in range(frames):
            packet = av.Packet(png)
            packet.stream, packet.pts, packet.dts = stream, index, index
            packet.time_base = Fraction(1, 1)
            container.mux(packet)
    return path


class _Unseekable:
    """A write-only sink: the muxer cannot go back to write the duration."""

    def __init__(self, stream) -> None:  # type: ignore[no-untyped-def]
        self.stream = stream

    def write(self, data: bytes) -> int:
        return self.stream.write(data)


def small_clip(path: Path, frames: int = 30, seekable: bool = True) -> Path:
    with path.open("wb") as raw:
        target = str(path) if seekable else _Unseekable(raw)
        with av.open(target, "w", format="matroska") as container:
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for index in range(frames):
                image = np.full((48, 64, 3), index * 8, np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = index
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    png = png_bomb(16000, 16000)
    image = folder / "bomb.png"
    image.write_bytes(png)
    return {"image": image, "video": png_video(folder / "bomb.avi", png)}


IMAGE_REFUSAL = (
    r"'bomb.png' is an image of 16000x16000 pixels \(256 MP\), more than the 64 MP limit "
    r"\(CONVEYOR_WILDLIFE_MAX_IMAGE_PIXELS\)"
)
VIDEO_REFUSAL = (
    r"'bomb.avi' has video frames over the 35.4 MP limit \(CONVEYOR_WILDLIFE_MAX_FRAME_PIXELS\)"
)


def test_the_bombs_are_small_on_disk(bombs: dict[str, Path]) -> None:
    assert bombs["image"].stat().st_size < 1 << 20
    assert bombs["video"].stat().st_size < 1 << 20


@pytest.mark.parametrize(("kind", "message"), [("image", IMAGE_REFUSAL), ("video", VIDEO_REFUSAL)])
def test_bombs_are_refused_at_upload_and_in_the_decode_step(
    bombs: dict[str, Path], kind: str, message: str
) -> None:
    with pytest.raises(InputRejectedError, match=message):
        check_input(bombs[kind])
    with pytest.raises(PermanentStepError, match=message):
        media.sample(bombs[kind], 5.0, 960, 10)


SERVER = """
import json, resource, sys
from pathlib import Path
from fastapi.testclient import TestClient
from conveyor.api.app import create_app
from conveyor.auth.service import create_token
from conveyor.installation import Installation
from conveyor.settings import load_settings

home, photo, clip, *bombs = map(Path, sys.argv[1:])
installation = Installation(load_settings(home, database_url=f"sqlite:///{home}/c.db"))
with installation.sessions.begin() as session:
    token = create_token(session, "uploads", "operator")
client = TestClient(create_app(installation, auth_required=True))
client.headers["Authorization"] = f"Bearer {token}"

def upload(path):
    answer = client.post("/api/v1/items", files={"file": (path.name, path.read_bytes())},
                         data={"pipeline": "wildlife"})
    return answer.status_code, answer.json().get("error", {}).get("message")

answers = [upload(photo), upload(clip)]  # warms up every import and the database
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
answers += [upload(bomb) for bomb in bombs]
growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"answers": answers, "peak_growth_kb": growth}))
"""


def test_the_api_process_refuses_bombs_without_growing(
    bombs: dict[str, Path], tmp_path: Path
) -> None:
    """The API in a process of its own (its peak RSS is not hidden by earlier tests): the
    256-megapixel PNG would take 768 MB as decoded BGR, the video's frame 256 MB."""
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), np.full((480, 640, 3), 90, np.uint8))
    clip = small_clip(tmp_path / "clip.mkv")
    command = [sys.executable, "-c", SERVER, str(tmp_path / "home"), str(photo), str(clip)]
    command += [str(bombs["image"]), str(bombs["video"])]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    (photo_status, _), (clip_status, _), image, video = report["answers"]
    assert photo_status == clip_status == 201
    assert image[0] == 422 and "16000x16000 pixels (256 MP)" in image[1]
    assert video[0] == 422 and "35.4 MP limit" in video[1]
    assert report["peak_growth_kb"] < 30 * 1024, report  # before: 1.5 GB


def test_huge_frames_and_long_videos_are_refused_by_their_headers(tmp_path: Path) -> None:
    clip = small_clip(tmp_path / "clip.mkv")
    info = media.probe(clip, NO_LIMITS)
    assert (info.width, info.height, info.frame_count) == (64, 48, 30)
    small_frames = media.MediaLimits(10**12, 64 * 47, 10**15)
    with pytest.raises(PermanentStepError, match=r"frames of 64x48 pixels \(0.00307 MP\)"):
        media.probe(clip, small_frames)
    short_budget = media.MediaLimits(10**12, 10**12, 64 * 48 * 29)
    with pytest.raises(PermanentStepError, match=r"holds 30 frames of 64x48 \(3 s\): more than"):
        media.probe(clip, short_budget)
    assert len(media.sample(clip, 10.0, 960, 100, NO_LIMITS).frames) == 30


def test_decoding_stops_at_the_budget_when_the_length_is_unknown(tmp_path: Path) -> None:
    clip = small_clip(tmp_path / "stream.mkv", frames=30, seekable=False)
    budget = media.MediaLimits(10**12, 10**12, 64 * 48 * 10)
    assert media.probe(clip, budget).frame_count == 0  # nothing in the header to refuse
    with pytest.raises(PermanentStepError, match=r"decoding stopped after 11 frames, more than"):
        media.sample(clip, 10.0, 960, 100, budget)


def test_a_frame_over_the_limit_is_never_decoded_even_when_the_header_hides_it(
    bombs: dict[str, Path],
) -> None:
    with (
        media._open_video(bombs["video"], max_frame_pixels=10**6) as container,
        pytest.raises(av.error.FFmpegError),
    ):
        next(container.decode(container.streams.video[0]))


def _progressive(path: Path, size: tuple[int, int]) -> Path:
    Image.new("RGB", size, (90, 120, 60)).save(path, "JPEG", progressive=True, quality=80)
    return path


@pytest.mark.parametrize(
    ("name", "size"),
    [("photo.jpg", (4000, 3000)), ("scan.png", (1200, 800)), ("progressive.jpg", (640, 480))],
)
def test_ordinary_photos_pass_with_their_size_from_the_header(
    tmp_path: Path, name: str, size: tuple[int, int]
) -> None:
    path = tmp_path / name
    if name.startswith("progressive"):
        _progressive(path, size)
    else:
        cv2.imwrite(str(path), np.full((size[1], size[0], 3), 90, np.uint8))
    check_input(path)
    info = media.probe(path)
    assert (info.width, info.height) == size
    assert media.sample(path, 5.0, 960, 10).frames[0].shape[1] == min(960, size[0])


def test_a_truncated_image_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    path.write_bytes(cv2.imencode(".jpg", np.zeros((32, 32, 3), np.uint8))[1].tobytes()[:30])
    with pytest.raises(InputRejectedError, match="header holds no readable size"):
        check_input(path)


def test_a_playlist_named_like_a_video_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_text("#EXTM3U\n#EXTINF:10.0,\n/etc/some/other.mp4\n#EXT-X-ENDLIST\n")
    with pytest.raises(InputRejectedError, match=r"first bytes hold an HLS/M3U playlist\); send"):
        check_input(path)
