"""The wildlife pipeline end to end on a real Ray instance and a real store: synthetic clips
made with PyAV, and the two real camera-trap clips when the shared data is there."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest
from sqlalchemy import select

from conveyor.pipelines.wildlife.tables import WildlifeDetection, WildlifeFile, WildlifeTrack
from conveyor.store import queries
from support import wildlife_video

pytestmark = pytest.mark.slow
SHARED_DATA = [
    Path(__file__).resolve().parents[3].parent / "shared" / "data",
    Path("/work/shared/data"),
]
# $CONVEYOR_TEST_DATA, else the shared data folder beside the repository (as CI lays it out)
DATA = (
    Path(
        os.environ.get("CONVEYOR_TEST_DATA")
        or next((p for p in SHARED_DATA if p.is_dir()), SHARED_DATA[-1])
    )
    / "wildlife"
)
PATH_TOLERANCE = 0.08  # of the frame width


def _run(installation, paths: list[Path]) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    submissions = {p.name: installation.submitter.submit_file("wildlife", p) for p in paths}
    installation.controller().run_until_idle(timeout=300)
    outcomes = {}
    with installation.sessions() as session:
        for name, submission in submissions.items():
            item = queries.get_item(session, submission.item_id)
            result = queries.result_of(session, item.id)
            outcomes[name] = (item, result.result if result else None)
    return outcomes


def _artifact(installation, item, name: str) -> Path:  # type: ignore[no-untyped-def]
    path = installation.storage.local_path(item.work_dir, name)
    assert path is not None and path.is_file(), f"{name} missing"
    return path


def _duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert frames > 0
        return float(stream.duration * stream.time_base)


def _path_error(track: dict, truth: list[tuple[float, float, float]]) -> float:
    """The largest distance between the track's centres and the true centre at that time."""
    times = np.array([t for t, _, _ in truth])
    worst = 0.0
    for time_s, x, y in track["path"]:
        true_x = np.interp(time_s, times, [x for _, x, _ in truth])
        true_y = np.interp(time_s, times, [y for _, _, y in truth])
        worst = max(worst, float(np.hypot(x - true_x, y - true_y)))
    return worst


