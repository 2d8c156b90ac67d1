"""The web UI works under its Content Security Policy (issue 13, finding 8): every page loads
without a single CSP violation in headless Chromium, and an inline script (what an injected
page would carry) is blocked. SQLite only."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.browser import log_in

PAGES = ["/", "/items", "/upload", "/results", "/models", "/endpoints"]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'conveyor.db'}"


def _watch_violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return violations


def test_every_page_loads_without_a_csp_violation(serve, browser) -> None:  # type: ignore[no-untyped-def]
    server = serve(controller=False)
    context = browser.new_context()
    page = context.new_page()
    violations = _watch_violations(page)
    try:
        log_in(page, server, "/")
        for path in PAGES:
            page.goto(server.url + path)
            page.wait_for_load_state("networkidle")
        assert violations == [], violations
        page.evaluate(
            """() => { const s = document.createElement("script");
                       s.textContent = "window.injected = true"; document.body.append(s); }"""
        )
        assert page.evaluate("window.injected === true") is False
        assert any("script-src" in v for v in violations), violations
    finally:
        context.close()
