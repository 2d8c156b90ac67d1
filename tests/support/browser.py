"""Driving the web UI from Playwright: where the browser is, and what a person does often."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from conveyor.installation import Installation

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT_PATH = "/conveyor"  # every browser test runs under a sub-path, as behind a reverse proxy
PASSWORD = "correct horse battery"


@dataclass
class Server:
    url: str  # the UI's base URL, root path included
    installation: Installation


def log_in(page, server: Server, start: str = "/", name: str = "ada") -> None:  # type: ignore[no-untyped-def]
    """Open a page while logged out, get sent to the login form, log in, land on the page."""
    from playwright.sync_api import expect

    page.goto(server.url + start)
    expect(page).to_have_url(f"{server.url}/login?next={quote(ROOT_PATH + start, safe='')}")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(server.url + start)


def drop_files(page, selector: str, files: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """A real drop event carrying File objects, as dragging from the desktop produces."""
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, text] of files) {
                transfer.items.add(new File([text], name, {type: "text/csv"}));
            }
            return transfer;
        }""",
        list(files.items()),
    )
    page.dispatch_event(selector, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def download(page, selector: str) -> Path:  # type: ignore[no-untyped-def]
    """Click what starts a download; the downloaded file."""
    with page.expect_download() as started:
        page.click(selector)
    return Path(started.value.path())
