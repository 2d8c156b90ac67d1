"""A pipeline package's hooks: what the built-ins declare, what the registry gathers from
them, and the messages for a hook written wrong."""

from __future__ import annotations

import pytest

from conveyor.errors import PipelineDefinitionError
from conveyor.pipeline import PipelineHooks, ServingDefaults
from conveyor.pipeline.hooks import load_reference
from conveyor.pipeline.registry import discover


def test_the_registry_gathers_the_built_ins_hooks() -> None:
    registry = discover()
    folders = {folder.parent.name for folder in registry.migration_locations()}
    assert folders == {"calls", "wildlife"}
    assert registry.model_names() == ["heart", "movies"]
    trainer = registry.trainer_of("movies")
    assert trainer is not None and trainer.hooks.serving == ServingDefaults("userId", "ctr")
    assert registry.trainer_of("calls") is None  # a pipeline, not a model
    for pipeline in registry:
        for reference in (
            pipeline.hooks.tables,
            pipeline.hooks.api_routes,
            pipeline.hooks.cli_summary,
        ):
            assert reference is None or load_reference(reference) is not None
        renderer = pipeline.hooks.item_renderer
        assert renderer is None or renderer.is_file()
        assets = pipeline.hooks.static_assets
        assert assets is None or assets.is_dir()


def test_hooks_written_wrong_say_how_to_write_them() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"package\.module:attribute"):
        PipelineHooks(api_routes="my_package.api")
    with pytest.raises(PipelineDefinitionError, match="cannot be loaded"):
        load_reference("conveyor.pipelines.noop:no_such_router")
    with pytest.raises(PipelineDefinitionError, match="accuracy, ctr"):
        ServingDefaults(quality="precision")
