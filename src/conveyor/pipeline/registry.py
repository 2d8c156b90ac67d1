"""Finding pipelines: built-ins, the ``conveyor.pipelines`` entry-point group, and modules named
in the ``pipelines`` setting (``CONVEYOR_PIPELINES=pkg.module,other.module``).

A module contributes every module-level :class:`Pipeline` object it defines.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from conveyor.errors import ConfigurationError, UnknownPipelineError
from conveyor.pipeline.spec import Pipeline

BUILTIN_MODULES = (
    "conveyor.pipelines.noop",
    "conveyor.pipelines.csv_profile",
    "conveyor.pipelines.heart",
    "conveyor.pipelines.movies",
    "conveyor.pipelines.wildlife",
    "conveyor.pipelines.calls",
)
ENTRY_POINT_GROUP = "conveyor.pipelines"
logger = logging.getLogger(__name__)


class PipelineRegistry:
    def __init__(self, pipelines: Iterable[Pipeline] = ()) -> None:
        self._pipelines: dict[str, Pipeline] = {}
        for pipeline in pipelines:
            self.add(pipeline)

    def add(self, pipeline: Pipeline) -> None:
        existing = self._pipelines.get(pipeline.name)
        if existing is not None and existing is not pipeline:
            logger.warning("pipeline %r is defined twice; the later one wins", pipeline.name)
        self._pipelines[pipeline.name] = pipeline

    def get(self, name: str) -> Pipeline:
        try:
            return self._pipelines[name]
        except KeyError:
            known = ", ".join(sorted(self._pipelines)) or "none"
            raise UnknownPipelineError(
                f"no pipeline named {name!r}; known pipelines: {known}. Add yours with the "
                "CONVEYOR_PIPELINES setting or a 'conveyor.pipelines' entry point."
            ) from None

    def names(self) -> list[str]:
        return sorted(self._pipelines)

    def __iter__(self) -> Iterator[Pipeline]:
        return iter(self._pipelines.values())

    def find(self, name: str) -> Pipeline | None:
        return self._pipelines.get(name)

    def trainer_of(self, model: str) -> Pipeline | None:
        """The pipeline that trains the model ``model``, if one is installed."""
        return next((p for p in self if p.model_name == model), None)

    def model_names(self) -> list[str]:
        """The models that installed training pipelines train."""
        return sorted({p.model_name for p in self if p.model_name})

    def migration_locations(self) -> list[Path]:
        """The Alembic version folders the installed pipelines bring, each once."""
        folders = (p.hooks.migrations for p in self if p.hooks.migrations is not None)
        return sorted({Path(folder).resolve() for folder in folders})


def discover(extra_modules: Iterable[str] = ()) -> PipelineRegistry:
    """Built-ins first, then entry points, then configured modules (later ones win)."""
    registry = PipelineRegistry()
    for module_name in BUILTIN_MODULES:
        _add_module(registry, importlib.import_module(module_name))
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        _add_entry_point(registry, entry)
    for module_name in extra_modules:
        _add_module(registry, _import_configured(module_name))
    return registry


def _add_entry_point(registry: PipelineRegistry, entry) -> None:  # type: ignore[no-untyped-def]
    loaded = entry.load()
    if isinstance(loaded, Pipeline):
        registry.add(loaded)
    elif isinstance(loaded, ModuleType):
        _add_module(registry, loaded)
    else:
        logger.warning("entry point %s is neither a Pipeline nor a module; ignored", entry.name)


def _import_configured(module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigurationError(
            f"could not import pipeline module {module_name!r} named in the pipelines setting "
            f"({error}); check CONVEYOR_PIPELINES and that the module is installed."
        ) from error


def _add_module(registry: PipelineRegistry, module: ModuleType) -> None:
    for value in vars(module).values():
        if isinstance(value, Pipeline):
            registry.add(value)
