"""A real Conveyor server on loopback (uvicorn in a thread, a controller beside it) and a
headless Chromium driven by Playwright, for the browser tests."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn

from conveyor.api.app import create_app
from conveyor.auth.service import add_user
from conveyor.installation import Installation
from support.browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, ROOT_PATH, Server
from support.up import free_port

SCREENSHOTS_FOR_HUMANS = Path("/tmp/conveyor-screenshots")


@pytest.fixture
def serve(installation: Installation) -> Iterator[Callable[..., Server]]:
    """Starts the API and UI (and, unless asked not to, a controller) for one test."""
    stops: list[Callable[[], None]] = []

    def start(controller: bool = True) -> Server:
        with installation.sessions.begin() as session:
            add_user(session, "ada", PASSWORD, "admin")
            add_user(session, "vic", PASSWORD, "viewer")
        port = free_port()
        app = create_app(installation, auth_required=True, root_path=ROOT_PATH)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start within 20 s"
        stops.append(lambda: (setattr(server, "should_exit", True), thread.join(10)))
        if controller:
            stops.append(_start_controller(installation))
        return Server(f"http://127.0.0.1:{port}{ROOT_PATH}", installation)

    yield start
    for stop in reversed(stops):
        stop()


def _start_controller(installation: Installation) -> Callable[[], None]:
    stop = threading.Event()
    controller = installation.controller()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    return lambda: (stop.set(), thread.join(30))


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless. Missing: skipped here, a failure in CI."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not CHROMIUM.exists():
        message = "browser tests need Debian's chromium and the playwright package"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; scripts/test-services.sh installs chromium")
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Callable[[object, str], Path]:
    """Saves a full-page screenshot in the test's folder and a copy for a human to look at."""
    SCREENSHOTS_FOR_HUMANS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:  # type: ignore[no-untyped-def]
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shutil.copy(path, SCREENSHOTS_FOR_HUMANS / path.name)
        return path

    return take
