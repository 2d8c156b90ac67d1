"""A pyannote pipeline from local weights, chosen by CONVEYOR_CALLS_DIARISATION_MODEL. No
weights ship here, so what is tested is the setting's wiring into the diarise step and the
errors a user sees: a folder with no pipeline, and pyannote.audio not installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from conveyor.errors import ConfigurationError
from conveyor.pipelines.calls import steps
from conveyor.pipelines.calls.settings import CallsSettings

SILENCE = np.zeros(16000, dtype=np.float32)


def _settings(monkeypatch: pytest.MonkeyPatch, folder: Path) -> CallsSettings:
    monkeypatch.setenv("CONVEYOR_CALLS_DIARISATION_MODEL", str(folder))
    return CallsSettings()


def test_the_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert CallsSettings().diarisation_model is None
    assert _settings(monkeypatch, tmp_path).diarisation_model == tmp_path


def test_a_folder_without_a_pipeline_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError) as error:
        steps.mono_turns(SILENCE, _settings(monkeypatch, tmp_path / "missing"))
    message = str(error.value)
    assert "CONVEYOR_CALLS_DIARISATION_MODEL" in message and "config.yaml" in message
    assert "unset CONVEYOR_CALLS_DIARISATION_MODEL" in message


@pytest.mark.skipif(
    importlib.util.find_spec("pyannote") is not None, reason="pyannote is installed here"
)
def test_without_pyannote_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "config.yaml").write_text("pipeline:\n  name: pyannote.audio.pipelines.X\n")
    with pytest.raises(ConfigurationError) as error:
        steps.mono_turns(SILENCE, _settings(monkeypatch, tmp_path))
    message = str(error.value)
    assert "CONVEYOR_CALLS_DIARISATION_MODEL" in message
    assert "pip install 'pyannote.audio" in message
