"""People found by the detectors that ship with OpenCV, on real photos from installed packages:
two people (Grace Hopper from matplotlib, Eileen Collins from scikit-image) and eleven photos
and scans with no one in them (scikit-image)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib import cbook
from skimage import data

from conveyor.pipelines.wildlife import people
from support.empty_pictures import EMPTY_PICTURES


def _bgr(picture: np.ndarray) -> np.ndarray:
    if picture.ndim == 2:
        return cv2.cvtColor(picture, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(picture[..., :3], cv2.COLOR_RGB2BGR)


def test_grace_hopper_is_found_with_a_box_around_her() -> None:
    photo = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    found = people.find_people(photo)
    assert len(found) == 1
    (x1, y1, x2, y2), score = found[0]
    assert score == people.FACE_SCORE
    assert x1 < 260 < x2 and y1 < 200 < y2  # her face is near (260, 200) in the 512x600 photo


def test_an_astronaut_is_found() -> None:
    assert len(people.find_people(_bgr(data.astronaut()))) == 1


@pytest.mark.parametrize("name", EMPTY_PICTURES)
def test_pictures_without_people_have_none(name: str) -> None:
    assert people.find_people(_bgr(getattr(data, name)())) == []
