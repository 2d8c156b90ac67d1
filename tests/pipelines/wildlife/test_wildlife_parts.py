"""The wildlife pipeline's pure parts: taxonomy, sampling, motion, YOLO output decoding,
pose heatmaps, tracking and the per-file summary."""

from __future__ import annotations

import numpy as np
import pytest

from conveyor.pipelines.wildlife import detector, media, motion, pose, summary, taxonomy, tracking
from conveyor.pipelines.wildlife.detector import Detection
from conveyor.pipelines.wildlife.imagenet_classes import IMAGENET_CLASSES


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("goldfinch", "bird"),
        ("bald eagle", "bird"),
        ("black swan", "bird"),
        ("albatross", "bird"),
        ("tabby", "mammal"),
        ("red fox", "mammal"),
        ("wild boar", "mammal"),
        ("African elephant", "mammal"),
        ("wombat", "mammal"),
        ("sea lion", "mammal"),
        ("tree frog", "amphibian"),
        ("green mamba", "reptile"),
        ("goldfish", "fish"),
        ("puffer", "fish"),
        ("monarch", "insect"),
        ("tick", "insect"),
        ("scuba diver", "person"),
        ("pickup", "vehicle"),
        ("amphibian", "vehicle"),
        ("valley", "other"),
        ("jellyfish", "other"),
        ("hay", "other"),
    ],
)
def test_imagenet_classes_map_to_groups(name: str, group: str) -> None:
    assert taxonomy.group_of(IMAGENET_CLASSES.index(name)) == group


def test_label_is_the_reported_group_with_most_mass() -> None:
    probabilities = np.zeros(1000, np.float32)
    probabilities[IMAGENET_CLASSES.index("robin")] = 0.2
    probabilities[IMAGENET_CLASSES.index("goldfinch")] = 0.25
    probabilities[IMAGENET_CLASSES.index("tabby")] = 0.3
    probabilities[IMAGENET_CLASSES.index("valley")] = 0.25
    label = taxonomy.label_of(probabilities, species_threshold=0.2)
    assert label[:4] == ("bird", "goldfinch", pytest.approx(0.45), pytest.approx(0.25))
    assert label.alternatives[0] == ["robin", pytest.approx(0.2)]


def test_an_unlikely_species_is_reported_as_its_group_only() -> None:
    probabilities = np.zeros(1000, np.float32)
    for name, value in (("Border terrier", 0.3), ("badger", 0.2), ("mink", 0.15)):
        probabilities[IMAGENET_CLASSES.index(name)] = value
    label = taxonomy.label_of(probabilities)  # the default threshold: 0.5
    assert (label.group, label.species) == ("mammal", "mammal")
    assert label.species_probability == pytest.approx(0.3)
    assert [name for name, _ in label.alternatives] == ["Border terrier", "badger", "mink"]
    sure = probabilities.copy()
    sure[IMAGENET_CLASSES.index("Border terrier")] = 0.6
    assert taxonomy.label_of(sure).species == "Border terrier"


def test_content_decides_the_container_not_the_name() -> None:
    assert media.sniff_container(b"\x00\x00\x00\x20ftypisom") == "mp4"
    assert media.sniff_container(b"\xff\xd8\xff\xe0") == "jpeg"
    assert media.sniff_container(b"RIFF\x00\x00\x00\x00AVI LIST") == "avi"
    assert media.sniff_container(b"\x1a\x45\xdf\xa3") == "matroska"
    assert media.sniff_container(b"\0" * 64) is None


def test_sample_times_keep_the_rate_and_spread_when_capped() -> None:
    assert media.sample_times(3.5, 5, 100) == pytest.approx([i * 0.2 for i in range(17)])
    capped = media.sample_times(600, 5, 100)
    assert len(capped) == 100 and capped[1] == pytest.approx(6.0)
    assert media.scaled_size(1920, 1080, 960) == (960, 540)
    assert media.scaled_size(641, 361, 960) == (640, 360)


