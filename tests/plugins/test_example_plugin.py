"""A third-party pipeline package, installed by pip (tests/plugins/example_pipeline), is found
by its entry point and brings its own table (migration), API route and item-page renderer
with its static files; all of them work on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from conveyor.api.app import create_app
from conveyor.installation import Installation
from conveyor.pipeline.registry import discover
from conveyor.settings import load_settings

PACKAGE = Path(__file__).parent / "example_pipeline"


@pytest.fixture(scope="module")
def example_package(plugin_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``pip install`` the package into the workers' plugin folder (from a copy, so no build
    files land in the work tree); uninstalled (the folder emptied) afterwards."""
    source = tmp_path_factory.mktemp("example") / "example_pipeline"
    shutil.copytree(PACKAGE, source)
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*command, "--target", str(plugin_site), str(source)], check=True)
    sys.path.insert(0, str(plugin_site))
    yield
    sys.path.remove(str(plugin_site))
    for name in [name for name in sys.modules if name.startswith("example_pipeline")]:
        del sys.modules[name]
    for entry in plugin_site.iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def test_the_entry_point_brings_the_pipeline(example_package: None) -> None:
    registry = discover()  # no pipelines setting: found by its entry point alone
    assert "example_words" in registry.names()
    assert registry.get("example_words").hooks.api_routes == "example_pipeline.api:router"


def test_table_route_and_renderer_work(
    example_package: None, tmp_path: Path, database_url: str, ray_cluster: str
) -> None:
    # The pipelines setting gives the workers a registry of their own (they keep one per
    # setting), so one that ran before the package was installed cannot hide it.
    settings = load_settings(
        tmp_path / "home", database_url=database_url, pipelines=["example_pipeline"]
    )
    installation = Installation(settings)
    try:
        assert "example_word_counts" in inspect(installation.engine).get_table_names()
        item_id = installation.submitter.submit_records(
            "example_words", [{"text": "a plug-in brings extraordinary things"}]
        )[0].item_id
        installation.controller().run_until_idle(timeout=120)
        client = TestClient(create_app(installation, auth_required=False))
        counts = client.get("/api/v1/pipelines/example_words/counts")
        page = client.get(f"/items/{item_id}")
        stylesheet = client.get("/static/pipelines/example_words/words.css")
    finally:
        installation.close()
    assert counts.status_code == 200, counts.text
    assert counts.json() == [{"item_id": item_id, "words": 5, "longest": "extraordinary"}]
    assert page.status_code == 200
    assert 'class="example-words"><strong>5</strong> words' in page.text
    assert 'href="/static/pipelines/example_words/words.css"' in page.text
    assert stylesheet.status_code == 200 and ".example-words strong" in stylesheet.text
