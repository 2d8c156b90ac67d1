"""Bad inputs are refused by content with a message that says what is wrong and what to do,
quickly (a 4 GB file is never read), and the original file is kept as it was."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conveyor.errors import InputRejectedError, PermanentStepError
from conveyor.pipeline import StepContext
from conveyor.pipelines.wildlife import check_input, media, steps
from support import wildlife_video

FOUR_GB = 4 * 1024**3


def _truncated_mp4(folder: Path) -> Path:
    clip = wildlife_video.crossing_clip(folder / "whole.mp4", [((0.2, 0.5), (0.8, 0.5))], 2.0)
    data = clip.path.read_bytes()
    cut = folder / "cut off.mp4"
    cut.write_bytes(data[: len(data) // 2])  # 'moov' is written last: it is gone
    clip.path.unlink()
    return cut


def _jpeg_named_mp4(folder: Path) -> Path:
    photo = folder / "photo.mp4"
    encoded = cv2.imencode(".jpg", np.full((64, 64, 3), 90, np.uint8))[1]
    photo.write_bytes(encoded.tobytes())
    return photo


def _zero_bytes(folder: Path) -> Path:
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    return empty


def _sparse_4gb(folder: Path) -> Path:
    huge = folder / "huge.mp4"
    with huge.open("wb") as stream:
        stream.truncate(FOUR_GB)
    return huge


BAD_INPUTS = {
    "truncated": (_truncated_mp4, r"truncated or corrupt .*'moov' atom"),
    "jpeg named mp4": (_jpeg_named_mp4, r"named like a video \(\.mp4\) but holds a JPEG image"),
    "zero bytes": (_zero_bytes, r"is empty \(0 bytes\)"),
    "sparse 4 GB": (_sparse_4gb, r"not a video or image .*only zero bytes"),
}


def _digest(path: Path) -> tuple[int, str]:
    if path.stat().st_size > 1 << 20:
        return path.stat().st_size, "large"
    return path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_at_upload_quickly_and_kept(case: str, tmp_path: Path) -> None:
    make, message = BAD_INPUTS[case]
    path = make(tmp_path)
    before = _digest(path)
    started = time.monotonic()
    with pytest.raises(InputRejectedError, match=message):
        check_input(path)
    assert time.monotonic() - started < 2.0
    assert _digest(path) == before


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_the_decode_step_permanently(case: str, tmp_path: Path) -> None:
    make, message = BAD_INPUTS[case]
    path = make(tmp_path)
    before = _digest(path)
    context = StepContext(
        item_id="x",
        pipeline="wildlife",
        pipeline_version="1",
        step="decode",
        attempt=1,
        storage_url=str(tmp_path),
        work_dir=".",
        input_name=path.name,
    )
    with pytest.raises(PermanentStepError, match=message):
        steps.decode(context)
    assert _digest(path) == before


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_inbox_moves_bad_files_to_rejected_with_reasons(installation) -> None:
    inbox = installation.storage.local_path("inbox", "wildlife")
    inbox.mkdir(parents=True)
    made = {case: make(inbox) for case, (make, _) in BAD_INPUTS.items()}
    sizes = {case: path.stat().st_size for case, path in made.items()}
    started = time.monotonic()
    report = installation.inbox.scan(settle_seconds=0)
    assert time.monotonic() - started < 10.0
    assert not report.accepted
    rejected = inbox.parent / "rejected" / "wildlife"
    for case, (_, message) in BAD_INPUTS.items():
        name = made[case].name
        reason = report.rejected[f"wildlife/{name}"]
        assert re.search(message, reason), reason
        assert (rejected / name).stat().st_size == sizes[case]


def test_truncated_data_after_a_good_header_is_analysed_with_a_warning(tmp_path: Path) -> None:
    """A fast-start MP4 (header first) cut in the middle: opens, then its frames stop early;
    the frames before the cut are kept and the result says the file was cut."""
    clip = wildlife_video.crossing_clip(tmp_path / "whole.mp4", [((0.2, 0.5), (0.8, 0.5))], 4.0)
    faststart = tmp_path / "faststart.mp4"
    with media._open_video(clip.path) as source:  # remux with the index first
        import av

        with av.open(str(faststart), "w", options={"movflags": "+faststart"}) as target:
            stream = target.add_stream_from_template(source.streams.video[0])
            for packet in source.demux(source.streams.video[0]):
                if packet.dts is not None:
                    packet.stream = stream
                    target.mux(packet)
    data = faststart.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 5])
    sampled = media.sample(cut, 5.0, 960, 100)
    assert 0 < sampled.times[-1] < 3.0 and sampled.warning is not None
    assert re.match(r"truncated/corrupt at \d+\.\d s: the file declares 4\.0 s", sampled.warning)
    whole = media.sample(clip.path, 5.0, 960, 100)
    assert whole.warning is None and len(whole.frames) == 20