def test_synthetic_clips_are_found_tracked_drawn_and_stored(installation, tmp_path) -> None:
    one = wildlife_video.crossing_clip(
        tmp_path / "one cat.mp4",
        [((0.15, 0.55), (0.85, 0.45))],
        creation_time="2026-05-01T06:30:00.000000Z",
    )
    two = wildlife_video.crossing_clip(
        tmp_path / "two cats.mp4",
        [((0.15, 0.3), (0.85, 0.3)), ((0.85, 0.75), (0.15, 0.75))],
        sprite_width=90,
    )
    empty = wildlife_video.empty_clip(tmp_path / "wind and light.mp4")
    still = wildlife_video.still_clip(tmp_path / "still cat.mp4")
    outcomes = _run(installation, [one.path, two.path, empty.path, still.path])

    for clip, expected_tracks in ((one, 1), (two, 2)):
        item, result = outcomes[clip.path.name]
        assert item.status == "succeeded", item.error
        assert result["empty"] is False and result["empty_confidence"] > 0.5
        assert len(result["tracks"]) == expected_tracks
        assert result["counts"] == {"mammal": expected_tracks}
        assert result["max_animals"] == expected_tracks
        for track in result["tracks"]:
            errors = [_path_error(track, truth) for truth in clip.truth.values()]
            assert min(errors) < PATH_TOLERANCE * 320, (track["track_id"], errors)
            assert track["last_seen_s"] - track["first_seen_s"] > 0.8 * clip.duration_s
        video = _artifact(installation, item, result["artifacts"]["video"])
        assert _duration(video) == pytest.approx(clip.duration_s, abs=0.05)
        assert _artifact(installation, item, result["artifacts"]["plot"]).stat().st_size > 1000
        assert _artifact(installation, item, result["artifacts"]["contact_sheet"]).is_file()
        assert result["pose"] == {"available": False, "reason": "no pose model installed"}

    one_item, one_result = outcomes[one.path.name]
    assert one_result["file"]["captured_at"].startswith("2026-05-01T06:30:00")
    assert one_result["species"] == {one_result["tracks"][0]["species"]: 1}

    empty_item, empty_result = outcomes[empty.path.name]
    assert empty_item.status == "succeeded", empty_item.error
    assert empty_result["empty"] is True and empty_result["empty_confidence"] > 0.5
    assert empty_result["tracks"] == [] and empty_result["max_animals"] == 0
    assert _duration(_artifact(installation, empty_item, "annotated.mp4")) == pytest.approx(
        empty.duration_s, abs=0.05
    )

    still_item, still_result = outcomes[still.path.name]
    assert still_item.status == "succeeded", still_item.error
    assert still_result["empty"] is False and still_result["counts"] == {"mammal": 1}
    assert still_result["tracks"][0]["last_seen_s"] >= 2.5

    with installation.sessions() as session:
        files = {f.item_id: f for f in session.scalars(select(WildlifeFile))}
        tracks = session.scalars(
            select(WildlifeTrack).where(WildlifeTrack.item_id == outcomes[two.path.name][0].id)
        ).all()
        detections = session.scalars(
            select(WildlifeDetection).where(WildlifeDetection.item_id == one_item.id)
        ).all()
    assert files[empty_item.id].empty and not files[one_item.id].empty
    assert files[one_item.id].captured_at.isoformat() == "2026-05-01T06:30:00"
    assert files[one_item.id].frames_analysed == 20 and files[one_item.id].kind == "video"
    assert sorted(t.track_id for t in tracks) == [1, 2]
    assert {t.group for t in tracks} == {"mammal"}
    assert len(detections) == len(one_result["detections"]) >= 15
    assert {d.track_id for d in detections} == {1}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_real_bird_clips_are_not_empty_and_have_a_bird_track(installation) -> None:
    clips = sorted(DATA.glob("*.mp4"))
    if len(clips) < 2:
        reason = f"the real clips are not in {DATA} (set CONVEYOR_TEST_DATA)"
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    outcomes = _run(installation, clips)
    for clip in clips:
        item, result = outcomes[clip.name]
        assert item.status == "succeeded", item.error
        assert result["empty"] is False, clip.name
        assert any(t["group"] == "bird" for t in result["tracks"]), result["tracks"]
        video = _artifact(installation, item, result["artifacts"]["video"])
        with av.open(str(clip)) as original:
            expected = original.duration / 1_000_000
        assert _duration(video) == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_photo_is_classified_whole_and_in_windows(installation, tmp_path) -> None:
    import cv2
    from skimage import data

    photo = tmp_path / "cat.jpg"
    scene = wildlife_video.background(640, 480).astype(np.uint8)
    cat = cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR)
    scene[120:420, 100:551] = cat
    cv2.imwrite(str(photo), scene)
    item, result = _run(installation, [photo])[photo.name]
    assert item.status == "succeeded", item.error
    assert result["file"]["kind"] == "image" and result["empty"] is False
    assert result["counts"] == {"mammal": 1}
    assert "video" not in result["artifacts"] and "plot" in result["artifacts"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_person_makes_a_photo_non_empty_and_a_still_life_stays_empty(
    installation, tmp_path
) -> None:
    """Real photos from installed packages: Grace Hopper (matplotlib's sample data) and
    scikit-image's cup of coffee."""
    import cv2
    from matplotlib import cbook
    from skimage import data

    person = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    coffee = tmp_path / "coffee.png"
    cv2.imwrite(str(coffee), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    outcomes = _run(installation, [person, coffee])
    item, result = outcomes[person.name]
    assert item.status == "succeeded", item.error
    assert result["empty"] is False and result["counts"] == {"person": 1}, result["tracks"]
    assert result["warnings"] == []
    item, result = outcomes[coffee.name]
    assert item.status == "succeeded", item.error
    assert result["empty"] is True and result["tracks"] == []
