"""Group and species accuracy of the default ``wildlife`` detector on the real pictures an
install can obtain: matplotlib's photo of Grace Hopper, scikit-image's sample photos (an
astronaut, a cameraman, a cat, a cup of coffee, a rocket, coins, a page, the moon, ...) and,
when the shared data is there, the two real camera-trap clips (birds).

For each file: the group expected (``empty`` for no animal, person or vehicle), the groups
found, and the species line as the page shows it (a name with its probability, or "unsure"
with the likeliest classes). Then group accuracy over all files.

Usage: ``.venv/bin/python benchmarks/wildlife_photos.py [--clips DIR]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from conveyor.pipelines.wildlife import media
from conveyor.pipelines.wildlife.settings import WildlifeSettings
from conveyor.pipelines.wildlife.steps import build_detector

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
    return found


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=Path, default=Path("/work/shared/data/wildlife"))
    arguments = parser.parse_args()
    settings = WildlifeSettings()
    detector = build_detector(settings, "cpu")
    rows, right = [], 0
    for name, (picture, expected) in pictures().items():
        found = detector.detect_image(picture)
        rows.append((name, expected, verdict(found), species_line(found)))
    for clip in sorted(arguments.clips.glob("*.mp4")) if arguments.clips.is_dir() else []:
        sampled = media.sample(clip, settings.fps, settings.max_width, settings.max_frames)
        found = detector.detect_video(sampled.frames, sampled.times)
        rows.append((f"{clip.name} (camera trap)", "bird", verdict(found), species_line(found)))
    print("| file | expected | found | species shown |")
    print("|---|---|---|---|")
    for name, expected, found, species in rows:
        right += found == expected
        print(f"| {name} | {expected} | {found} | {species} |")
    print(f"\ngroup (or empty) right: {right}/{len(rows)}")


if __name__ == "__main__":
    main()
