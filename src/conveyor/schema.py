"""Every table the migrations create, for Alembic's autogenerate and the schema test: the
core's (the store's models and the tables of its own features) and those each installed
pipeline names in ``PipelineHooks.tables``. Upgrading a store needs none of this."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from conveyor.errors import PipelineDefinitionError
from conveyor.pipeline.hooks import load_reference
from conveyor.pipeline.registry import PipelineRegistry

CORE_TABLE_MODULES = (
    "conveyor.store.models",
    "conveyor.monitoring.tables",  # alerts delivered by Alertmanager
    "conveyor.retention.tables",  # telemetry roll-ups
    "conveyor.serving.tables",  # endpoints, experiments, the prediction log
    "conveyor.streams.tables",  # stream sources
    "conveyor.scoring.tables",  # batch scoring jobs and their parts
)


def core_metadata() -> MetaData:
    for module in CORE_TABLE_MODULES:
        importlib.import_module(module)
    from conveyor.store.models import Base

    return Base.metadata


def schema_metadata(registry: PipelineRegistry) -> list[MetaData]:
    """The core's MetaData, then each pipeline's that is another object (a pipeline may
    declare its tables on the core's declarative base, as the built-ins do)."""
    found = [core_metadata()]
    for pipeline in registry:
        if pipeline.hooks.tables is None:
            continue
        metadata = load_reference(pipeline.hooks.tables)
        if not isinstance(metadata, MetaData):
            raise PipelineDefinitionError(
                f"pipeline {pipeline.name!r}: tables hook {pipeline.hooks.tables!r} names a "
                f"{type(metadata).__name__}, not a SQLAlchemy MetaData."
            )
        if all(metadata is not known for known in found):
            found.append(metadata)
    return found
