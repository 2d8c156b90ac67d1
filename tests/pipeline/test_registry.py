"""Pipelines come from built-ins, entry points and the pipelines setting."""

import sys
from pathlib import Path

import pytest

from conveyor.errors import ConfigurationError, UnknownPipelineError
from conveyor.pipeline.registry import discover
from conveyor.settings import load_settings

PLUGIN = """
from conveyor.pipeline import Pipeline, step

@step
def shout(context):
    return str(context.record).upper()

loud = Pipeline("loud", "3", {shout: []})
"""


def test_builtins_are_always_there() -> None:
    assert {"noop", "csv_profile"} <= set(discover().names())


def test_modules_named_in_the_setting(monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "my_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CONVEYOR_PIPELINES", "my_plugin")
    settings = load_settings(tmp_path / "home")
    assert discover(settings.pipelines).get("loud").version == "3"


def test_installed_entry_points(monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "ep_plugin.py").write_text(PLUGIN.replace('"loud"', '"loud_ep"'))
    dist = tmp_path / "ep_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[conveyor.pipelines]\nloud = ep_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "loud_ep" in discover().names()
    sys.modules.pop("ep_plugin", None)


def test_unknown_names_and_bad_modules_say_what_to_do() -> None:
    with pytest.raises(UnknownPipelineError, match="CONVEYOR_PIPELINES"):
        discover().get("nope")
    with pytest.raises(ConfigurationError, match="could not import pipeline module"):
        discover(["no_such_module_here"])
