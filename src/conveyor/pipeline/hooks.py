"""What a pipeline package may add to Conveyor besides its steps: its own tables (Alembic
migrations and their MetaData), API routes, an item-page renderer with its static files, a
``conveyor demo`` summary and serving defaults. Every hook is optional; docs/plugins.md shows a
whole third-party package.

Hooks name code by reference (``"package.module:attribute"``) and files by path, so that
discovering a pipeline (every CLI command and every worker does) imports neither FastAPI nor
anything else the hook needs: the API imports a route module only when it builds the app.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.errors import PipelineDefinitionError

PIPELINE_STATIC_PREFIX = "/static/pipelines"  # + "/<pipeline>/<file>": static_assets
ACCURACY = "accuracy"
CLICK_THROUGH = "ctr"  # the names serving/quality.py reports metrics by
QUALITY_METRICS = (ACCURACY, CLICK_THROUGH)


@dataclass(frozen=True)
class ServingDefaults:
    """How serving treats a model this pipeline trains.

    ``key_field`` is the record field a new endpoint routes and logs by (the request key);
    ``quality`` is the online quality measured from feedback: ``"accuracy"`` (labels of
    predictions) or ``"ctr"``, click-through (watch or click events of the key's user on the
    recommended ids, which needs ``key_field`` to name the user).
    """

    key_field: str | None = None
    quality: str = ACCURACY

    def __post_init__(self) -> None:
        if self.quality not in QUALITY_METRICS:
            raise PipelineDefinitionError(
                f"serving quality must be one of {', '.join(QUALITY_METRICS)}, "
                f"not {self.quality!r}."
            )


@dataclass(frozen=True)
class PipelineHooks:
    """Optional additions of a pipeline package.

    - ``migrations``: a folder of Alembic revision files (a version location). Conveyor
      upgrades the store to the heads of its own chain and of every installed pipeline's.
    - ``tables``: ``"module:metadata"``, the SQLAlchemy ``MetaData`` of the tables those
      migrations create, which Alembic's autogenerate compares with the store (see
      :mod:`conveyor.schema`); never loaded to upgrade or to run the pipeline.
    - ``api_routes``: ``"module:router"``, a FastAPI ``APIRouter`` included in the app as it
      is (give it the ``/api/v1/...`` prefix it wants); see :mod:`conveyor.api.plugins`.
    - ``item_renderer``: a Jinja2 template file that shows this pipeline's results on the
      item page (it receives ``item``, ``result`` and ``assets``; core macros are importable).
    - ``static_assets``: a folder of files the renderer links to (scripts, styles, images),
      served by the web app at ``/static/pipelines/<pipeline>/``; the renderer's ``assets``
      is that URL under the app's root path.
    - ``cli_summary``: ``"module:function"``, called as ``function(installation, console)``
      after ``conveyor demo`` to print this pipeline's results.
    - ``serving``: :class:`ServingDefaults` for the models this pipeline trains.
    """

    migrations: Path | None = None
    tables: str | None = None
    api_routes: str | None = None
    item_renderer: Path | None = None
    static_assets: Path | None = None
    cli_summary: str | None = None
    serving: ServingDefaults | None = None

    def __post_init__(self) -> None:
        for reference in (self.tables, self.api_routes, self.cli_summary):
            if reference is not None:
                _split(reference)


def load_reference(reference: str) -> Any:
    """The object ``"package.module:attribute"`` names (imports the module)."""
    module_name, attribute = _split(reference)
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise PipelineDefinitionError(
            f"pipeline hook {reference!r} cannot be loaded ({error}); check the module and "
            "attribute names."
        ) from error


def _split(reference: str) -> tuple[str, str]:
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise PipelineDefinitionError(
            f"pipeline hook {reference!r} must name 'package.module:attribute'."
        )
    return module_name, attribute
