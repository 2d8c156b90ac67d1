"""Static files: the core's at ``/static``, each pipeline's ``static_assets`` folder at
``/static/pipelines/<pipeline>/`` (what its item renderer links to as ``assets``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from conveyor.errors import PipelineDefinitionError
from conveyor.pipeline.hooks import PIPELINE_STATIC_PREFIX
from conveyor.pipeline.registry import PipelineRegistry

STATIC_DIR = Path(__file__).parent / "static"


def mount_static_files(app: FastAPI, registry: PipelineRegistry) -> None:
    # The pipelines' mounts come first: the core's /static mount would answer their paths.
    for pipeline in registry:
        folder = pipeline.hooks.static_assets
        if folder is None:
            continue
        if not Path(folder).is_dir():
            raise PipelineDefinitionError(
                f"pipeline {pipeline.name!r} names static_assets {str(folder)!r}, which is not "
                "a folder; ship the folder in the package (package data) or drop the hook."
            )
        app.mount(assets_url(pipeline.name), StaticFiles(directory=folder))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def assets_url(pipeline: str, root: str = "") -> str:
    """Where pipeline ``pipeline``'s static files are served, under the app's ``root`` path."""
    return f"{root}{PIPELINE_STATIC_PREFIX}/{pipeline}"
