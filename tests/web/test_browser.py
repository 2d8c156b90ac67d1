"""The web UI in headless Chromium, as a person uses it: log in, drop files, watch them finish,
open an item, download its result, export a pipeline's results. SQLite only, to keep it quick."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the browser fixture skips these tests (and fails them in CI)
    Page = expect = None  # type: ignore[assignment,misc]

from support.browser import PASSWORD, download, drop_files, log_in

LIVE_TIMEOUT_MS = 90_000
TABLES = {
    "fruit.csv": "fruit,price,stock\napple,1.2,10\npear,0.8,\nplum,2.5,7\n",
    "cities.csv": "city;population\nOslo;709000\nBergen;291000\n",
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'conveyor.db'}"


@pytest.fixture
def page(browser) -> Page:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    yield context.new_page()
    context.close()


def test_upload_watch_open_download_and_export(
    serve, page: Page, browser, screenshots, tmp_path: Path
) -> None:
    server = serve()
    log_in(page, server, "/upload")
    page.select_option("#pipeline", "csv_profile")
    page.evaluate("window.sameDocument = true")
    drop_files(page, "#drop-zone", TABLES)

    uploads = page.locator("#uploads li")
    expect(uploads).to_have_count(2)
    expect(page.locator("#uploads .badge-succeeded")).to_have_count(2, timeout=LIVE_TIMEOUT_MS)
    assert page.evaluate("window.sameDocument") is True, "the page reloaded"
    screenshots(page, "upload")

    page.click("#uploads li:has-text('fruit.csv') a")
    expect(page.locator("h1")).to_have_text("fruit.csv")
    expect(page.locator("svg.dag .node-succeeded")).to_have_count(4)
    expect(page.locator("#step-runs tbody tr:not(.run-details)")).to_have_count(4)
    expect(page.locator("table.profile")).to_contain_text("price")
    page.click("summary:has-text('logs of parse')")
    expect(page.locator("pre.logs").first).to_contain_text("parsed 3 rows x 3 columns")
    screenshots(page, "item")

    result = json.loads(download(page, "[data-download=json]").read_text())
    assert result["result"]["rows"] == 3 and result["result"]["numeric_columns"] == [
        "price",
        "stock",
    ]
    [row] = list(csv.DictReader(download(page, "[data-download=csv]").open()))
    assert row["input"] == "fruit.csv" and row["result.profile.stock.missing"] == "1"

    page.click("nav >> text=Items")
    expect(page.locator("#item-rows .badge-succeeded")).to_have_count(2)
    screenshots(page, "items")

    page.click("nav >> text=Results")
    expect(page.locator("#latest-results tbody tr")).to_have_count(2)
    screenshots(page, "results")
    exported = list(csv.DictReader(download(page, "#export button[value=csv]").open()))
    assert sorted(r["input"] for r in exported) == ["cities.csv", "fruit.csv"]
    assert {r["status"] for r in exported} == {"succeeded"}

    # work still waiting when the dashboard opens, so the queue depth chart has something to show
    slow = [{"n": n, "sleep_ms": 1000} for n in range(6)]
    server.installation.submitter.submit_records("noop", slow, source="test")
    page.click("nav >> text=Dashboard")
    succeeded = page.locator("#counts tr[data-pipeline=csv_profile] td[data-status=succeeded]")
    expect(succeeded).to_have_text("2")
    expect(page.locator("#throughput-chart canvas")).to_have_count(1)
    expect(page.locator("#queue-depth-chart canvas")).to_have_count(1)
    steps = server.installation.registry.get("csv_profile").order
    durations = page.locator("#step-durations tr[data-pipeline=csv_profile]")
    expect(durations).to_have_count(len(steps))
    expect(durations.first.locator("td[data-label=runs]")).to_have_text("2")
    for gauge in ("CPU", "Memory", "Storage volume"):
        expect(page.locator(f"#hardware [data-gauge='{gauge}'] .gauge-value")).to_contain_text("%")
    expect(page.locator("#workers tbody tr")).not_to_have_count(0)
    expect(page.locator("#step-durations tr[data-pipeline=noop]")).not_to_have_count(0)
    screenshots(page, "dashboard")


def test_phone_sized_screen_has_no_sideways_scrolling(serve, browser, screenshots) -> None:  # type: ignore[no-untyped-def]
    server = serve()
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    log_in(phone, server, "/")
    submitted = server.installation.submitter.submit_records("noop", [{"n": 1}], source="test")
    expect(phone.locator("#counts tr[data-pipeline=noop] td[data-status=succeeded]")).to_have_text(
        "1", timeout=LIVE_TIMEOUT_MS
    )
    screenshots(phone, "dashboard-phone")
    phone.goto(f"{server.url}/items/{submitted[0].item_id}")
    expect(phone.locator("svg.dag .node-succeeded")).to_have_count(4)
    screenshots(phone, "item-phone")
    for path in ("/", f"/items/{submitted[0].item_id}", "/items", "/upload", "/results"):
        phone.goto(server.url + path)
        if path in ("/items", "/upload", "/results"):
            screenshots(phone, f"{path.strip('/')}-phone")
        overflow = phone.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
    context.close()


def test_items_table_updates_live_and_buttons_retry_and_cancel(serve, page: Page) -> None:
    server = serve(controller=False)
    submitter = server.installation.submitter
    [waiting] = submitter.submit_records("noop", [{"n": 1}], source="test")
    [failing] = submitter.submit_records("noop", [{"fail": "permanent"}], source="test")
    log_in(page, server, "/items")
    page.evaluate("window.sameDocument = true")
    row = page.locator(f"tr[data-item='{waiting.item_id}']")
    expect(row.locator(".badge")).to_have_text("queued")

    row.locator("button", has_text="Cancel").click()
    expect(row.locator(".badge")).to_have_text("cancelled")
    row.locator("button", has_text="Retry").click()
    expect(row.locator(".badge")).to_have_text("queued")

    item_page = page.context.new_page()
    item_page.goto(f"{server.url}/items/{waiting.item_id}")
    expect(item_page.locator(".item-status .badge")).to_have_text("queued")
    expect(item_page.locator("svg.dag .node-pending")).to_have_count(4)

    server.installation.controller().run_until_idle(timeout=120)
    expect(row.locator(".badge")).to_have_text("succeeded", timeout=LIVE_TIMEOUT_MS)
    expect(item_page.locator(".item-status .badge")).to_have_text("succeeded")
    expect(item_page.locator("svg.dag .node-succeeded")).to_have_count(4)
    expect(item_page.locator("#result")).to_contain_text("n")
    failed = page.locator(f"tr[data-item='{failing.item_id}']")
    expect(failed.locator(".badge")).to_have_text("failed")
    assert page.evaluate("window.sameDocument") is True, "the items page reloaded"
    page.select_option("select[name=status]", "failed")
    page.click("form.filters button[type=submit]")
    expect(page.locator("#item-rows tr[data-item]")).to_have_count(1)
    page.click(f"a[href$='/items/{failing.item_id}']")
    expect(page.locator(".error-box").first).to_contain_text("permanent")


def test_login_errors_escaping_and_roles(serve, page: Page, screenshots) -> None:  # type: ignore[no-untyped-def]
    server = serve(controller=False)
    page.goto(server.url + "/items")
    page.fill("input[name=name]", "ada")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("wrong user name or password")
    screenshots(page, "login")

    hostile = "<img src=x onerror=window.pwned=1>.csv"
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(server.url + "/items")
    page.goto(server.url + "/upload")
    page.set_input_files(
        "#files", files=[{"name": hostile, "mimeType": "text/csv", "buffer": b"a\n1\n"}]
    )
    expect(page.locator("#uploads a")).to_have_count(1)
    page.click("#uploads a")
    expect(page.locator("h1")).to_have_text(hostile)
    page.goto(server.url + "/items")
    expect(page.locator("#item-rows .input-name")).to_have_text(hostile)
    assert page.evaluate("window.pwned") is None and not dialogs

    page.click("button[data-logout]")
    expect(page).to_have_url(f"{server.url}/login")
    page.fill("input[name=name]", "vic")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("nav[aria-label=main]")).not_to_contain_text("Upload")
    expect(page.locator("button[data-post]")).to_have_count(0)


def test_model_page_draws_the_chart_and_promotes_with_a_button(
    serve, installation, browser, tmp_path: Path
) -> None:
    from conveyor.models.service import ModelOps
    from conveyor.pipelines.heart.data import synthetic_csv
    from conveyor.settings import ModelSettings

    dataset = tmp_path / "heart.csv"
    dataset.write_bytes(synthetic_csv(100, seed=21))
    installation.settings.models = {
        "heart": ModelSettings(
            dataset=str(dataset), params={"cv_folds": 3, "candidates": ["logistic_regression"]}
        )
    }
    ops = ModelOps(installation)
    for params in ({}, {"candidates": "baseline"}):
        ops.train("heart", params)
        installation.controller().run_until_idle(timeout=180)
        ops.register_pending()
    server = serve(controller=False)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    log_in(phone, server, "/models/heart")
    expect(phone.locator("#model-chart canvas")).to_have_count(1)
    expect(phone.locator("table.history tbody tr")).to_have_count(2)
    overflow = phone.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the model page scrolls sideways by {overflow}px on a phone"
    phone.click("tr[data-version='2'] button:has-text('Promote')")
    expect(phone.locator("tr[data-version='2'] .badge-succeeded")).to_have_text("champion")
    expect(phone.locator("table.history tbody tr")).to_have_count(3)
    context.close()
