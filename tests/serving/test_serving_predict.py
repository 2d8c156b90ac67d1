"""POST /api/v1/endpoints/heart/predict with a real registered model: every accepted body
format, 422 with the field named, and the prediction log with version and dataset digest."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from conveyor.serving.tables import Prediction


def formats(record: dict[str, Any]) -> dict[str, Any]:
    columns = list(record)
    reordered = dict(reversed(list(record.items())))
    return {
        "flat object": record,
        "keys in another order": reordered,
        "list of objects": [record, reordered],
        "dataframe_records": {"dataframe_records": [record]},
        "dataframe_split": {
            "dataframe_split": {"columns": columns, "data": [list(record.values())]}
        },
        "instances": {"instances": [record]},
        "inputs as columns": {"inputs": {name: [value] for name, value in record.items()}},
        "with MLflow params": {"dataframe_records": [record], "params": {}},
    }


def test_every_accepted_format_gives_the_same_prediction(shared_serving, heart_record) -> None:
    serving = shared_serving
    answers = {}
    for name, body in formats(heart_record).items():
        response = serving.predict(body)
        assert response.status_code == 200, (name, response.text)
        answers[name] = response.json()
    expected = answers["flat object"]["predictions"][0]
    for name, answer in answers.items():
        assert answer["model"] == "heart" and answer["version"] == 1, name
        assert answer["arm"] == "champion"
        for prediction in answer["predictions"]:
            assert (prediction["label"], prediction["probability"]) == (
                expected["label"],
                expected["probability"],
            ), name
            assert len(prediction["id"]) == 32
    assert len(answers["list of objects"]["predictions"]) == 2


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (lambda r: r.pop("chol"), "chol", "missing"),
        (lambda r: r.update(colour="red"), "colour", "not an input"),
        (lambda r: r.update(age="sixty"), "age", "not a number"),
        (lambda r: r.update(sex=True), "sex", "not a number"),
        (lambda r: r.update(trestbps=None), "trestbps", "null"),
    ],
)
def test_bad_records_are_refused_with_the_field_named(
    shared_serving, heart_record, change, field, problem
) -> None:
    serving = shared_serving
    good = dict(heart_record)
    change(heart_record)
    response = serving.predict([good, heart_record])
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert f"field {field!r}" in error["message"] and "record 1" in error["message"]
    assert {"record": 1, "field": field} == {k: error["details"][0][k] for k in ("record", "field")}
    assert problem in error["details"][0]["problem"]


def test_missing_allowed_by_the_training_schema_may_be_null(shared_serving, heart_record) -> None:
    serving = shared_serving
    heart_record.update(ca=None, thal=None)  # heart's schema allows them missing (NaN)
    assert serving.predict(heart_record).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        (b"{not json", 422, "not JSON"),
        (b"42", 422, "send a JSON object"),
        (b"[]", 422, "no record"),
        (b'{"instances": [1, 2]}', 422, "record 0 of instances is not an object"),
        (b'{"dataframe_split": {"columns": ["age"], "data": [[1, 2]]}}', 422, "row 0"),
        (b'{"instances": [], "inputs": []}', 422, "only one of"),
        (b"[" + b"{}," * 1200 + b"{}]", 413, "at most 1000"),
    ],
)
def test_malformed_bodies_say_what_to_send(shared_serving, body, status, text) -> None:
    serving = shared_serving
    response = serving.client.post("/api/v1/endpoints/heart/predict", content=body)
    assert response.status_code == status, response.text
    assert text in response.json()["error"]["message"]


def test_unknown_and_unserved_endpoints(shared_serving, heart_record) -> None:
    serving = shared_serving
    assert serving.predict(heart_record, endpoint="nope").status_code == 404
    response = serving.predict({"userId": 1}, endpoint="movies")  # no movies version here
    assert response.status_code == 409 and "conveyor train movies" in response.text


def test_each_prediction_row_names_version_and_dataset_digest(serving, heart_record) -> None:
    answer = serving.predict([heart_record] * 3, headers={"X-Request-Key": "user-7"}).json()
    refused = serving.predict({"age": 1})
    assert refused.status_code == 422
    serving.service.log.flush()
    tracking = serving.service.tracking
    digest = tracking.version("heart", 1).params["dataset_sha256"]
    with serving.installation.sessions() as session:
        rows = session.scalars(select(Prediction).order_by(Prediction.ts)).all()
    by_id = {row.id: row for row in rows}
    for prediction in answer["predictions"]:
        row = by_id[prediction["id"]]
        assert (row.endpoint, row.model, row.version, row.arm) == ("heart", "heart", 1, "champion")
        assert row.dataset_sha256 == digest and len(digest) == 64
        assert row.features == heart_record and row.output["label"] == prediction["label"]
        assert row.request_key == "user-7" and row.latency_ms > 0 and row.error is None
    [error_row] = [row for row in rows if row.error]
    assert "field 'sex'" in error_row.error and error_row.version == 1


def test_features_are_captured_as_unlabelled_rows_when_asked(serving, heart_record) -> None:
    from conveyor.serving.tables import CapturedRow

    config = {"model": "heart", "arms": [{"name": "champion", "target": "champion"}]}
    serving.client.put("/api/v1/endpoints/heart/routing", json=config)
    serving.service.reloader.refresh()
    serving.predict(heart_record)  # not captured: the setting is off
    serving.client.put("/api/v1/endpoints/heart/routing", json=config | {"capture_features": True})
    serving.service.reloader.refresh()
    answer = serving.predict([heart_record, heart_record | {"age": 40}]).json()
    serving.service.log.flush()
    with serving.installation.sessions() as session:
        rows = session.scalars(select(CapturedRow).order_by(CapturedRow.id)).all()
    assert [r.prediction_id for r in rows] == [p["id"] for p in answer["predictions"]]
    assert rows[1].features["age"] == 40 and rows[0].model == "heart"


def test_request_keys_the_log_cannot_store_are_refused(shared_serving, heart_record) -> None:
    for key in ("a" * 201, "nul\x00key"):
        response = shared_serving.predict(heart_record, params={"key": key})
        assert response.status_code == 422 and "request key" in response.text
    assert shared_serving.predict(heart_record, params={"key": "k" * 200}).status_code == 200
