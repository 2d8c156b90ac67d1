"""In Chromium, the calls item page plays the call's listening copy, highlights the transcript
line under the playhead and seeks to a line when it is clicked. The page, the script and the
audio are served by Playwright's request routing (with Range answers, as the API gives), so no
server or pipeline run is needed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conveyor.pipelines.calls import audio, calls
from conveyor.web.assets import assets_url
from conveyor.web.templating import renderer_for, templates
from support.browser import CHROMIUM, CHROMIUM_ARGS

SITE = "http://conveyor.test"
PLAYER = Path(calls.hooks.static_assets or "") / "call_player.js"
ASSETS = assets_url("calls")
SEGMENTS = [
    {"start": 0.5, "end": 3.0, "speaker": "S1", "text": "Thank you for calling."},
    {"start": 3.5, "end": 7.0, "speaker": "S2", "text": "My line is down."},
    {"start": 7.5, "end": 11.0, "speaker": "S1", "text": "I will send a technician."},
]


def _page_html() -> str:
    result = {
        "duration_s": 12.0,
        "channels": 1,
        "speakers": [],
        "segments": SEGMENTS,
        "flag": {"poor_call": False, "reasons": []},
        "artifacts": {"audio": "call.m4a"},
    }
    body = templates.env.get_template(renderer_for(calls)).render(
        result=result, item={"item_id": "abc"}, root="", assets=ASSETS, version="test"
    )
    return f"<!doctype html><html><body>{body}</body></html>"


def _listening_copy() -> bytes:
    seconds = np.arange(12 * audio.RATE) / audio.RATE
    tone = 0.1 * np.sin(2 * np.pi * 220 * seconds).astype(np.float32)
    return audio.listening_copy(tone[None, :])


def test_the_line_under_the_playhead_is_highlighted_and_a_click_seeks() -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not CHROMIUM.exists():
        message = "the player check needs Debian's chromium and the playwright package"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; scripts/test-services.sh installs chromium")
        pytest.skip(message)
    files = {
        "/items/abc": ("text/html", _page_html().encode()),
        f"{ASSETS}/call_player.js": ("text/javascript", PLAYER.read_bytes()),
        "/api/v1/items/abc/artifacts/call.m4a": ("audio/mp4", _listening_copy()),
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"],
        )
        page = browser.new_page()
        page.route(f"{SITE}/**", lambda route: _serve(route, files))
        page.goto(f"{SITE}/items/abc")
        page.wait_for_function("document.querySelector('audio').readyState >= 1")
        player = page.locator("audio[data-call-audio]")
        assert player.evaluate("a => a.duration") == pytest.approx(12.0, abs=0.2)
        rows = page.locator(".transcript tr[data-start]")
        rows.nth(2).click()
        page.wait_for_function("document.querySelector('audio').currentTime >= 7.4")
        page.wait_for_function("document.querySelectorAll('.transcript tr.playing').length === 1")
        assert "technician" in page.locator(".transcript tr.playing").inner_text()
        player.evaluate("a => { a.pause(); a.currentTime = 4.0; }")
        page.wait_for_function(
            "document.querySelector('.transcript tr.playing')?.dataset.start === '3.5'"
        )
        browser.close()


def _serve(route, files: dict[str, tuple[str, bytes]]) -> None:  # type: ignore[no-untyped-def]
    path = route.request.url.removeprefix(SITE).split("?")[0]
    if path not in files:
        route.fulfill(status=404, body="")
        return
    content_type, body = files[path]
    wanted = route.request.headers.get("range", "")
    if not wanted.startswith("bytes="):  # the server answers Range requests (FileResponse)
        route.fulfill(status=200, content_type=content_type, body=body)
        return
    first, _, last = wanted.removeprefix("bytes=").partition("-")
    start, end = int(first or 0), int(last) if last else len(body) - 1
    route.fulfill(
        status=206,
        content_type=content_type,
        headers={"Content-Range": f"bytes {start}-{end}/{len(body)}", "Accept-Ranges": "bytes"},
        body=body[start : end + 1],
    )
