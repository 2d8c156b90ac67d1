"""Experiment results per segment: arms compared within age bands and within a categorical
field, with Wilson intervals, matching what the test sent and labelled (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections import defaultdict

from conveyor.serving.segments import Segmentation, band_label, segment_of

ROUTING = {
    "model": "heart",
    "arms": [
        {"name": "stable", "target": "champion", "weight": 50},
        {"name": "canary", "target": "challenger", "weight": 50},
    ],
}


def test_segments_of_a_record() -> None:
    bands = Segmentation("age", (40, 50, 60))
    assert [band_label(v, bands.bins) for v in (39, 40, 55, 60, 80)] == [
        "<40", "40-50", "50-60", ">=60", ">=60",
    ]  # fmt: skip
    assert segment_of({"age": 61.0}, bands) == ">=60"
    assert segment_of([{"age": 45}], bands) == "40-50"
    assert segment_of({"sex": 1}, bands) == "missing"
    assert segment_of({"sex": 1.0}, Segmentation("sex")) == "1.0"


def test_arm_results_per_age_band_and_per_sex(serving, heart_record) -> None:
    client = serving.client
    assert client.put("/api/v1/endpoints/heart/routing", json=ROUTING).status_code == 200
    serving.service.reloader.refresh()
    experiment = client.post(
        "/api/v1/experiments", json={"endpoint": "heart", "name": "bands", "metric": "accuracy"}
    ).json()
    expected: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    by_sex: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for n in range(48):
        record = heart_record | {"age": 35.0 + n, "sex": float(n % 2)}
        answer = serving.predict(record, params={"key": f"user-{n}"}).json()
        [prediction] = answer["predictions"]
        label = int(n % 3 == 0)
        posted = client.post(
            f"/api/v1/predictions/{prediction['id']}/feedback", json={"label": label}
        )
        assert posted.status_code == 201, posted.text
        band = band_label(record["age"], (40, 50, 60))
        hit = int(prediction["label"] == label)
        for counts, segment in ((expected, band), (by_sex, str(record["sex"]))):
            counts[(segment, answer["arm"])][0] += hit
            counts[(segment, answer["arm"])][1] += 1

    url = f"/api/v1/experiments/{experiment['id']}/segments"
    for params, wanted in (
        ({"field": "age", "bins": "40,50,60"}, expected),
        ({"field": "sex"}, by_sex),
    ):
        answer = client.get(url, params=params)
        assert answer.status_code == 200, answer.text
        found = {
            (segment["segment"], arm["arm"]): [arm["successes"], arm["trials"]]
            for segment in answer.json()["segments"]
            for arm in segment["arms"]
        }
        assert found == dict(wanted)
        for segment in answer.json()["segments"]:
            for arm in segment["arms"]:
                assert 0 <= arm["low"] <= arm["value"] <= arm["high"] <= 1
    assert [
        s["segment"]
        for s in client.get(url, params={"field": "age", "bins": "40,50,60"}).json()["segments"]
    ] == ["40-50", "50-60", "<40", ">=60"]
    assert client.get(url, params={"field": "age", "bins": "60,40"}).status_code == 422
    assert client.get(url, params={"field": "a b"}).status_code == 422
    assert (
        client.get("/api/v1/experiments/999/segments", params={"field": "age"}).status_code == 404
    )
