"""The endpoint pages: routing, per-version charts, quality and experiments with intervals."""

from __future__ import annotations

import json
import re


def test_endpoint_pages_show_routing_charts_quality_and_experiments(
    sqlite_serving, heart_record
) -> None:
    serving = sqlite_serving
    answer = serving.predict([heart_record] * 2).json()
    for prediction in answer["predictions"]:
        url = f"/api/v1/predictions/{prediction['id']}/feedback"
        serving.client.post(url, json={"label": prediction["label"]})
    serving.client.post(
        "/api/v1/experiments",
        json={"endpoint": "heart", "name": "first look", "metric": "accuracy"},
    )
    listing = serving.client.get("/endpoints")
    assert listing.status_code == 200
    assert 'href="/endpoints/heart"' in listing.text and 'href="/endpoints/movies"' in listing.text
    page = serving.client.get("/endpoints/heart")
    assert page.status_code == 200
    chart = json.loads(
        re.search(r'id="endpoint-chart-data">(.*?)</script>', page.text, re.S).group(1)
    )
    assert chart["versions"]["1"]["records"] == [2] and len(chart["times"]) == 1
    quality = json.loads(
        re.search(r'id="quality-chart-data">(.*?)</script>', page.text, re.S).group(1)
    )
    assert quality["versions"]["1"]["quality"] == [1.0] and len(quality["times"]) == 1
    assert "first look" in page.text and "2 / 2" in page.text  # experiment arm and quality
    assert 'id="routing-config"' in page.text  # no logins here: an admin may edit
    assert serving.client.get("/endpoints/nope").status_code == 404
