"""Synthetic calls made once per test session (espeak-ng + sox, see tests/support/calls_audio)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support.calls_audio import ANGRY, HAPPY, NEUTRAL, Call, make_call

NEEDED = ("espeak-ng", "sox")


@pytest.fixture(scope="session")
def call_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed; run scripts/test-services.sh")
    return tmp_path_factory.mktemp("calls")


@pytest.fixture(scope="session")
def angry_mono_wav(call_folder: Path) -> Call:
    return make_call(ANGRY, call_folder, "angry mono")


@pytest.fixture(scope="session")
def happy_stereo_mp3(call_folder: Path) -> Call:
    return make_call(HAPPY, call_folder, "happy stereo", stereo=True, fmt="mp3")


@pytest.fixture(scope="session")
def neutral_stereo_wav(call_folder: Path) -> Call:
    return make_call(NEUTRAL, call_folder, "neutral stereo", stereo=True)


@pytest.fixture(scope="session")
def ten_minute_mono(call_folder: Path) -> Call:
    """About ten minutes: the happy and the angry dialogue, played nine times over."""
    return make_call(HAPPY + ANGRY, call_folder, "ten minutes", repeat=9)


@pytest.fixture
def sqlite_installation(tmp_path: Path, ray_cluster: str):  # type: ignore[no-untyped-def]
    """An installation on SQLite only, for the slow cases that do not exercise the store."""
    from conveyor.installation import Installation
    from conveyor.settings import load_settings

    settings = load_settings(
        tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'conveyor.db'}",
        lease_seconds=30.0,
        poll_interval_seconds=0.05,
    )
    built = Installation(settings)
    yield built
    built.close()
