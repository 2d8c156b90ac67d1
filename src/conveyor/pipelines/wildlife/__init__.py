"""``wildlife``: camera-trap videos and photos -> animals, people and vehicles found, tracks and
their paths, an annotated video, a trajectory plot and a contact sheet (docs/wildlife.md).

This module is imported by the API, the CLI and every worker: it imports nothing heavy. OpenCV,
PyAV, ONNX Runtime and torch load inside the steps.
"""

from __future__ import annotations

from pathlib import Path

from conveyor.errors import InputRejectedError
from conveyor.pipeline import Pipeline, PipelineHooks

# Steps are reached through the module: the names "pose" and "render" belong to submodules.
from conveyor.pipelines.wildlife import steps

VERSION = "1"
HERE = Path(__file__).parent


def check_input(path: Path) -> None:
    """Refuse files that are not a video or image we read, or are over the size limits, by
    their headers (nothing is decoded in the submitting process), before queueing."""
    from conveyor.pipelines.wildlife import media

    try:
        media.probe(path)
    except media.MediaError as error:
        raise InputRejectedError(str(error)) from None


def _store(session, item_id: str, result: dict) -> None:  # type: ignore[no-untyped-def]
    from conveyor.pipelines.wildlife import tables  # the ORM tables: where results are stored

    tables.store_result(session, item_id, {**result, "pipeline_version": VERSION})


wildlife = Pipeline(
    "wildlife",
    version=VERSION,
    dag={
        steps.decode: [],
        steps.detect: [steps.decode],
        steps.track: [steps.decode, steps.detect],
        steps.pose: [steps.decode, steps.track],
        steps.render: [steps.decode, steps.detect, steps.track],
        steps.summarise: [steps.decode, steps.detect, steps.track, steps.pose, steps.render],
    },
    description="Camera-trap videos and photos: animals found, tracked, counted and drawn",
    accepts=("file",),
    check_input=check_input,
    store_result=_store,
    hooks=PipelineHooks(
        migrations=HERE / "migrations",
        tables="conveyor.pipelines.wildlife.tables:metadata",
        item_renderer=HERE / "templates" / "item.html",
    ),
)

__all__ = ["wildlife"]
