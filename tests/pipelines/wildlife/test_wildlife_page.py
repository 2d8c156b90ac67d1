"""The item page of a wildlife result shows the annotated video, the trajectory plot, the
contact sheet and the tracks; the video is served with Range support, and Chromium plays it
and seeks in it."""

from __future__ import annotations

import os
import re
import threading
import time

import pytest
import uvicorn
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from support import wildlife_video
from support.browser import CHROMIUM, CHROMIUM_ARGS
from support.up import free_port

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_item_page_shows_video_plot_sheet_and_tracks(installation, tmp_path) -> None:
    clip = wildlife_video.crossing_clip(tmp_path / "cat.mp4", [((0.15, 0.5), (0.85, 0.5))])
    client = TestClient(create_app(installation, auth_required=False))
    with clip.path.open("rb") as stream:
        response = client.post(
            "/api/v1/items",
            files={"file": ("cat.mp4", stream, "video/mp4")},
            data={"pipeline": "wildlife"},
        )
    assert response.status_code == 201, response.text
    item_id = response.json()["item_id"]
    refused = client.post(
        "/api/v1/items",
        files={"file": ("broken.mp4", b"\0" * 4096, "video/mp4")},
        data={"pipeline": "wildlife"},
    )
    assert refused.status_code in (400, 422), refused.text
    assert "not a video or image" in refused.text

    installation.controller().run_until_idle(timeout=180)
    page = client.get(f"/items/{item_id}").text
    artifacts = f"/api/v1/items/{item_id}/artifacts/"
    assert re.search(rf'<video[^>]+src="{artifacts}annotated.mp4"', page)
    assert f'src="{artifacts}trajectories.png"' in page
    assert f'src="{artifacts}contact_sheet.png"' in page
    assert "wildlife-tracks" in page and "#1" in page and "mammal" in page

    whole = client.get(f"{artifacts}annotated.mp4")
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    part = client.get(f"{artifacts}annotated.mp4", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == whole.content[:100]
    assert client.get(f"{artifacts}contact_sheet.png").content.startswith(b"\x89PNG")
    _check_video_plays_in_chromium(installation, f"/items/{item_id}", clip.duration_s)


def _check_video_plays_in_chromium(installation, page_path: str, duration_s: float) -> None:  # type: ignore[no-untyped-def]
    """Chromium loads the annotated H.264 video, knows its duration and seeks in it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not CHROMIUM.exists():
        message = "the video check needs Debian's chromium and the playwright package"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; scripts/test-services.sh installs chromium")
        pytest.skip(message)
    port = free_port()
    app = create_app(installation, auth_required=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}{page_path}")
            video = page.locator("video[data-artifact=video]")
            video.wait_for()
            page.wait_for_function("document.querySelector('video').readyState >= 1")
            assert video.evaluate("v => v.duration") == pytest.approx(duration_s, abs=0.05)
            seeked = video.evaluate(
                """v => new Promise(done => {
                    v.addEventListener('seeked', () => done(v.currentTime), {once: true});
                    v.currentTime = 2.0;
                })"""
            )
            assert seeked == pytest.approx(2.0, abs=0.3)
            assert video.evaluate("v => v.error") is None
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
