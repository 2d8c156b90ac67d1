"""The model page's Batch score form in headless Chromium: an operator names files under the
storage root, the job starts, the page shows its progress until it ends, and reopening the link
follows the same job. A viewer gets no form. SQLite only, to keep it quick."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips these tests (and fails them in CI)
    expect = None  # type: ignore[assignment]

from support.browser import log_in

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))  # the serving tests' models
from serving_helpers import register_heart

ROWS = 400
LIVE_TIMEOUT_MS = 120_000


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'conveyor.db'}"


def test_batch_score_form_starts_a_job_and_follows_it(serve, installation, browser) -> None:  # type: ignore[no-untyped-def]
    from conveyor.models.registry import ModelRegistry
    from conveyor.pipelines.heart.data import HEART_SCHEMA, synthetic_rows

    settings = installation.settings
    tracking = ModelRegistry.for_home(settings.home, settings.mlflow_tracking_uri)
    register_heart(tracking, settings.home / "registered", seed=1)
    folder = Path(installation.storage.root) / "batch"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [",".join(["id", *HEART_SCHEMA.names])]
    lines += [f"{n},{','.join(row)}" for n, row in enumerate(synthetic_rows(ROWS, seed=2))]
    (folder / "visits.csv").write_text("\n".join(lines) + "\n")
    server = serve(controller=False)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, server, "/models/heart")
    page.fill("#batch-form textarea[name=inputs]", "batch/*.csv")
    page.fill("#batch-form input[name=output]", "batch/scored")
    page.fill("#batch-form input[name=columns]", "id")
    page.click("#batch-form button[type=submit]")
    status = page.locator("#batch-status")
    expect(status).to_have_attribute("data-status", "succeeded", timeout=LIVE_TIMEOUT_MS)
    expect(status).to_contain_text(f"{ROWS} of {ROWS} rows scored")
    assert "#batch=" in page.url
    page.reload()  # the address names the job: the page follows it again
    expect(page.locator("#batch-status")).to_contain_text("succeeded", timeout=30_000)
    assert list((folder / "scored").glob("part-*.parquet"))
    viewer = context.new_page()
    context.clear_cookies()
    log_in(viewer, server, "/models/heart", name="vic")
    expect(viewer.locator("#batch-form")).to_have_count(0)
    context.close()
