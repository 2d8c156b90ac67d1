"""The item page of a wildlife result shows the annotated video, the trajectory plot, the
contact sheet and the tracks; the video is served with Range support so browsers can seek."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from support import wildlife_video

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
