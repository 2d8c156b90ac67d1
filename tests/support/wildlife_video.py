"""Synthetic camera-trap clips made with PyAV: scikit-image's cat (``chelsea``) cut out and moved
across a textured background, several cats crossing, and an empty clip whose lighting ramps
while grass blades sway. Each maker returns the true box centre of every animal over time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data


@dataclass
class Clip:
    path: Path
    duration_s: float
    # animal index -> list of (time_s, centre x, centre y) in the clip's pixels
    truth: dict[int, list[tuple[float, float, float]]] = field(default_factory=dict)


def cat_sprite(width: int) -> tuple[np.ndarray, np.ndarray]:
    """The cat's head and shoulders from ``chelsea`` (BGR) and a soft elliptical alpha mask."""
    cat = cv2.cvtColor(data.chelsea()[20:280, 60:420], cv2.COLOR_RGB2BGR)
    height = round(width * cat.shape[0] / cat.shape[1])
    sprite = cv2.resize(cat, (width, height), interpolation=cv2.INTER_AREA)
    alpha = np.zeros((height, width), np.float32)
    cv2.ellipse(
        alpha, (width // 2, height // 2), (width // 2 - 1, height // 2 - 1), 0, 0, 360, 1, -1
    )
    return sprite, cv2.GaussianBlur(alpha, (5, 5), 0)[..., None]


def background(width: int, height: int) -> np.ndarray:
    """A static textured scene: gravel below, a greenish tint, a soft vertical light gradient."""
    gravel = cv2.resize(data.gravel(), (width, height), interpolation=cv2.INTER_AREA)
    scene = np.stack([gravel * 0.55, gravel * 0.75, gravel * 0.6], axis=-1)
    scene *= np.linspace(0.8, 1.1, height, dtype=np.float32)[:, None, None]
    return np.clip(scene, 0, 255).astype(np.float32)


def paste(frame: np.ndarray, sprite: np.ndarray, alpha: np.ndarray, cx: float, cy: float) -> None:
    height, width = sprite.shape[:2]
    x0, y0 = round(cx - width / 2), round(cy - height / 2)
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(frame.shape[1], x0 + width), min(frame.shape[0], y0 + height)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    part = sprite[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    weight = alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    region = frame[fy0:fy1, fx0:fx1]
    frame[fy0:fy1, fx0:fx1] = region * (1 - weight) + part * weight


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    size: tuple[int, int],
    fps: int,
    creation_time: str = "",
) -> None:
    """Encode frames (BGR, float or uint8) as H.264 as they come: long clips never sit in memory."""
    with av.open(str(path), "w") as container:
        if creation_time:
            container.metadata["creation_time"] = creation_time
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast"}
        stream.time_base = Fraction(1, fps)
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(np.clip(frame, 0, 255).astype(np.uint8), "bgr24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def crossing_clip(
    path: Path,
    paths: list[tuple[tuple[float, float], tuple[float, float]]],
    seconds: float = 4.0,
    size: tuple[int, int] = (320, 240),
    fps: int = 10,
    noise: float = 2.0,
    sprite_width: int = 110,
    creation_time: str = "",
) -> Clip:
    """Cats moving in straight lines from start to end centre (fractions of the frame)."""
    clip = Clip(path, seconds, {index: [] for index in range(len(paths))})
    frames = _crossing_frames(clip, paths, size, fps, noise, sprite_width)
    write_video(path, frames, size, fps, creation_time)
    return clip


def _crossing_frames(
    clip: Clip,
    paths: list[tuple[tuple[float, float], tuple[float, float]]],
    size: tuple[int, int],
    fps: int,
    noise: float,
    sprite_width: int,
) -> Iterator[np.ndarray]:
    width, height = size
    rng = np.random.default_rng(7)
    scene = background(width, height).astype(np.uint8)
    sprite, alpha = cat_sprite(sprite_width)
    for number in range(round(clip.duration_s * fps)):
        time_s = number / fps
        progress = time_s / clip.duration_s
        frame = scene.copy()
        for index, ((sx, sy), (ex, ey)) in enumerate(paths):
            cx = (sx + (ex - sx) * progress) * width
            cy = (sy + (ey - sy) * progress) * height
            paste(frame, sprite if index % 2 == 0 else sprite[:, ::-1], alpha, cx, cy)
            clip.truth[index].append((time_s, cx, cy))
        if noise:
            yield frame + rng.normal(0, noise, frame.shape).astype(np.float32)
        else:
            yield frame


def still_clip(path: Path, seconds: float = 3.0, size: tuple[int, int] = (320, 240)) -> Clip:
    """A cat that does not move, in light that slowly brightens: nothing for motion to see."""
    clip = Clip(path, seconds, {0: []})
    frames = _crossing_frames(clip, [((0.5, 0.5), (0.5, 0.5))], size, 10, 2.0, 150)
    ramp = (f * (0.85 + 0.1 * n / (seconds * 10)) for n, f in enumerate(frames))
    write_video(path, ramp, size, 10)
    return clip


def empty_clip(
    path: Path, seconds: float = 4.0, size: tuple[int, int] = (320, 240), fps: int = 10
) -> Clip:
    """No animal: the light ramps from dim to bright and back while grass blades sway."""
    width, height = size
    rng = np.random.default_rng(11)
    scene = background(width, height)
    blades = [
        (
            rng.uniform(0, width),
            height,
            rng.uniform(height * 0.45, height * 0.85),
            rng.uniform(0, 6),
        )
        for _ in range(60)
    ]
    frames = []
    for number in range(round(seconds * fps)):
        time_s = number / fps
        frame = scene.copy()
        for x, base, top, phase in blades:
            sway = 3.0 * np.sin(2 * np.pi * 0.8 * time_s + phase)
            tip = (round(x + sway), round(base - (base - top)))
            cv2.line(frame, (round(x), round(base)), tip, (40, 150, 60), 2, cv2.LINE_AA)
        light = 0.75 + 0.35 * np.sin(np.pi * time_s / seconds)
        frame = frame * light + rng.normal(0, 2.0, frame.shape).astype(np.float32)
        frames.append(frame)
    write_video(path, frames, size, fps)
    return Clip(path, seconds)


def long_clip(path: Path, seconds: float, size: tuple[int, int], fps: int = 25) -> Clip:
    """A long clip for the benchmark: one cat crossing the whole frame slowly."""
    return crossing_clip(
        path, [((0.1, 0.6), (0.9, 0.4))], seconds, size, fps, noise=0, sprite_width=size[0] // 4
    )