def _scene(square_x: int | None, light: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    frame = rng.integers(60, 120, (240, 320, 3)).astype(np.float32)
    frame = np.repeat(np.repeat(frame[::8, ::8], 8, 0), 8, 1)  # a coarse static texture
    if square_x is not None:
        frame[100:160, square_x : square_x + 60] = (20, 200, 230)
    return np.clip(frame * light, 0, 255).astype(np.uint8)


def test_motion_finds_a_moving_square_and_ignores_a_global_light_change() -> None:
    settings = motion.MotionSettings()
    moving = [_scene(20 + 20 * i) for i in range(10)]
    regions = motion.propose_regions(moving, settings)
    assert all(len(boxes) == 1 for boxes in regions)
    x1, y1, x2, y2 = regions[5][0]
    assert abs((x1 + x2) / 2 - (20 + 20 * 5 + 30)) < 8 and abs((y1 + y2) / 2 - 130) < 8
    dimming = [_scene(None, light) for light in np.linspace(0.6, 1.3, 10)]
    assert motion.propose_regions(dimming, settings) == [[] for _ in range(10)]


def test_nearby_parts_merge_and_distant_ones_do_not() -> None:
    merged = motion.merge_nearby([(0, 0, 10, 10), (12, 0, 20, 10), (100, 100, 110, 110)], 4)
    assert merged == [(0, 0, 20, 10), (100, 100, 110, 110)]


def test_yolov5_output_is_decoded_into_image_boxes_with_nms() -> None:
    """MegaDetector v5 layout: (1, anchors, 5 + classes) on a 640 letterbox of a 1280x720 image."""
    image = np.zeros((720, 1280, 3), np.uint8)
    canvas, scale, pad = detector.letterbox(image, 640)
    assert canvas.shape == (640, 640, 3) and scale == 0.5 and pad == (0, 140)
    rows = np.zeros((1, 4, 8), np.float32)
    rows[0, 0] = [320, 320, 100, 50, 0.9, 0.95, 0.03, 0.02]  # an animal
    rows[0, 1] = [322, 321, 100, 50, 0.8, 0.90, 0.05, 0.05]  # the same animal again
    rows[0, 2] = [100, 200, 40, 80, 0.9, 0.05, 0.9, 0.05]  # a person
    rows[0, 3] = [500, 500, 40, 40, 0.1, 0.1, 0.1, 0.8]  # too unsure
    found = detector.decode_yolo(rows, 3, 0.2, scale, pad, (1280, 720))
    assert [(class_id, round(score, 3)) for _, class_id, score in found] == [(0, 0.855), (1, 0.81)]
    assert found[0][0] == pytest.approx((540, 310, 740, 410))
    assert found[1][0] == pytest.approx((160, 40, 240, 200))


def test_yolov8_output_without_objectness_is_decoded() -> None:
    """MegaDetector v6 layout: (1, 4 + classes, anchors)."""
    output = np.zeros((1, 7, 3), np.float32)
    output[0, :, 0] = [320, 320, 64, 64, 0.1, 0.1, 0.7]  # a vehicle
    found = detector.decode_yolo(output, 3, 0.2, 1.0, (0, 0), (640, 640))
    assert found == [((288.0, 288.0, 352.0, 352.0), 2, pytest.approx(0.7))]


def test_pose_keypoints_are_heatmap_peaks_in_frame_pixels() -> None:
    heatmaps = np.zeros((2, 4, 4), np.float32)
    heatmaps[0, 1, 2] = 0.9
    heatmaps[1, 3, 0] = 0.4
    points = pose.keypoints_from_heatmaps(heatmaps, (100, 200, 140, 240))
    assert points == [[125.0, 215.0, 0.9], [105.0, 235.0, 0.4]]


def _walk(x0: float, step: float, frames: int, group: str = "bird") -> list[Detection]:
    return [
        Detection(i, i * 0.2, (x0 + step * i, 50, x0 + step * i + 40, 90), group, "robin", 0.8)
        for i in range(frames)
    ]


def test_two_walkers_become_two_tracks_with_paths_and_a_vote() -> None:
    walks = _walk(0, 10, 12) + _walk(250, -10, 12)
    walks[3] = Detection(3, 0.6, walks[3].box, "mammal", "meerkat", 0.5)  # one wrong label
    walks.sort(key=lambda d: d.frame)
    raw = tracking.assign_tracks(walks, 12, 5.0, 0.35)
    ids, tracks = tracking.build_tracks(walks, raw, 2)
    assert len(tracks) == 2 and None not in ids
    assert [t.group for t in tracks] == ["bird", "bird"]
    first = tracks[0]
    assert first.path[0][1:] == (20.0, 70.0) and first.path[-1][1:] == (130.0, 70.0)
    assert (first.first_seen_s, first.last_seen_s) == (0.0, pytest.approx(2.2))
    assert summary.max_at_once(walks, ids, {1, 2}) == 2


def test_summary_of_an_empty_and_a_busy_file() -> None:
    empty = summary.summarise([], [], [], best_rejected=0.2, empty_threshold=0.5)
    assert empty["empty"] is True and empty["empty_confidence"] == 0.8
    assert empty["counts"] == {} and empty["activity"]["seconds"] == 0.0
    walks = _walk(0, 10, 6)
    ids, tracks = tracking.build_tracks(walks, [7] * 6, 2)
    busy = summary.summarise(tracks, walks, ids, 0.0, 0.5)
    assert busy["empty"] is False and busy["counts"] == {"bird": 1}
    assert busy["species"] == {"robin": 1} and busy["max_animals"] == 1
    assert busy["activity"] == {"first_s": 0.0, "last_s": 1.0, "seconds": 1.0}
    sheet = summary.contact_sheet([np.zeros((240, 320, 3), np.uint8)] * 6, tracks)
    assert sheet.shape == (summary.SHEET_TILE, summary.SHEET_TILE, 3)


def test_photo_windows_that_overlap_merge_into_one_animal() -> None:
    windows = [
        Detection(0, 0.0, (0, 0, 50, 50), "mammal", "tabby", 0.6),
        Detection(0, 0.0, (25, 0, 75, 50), "mammal", "tabby", 0.9),
        Detection(0, 0.0, (100, 100, 150, 150), "mammal", "tabby", 0.7),
        Detection(0, 0.0, (25, 25, 75, 75), "bird", "robin", 0.5),
    ]
    merged = detector.merge_touching(windows)
    assert [(d.box, d.group, d.score) for d in merged] == [
        ((0, 0, 75, 50), "mammal", 0.9),
        ((100, 100, 150, 150), "mammal", 0.7),
        ((25, 25, 75, 75), "bird", 0.5),
    ]


def test_a_region_that_stays_put_is_classified_every_few_frames() -> None:
    still = [(10.0, 10.0, 50.0, 50.0)]
    regions = [still, still, still, still, [*still, (100.0, 100.0, 140.0, 140.0)]]
    sources = detector.label_sources(regions, relabel_every=3)
    assert sources == [[(0, 0)], [(0, 0)], [(0, 0)], [(3, 0)], [(3, 0), (4, 1)]]
    assert detector.label_sources(regions, relabel_every=1)[2] == [(2, 0)]
