"""Feedback joins outcomes to predictions: online accuracy per version, click-through of
recommendations within an hour, experiments with per-arm Wilson intervals."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from serving_helpers import Serving, register_movies

from conveyor.models.registry import ModelRegistry
from conveyor.serving.experiments import wilson_interval
from conveyor.serving.quality import accuracy_counts, click_through_counts


def test_wilson_interval_matches_the_textbook() -> None:
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_counts_are_pure_functions_of_the_rows() -> None:
    rows = [(1, {"label": 1}, 1), (1, {"label": 0}, 1), (2, {"label": 1}, 1.0)]
    counts = accuracy_counts(rows)
    assert (counts[1].successes, counts[1].trials, counts[2].value) == (1, 2, 1.0)
    noon = datetime(2026, 11, 25, 12)
    responses = [
        ("v1", "ann", noon, {"movieIds": "10 20 30"}),
        ("v1", "bob", noon, {"movieIds": "10 20 30"}),
        ("v2", "cid", noon, {"movieIds": "40 50"}),
        ("v2", "dan", noon, {"movieIds": "40 50"}),
    ]
    events = [
        ("ann", noon + timedelta(minutes=30), 20),  # watched a recommended movie in time
        ("bob", noon + timedelta(minutes=90), 10),  # too late
        ("cid", noon - timedelta(minutes=5), 40),  # before the recommendation
        ("dan", noon + timedelta(minutes=1), 99),  # not recommended
    ]
    ctr = click_through_counts(responses, events)
    assert (ctr["v1"].successes, ctr["v1"].trials) == (1, 2)
    assert (ctr["v2"].successes, ctr["v2"].trials) == (0, 2)


def test_label_feedback_updates_online_accuracy(serving, heart_record) -> None:
    answer = serving.predict([heart_record] * 4).json()
    predicted = answer["predictions"][0]["label"]
    ids = [p["id"] for p in answer["predictions"]]
    labels = [predicted, predicted, predicted, 1 - predicted]
    for prediction_id, label in zip(ids, labels, strict=True):
        response = serving.client.post(
            f"/api/v1/predictions/{prediction_id}/feedback", json={"label": label}
        )
        assert response.status_code == 201, response.text
    quality = serving.client.get("/api/v1/endpoints/heart/quality").json()
    assert quality["metric"] == "accuracy"
    [v1] = quality["versions"]
    assert (v1["version"], v1["successes"], v1["trials"], v1["value"]) == (1, 3, 4, 0.75)
    assert v1["low"] < 0.75 < v1["high"]
    # a corrected label replaces the earlier one
    serving.client.post(f"/api/v1/predictions/{ids[3]}/feedback", json={"label": predicted})
    [v1] = serving.client.get("/api/v1/endpoints/heart/quality").json()["versions"]
    assert (v1["successes"], v1["trials"]) == (4, 4)
    serving.service.export_quality()
    metrics = serving.installation.metrics.exposition().decode()
    assert 'conveyor_serving_online_quality{endpoint="heart",model_version="1"} 1.0' in metrics
    unknown = serving.client.post(f"/api/v1/predictions/{'0' * 32}/feedback", json={"label": 1})
    assert unknown.status_code == 404
    both = serving.client.post(
        f"/api/v1/predictions/{ids[0]}/feedback", json={"label": 1, "event": "watch"}
    )
    assert both.status_code == 422


def test_experiment_results_per_arm(serving, heart_record) -> None:
    split = {
        "model": "heart",
        "arms": [
            {"name": "control", "target": "champion", "weight": 1},
            {"name": "treatment", "target": "challenger", "weight": 1},
        ],
    }
    assert serving.client.put("/api/v1/endpoints/heart/routing", json=split).status_code == 200
    serving.service.reloader.refresh()
    created = serving.client.post(
        "/api/v1/experiments", json={"endpoint": "heart", "name": "gb vs lr", "metric": "accuracy"}
    )
    assert created.status_code == 201, created.text
    experiment_id = created.json()["id"]
    truth = {"control": 0, "treatment": 0}
    for user in range(30):
        answer = serving.predict(heart_record, headers={"X-Request-Key": f"u{user}"}).json()
        [prediction] = answer["predictions"]
        right = user % 3 != 0 if answer["arm"] == "control" else user % 2 == 0
        truth[answer["arm"]] += right
        label = prediction["label"] if right else 1 - prediction["label"]
        serving.client.post(
            f"/api/v1/predictions/{prediction['id']}/feedback", json={"label": label}
        )
    results = serving.client.get(f"/api/v1/experiments/{experiment_id}").json()["results"]
    assert {r["arm"] for r in results} == {"control", "treatment"}
    for result in results:
        assert result["successes"] == truth[result["arm"]]
        low, high = wilson_interval(result["successes"], result["trials"])
        assert (result["low"], result["high"]) == pytest.approx((low, high))
    ended = serving.client.post(f"/api/v1/experiments/{experiment_id}/end").json()
    assert ended["ends_at"] is not None
    listed = serving.client.get("/api/v1/experiments", params={"endpoint": "heart"}).json()
    assert [e["id"] for e in listed["experiments"]] == [experiment_id]
    bad = serving.client.post(
        "/api/v1/experiments", json={"endpoint": "heart", "name": "x", "metric": "vibes"}
    )
    assert bad.status_code == 422 and "metric" in bad.text


@pytest.fixture
def movies_home(tmp_path: Path) -> Path:
    register_movies(ModelRegistry.for_home(tmp_path / "home", None), tmp_path / "work")
    return tmp_path / "home"


@pytest.mark.slow
def test_recommendations_and_click_through(movies_home, sqlite_url) -> None:
    serving = Serving(movies_home, sqlite_url)
    try:
        serving.service.wait_ready()
        shown = {}
        for user in (1, 2, 3, 4):
            response = serving.client.get(f"/recommend/{user}")
            assert response.status_code == 200 and response.headers["content-type"].startswith(
                "text/plain"
            )
            movies = [int(m) for m in response.text.split(",")]
            assert len(movies) == 20 and len(set(movies)) == 20
            shown[user] = movies
        under_api = serving.client.get("/api/v1/endpoints/movies/recommend/4")
        assert under_api.text == ",".join(map(str, shown[4]))
        api = serving.client.get("/api/v1/endpoints/movies/predict")  # only POST
        assert api.status_code == 405
        posted = serving.predict({"userId": 1}, endpoint="movies").json()
        assert posted["predictions"][0]["movieIds"].split() == [str(m) for m in shown[1]]
        not_shown = next(m for m in range(1, 1000) if m not in shown[2])
        events = [
            {"user_id": 1, "movie_id": shown[1][5]},
            {"user_id": 2, "movie_id": not_shown, "kind": "click"},
        ]
        response = serving.client.post("/api/v1/endpoints/movies/events", json={"events": events})
        assert response.status_code == 202 and response.json() == {"recorded": 2}
        quality = serving.client.get("/api/v1/endpoints/movies/quality").json()
        assert quality["metric"] == "ctr"
        [v1] = quality["versions"]
        # user 1 had two recommendations (GET and POST), both followed by the watch
        assert (v1["successes"], v1["trials"]) == (2, 6)
        third = serving.predict({"userId": 3}, endpoint="movies").json()["predictions"][0]
        watched = int(third["movieIds"].split()[0])
        feedback = serving.client.post(
            f"/api/v1/predictions/{third['id']}/feedback", json={"event": "watch", "value": watched}
        )
        assert feedback.status_code == 201, feedback.text
        [v1] = serving.client.get("/api/v1/endpoints/movies/quality").json()["versions"]
        # both of user 3's recommendations (GET and POST) held the watched movie
        assert (v1["successes"], v1["trials"]) == (4, 7)
    finally:
        serving.close()
