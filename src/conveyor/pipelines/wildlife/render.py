"""Pictures for people: the annotated video (H.264 MP4 via PyAV) and the trajectory plot (PNG).

The annotated video shows the analysed frames (``fps`` per second, scaled), each with the boxes,
labels and track ids found in it. Its frame rate is chosen so that it lasts exactly as long as
the input: N analysed frames over D seconds play at N/D frames per second.
"""

from __future__ import annotations

import colorsys
from collections import defaultdict
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from conveyor.pipelines.wildlife.detector import Detection
from conveyor.pipelines.wildlife.tracking import Track

UNTRACKED = (160, 160, 160)


def track_colour(track_id: int | None) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per track (golden-ratio hues); grey when untracked."""
    if track_id is None:
        return UNTRACKED
    red, green, blue = colorsys.hsv_to_rgb((track_id * 0.618034) % 1.0, 0.85, 1.0)
    return int(blue * 255), int(green * 255), int(red * 255)


def annotate(
    frame: np.ndarray,
    detections: list[tuple[Detection, int | None]],
    time_s: float,
    track_species: dict[int, str] | None = None,
) -> np.ndarray:
    """A copy of the frame with each detection's box and "#id species score" label; a tracked
    box shows its track's voted species (one frame's guess can be wrong, the vote rarely)."""
    import cv2

    image = frame.copy()
    scale = max(0.4, image.shape[1] / 1200)
    thickness = max(1, round(image.shape[1] / 480))
    for detection, track_id in detections:
        colour = track_colour(track_id)
        x1, y1, x2, y2 = (round(v) for v in detection.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, thickness)
        name = f"#{track_id} " if track_id is not None else ""
        species = (track_species or {}).get(track_id or 0, detection.species)
        label = f"{name}{species} {detection.score:.2f}"
        (width, height), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(0, y1 - height - base - 2)
        cv2.rectangle(image, (x1, top), (x1 + width + 4, top + height + base + 2), colour, -1)
        cv2.putText(
            image, label, (x1 + 2, top + height + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1
        )
    stamp, corner = f"{time_s:6.2f} s", (6, image.shape[0] - 8)
    for colour, width in (((0, 0, 0), thickness + 2), ((255, 255, 255), thickness)):
        cv2.putText(image, stamp, corner, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, width)
    return image


def by_frame(
    detections: list[Detection], track_ids: list[int | None]
) -> dict[int, list[tuple[Detection, int | None]]]:
    grouped: dict[int, list[tuple[Detection, int | None]]] = defaultdict(list)
    for detection, track_id in zip(detections, track_ids, strict=True):
        grouped[detection.frame].append((detection, track_id))
    return grouped


def write_video(
    path: Path,
    frames: list[np.ndarray],
    times: list[float],
    detections: list[Detection],
    track_ids: list[int | None],
    duration_s: float,
    tracks: Sequence[Track] = (),
) -> None:
    """The annotated analysed frames as H.264 (yuv420p, faststart) lasting ``duration_s``."""
    import av

    count = len(frames)
    duration_ms = max(1, round((duration_s or count) * 1000))
    rate = Fraction(count * 1000, duration_ms).limit_denominator(100000)
    grouped = by_frame(detections, track_ids)
    species = {track.track_id: track.species for track in tracks}
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as output:
        stream = output.add_stream("libx264", rate=rate)
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for index, frame in enumerate(frames):
            picture = annotate(frame, grouped.get(index, []), times[index], species)
            picture = picture[: stream.height, : stream.width]
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)


def trajectory_plot(path: Path, backdrop: np.ndarray, tracks: list[Track], title: str) -> None:
    """Each track's box-centre path over a dimmed frame, start dot, end arrow, "#id species"."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    height, width = backdrop.shape[:2]
    figure, axes = pyplot.subplots(figsize=(8, 8 * height / width + 0.6), dpi=100)
    try:
        axes.imshow(backdrop[:, :, ::-1], alpha=0.45)
        for track in tracks:
            colour = tuple(c / 255 for c in reversed(track_colour(track.track_id)))
            xs = [x for _, x, _ in track.path]
            ys = [y for _, _, y in track.path]
            axes.plot(xs, ys, "-", color=colour, linewidth=2)
            axes.plot(xs[0], ys[0], "o", color=colour, markersize=7)
            if len(xs) > 1:
                axes.annotate(
                    "",
                    xy=(xs[-1], ys[-1]),
                    xytext=(xs[-2], ys[-2]),
                    arrowprops={"arrowstyle": "->", "color": colour, "linewidth": 2},
                )
            axes.text(
                xs[0],
                ys[0] - 8,
                f"#{track.track_id} {track.species}",
                color=colour,
                fontsize=9,
                fontweight="bold",
            )
        if not tracks:
            axes.text(width / 2, height / 2, "no animals tracked", ha="center", fontsize=14)
        axes.set_xlim(0, width)
        axes.set_ylim(height, 0)
        axes.set_title(title, fontsize=10)
        axes.set_xlabel("x (pixels of the analysed frame)")
        axes.set_ylabel("y")
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        pyplot.close(figure)
