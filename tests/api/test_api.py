"""Every API route, including its error cases, against a real store and Ray."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"


def _upload(client, name: str, data: bytes, pipeline: str = "csv_profile", **extra):  # type: ignore[no-untyped-def]
    files = {"file": (name, data, "application/octet-stream")}
    return client.post("/api/v1/items", files=files, data={"pipeline": pipeline, **extra})


def test_unauthenticated_requests_get_401_with_an_error_body(api) -> None:
    anonymous = TestClient(api.app)
    response = anonymous.get("/api/v1/items")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    bad = anonymous.get("/api/v1/items", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_viewer_cannot_submit(api) -> None:
    viewer = TestClient(api.app, headers={"Authorization": f"Bearer {api.viewer_token}"})
    assert viewer.get("/api/v1/items").status_code == 200
    response = viewer.post("/api/v1/items", json={"pipeline": "noop", "record": {"a": 1}})
    assert response.status_code == 403 and "operator role" in response.json()["error"]["message"]


def test_upload_duplicate_oversize_and_probe(api) -> None:
    table = b"a,b\n1,2\n3,4\n"
    first = _upload(api, "t.csv", table)
    assert first.status_code == 201, first.text
    again = _upload(api, "other name.csv", table)
    assert again.status_code == 200 and again.json()["duplicate"]
    assert again.json()["item_id"] == first.json()["item_id"]
    binary = _upload(api, "looks.csv", b"\x00\x01\x02binary")
    assert (
        binary.status_code == 422 and "not a UTF-8 text table" in binary.json()["error"]["message"]
    )
    api.installation.settings.max_upload_bytes = 1000
    big = _upload(api, "big.csv", b"x,y\n" + b"1,2\n" * 1000)
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"


def test_path_traversal_names_are_stored_safely(api) -> None:
    response = _upload(api, "../../../etc/evil;name.csv", b"a\n1\n")
    assert response.status_code == 201
    item = api.get(f"/api/v1/items/{response.json()['item_id']}").json()
    assert item["input"] == "../../../etc/evil;name.csv"
    assert item["artifacts"] == ["evil;name.csv"]


def test_records_list_filters_pagination_and_detail(api) -> None:
    for n in range(7):
        created = api.post("/api/v1/items", json={"pipeline": "noop", "record": {"n": n}})
        assert created.status_code == 201
    page = api.get("/api/v1/items", params={"limit": 5, "pipeline": "noop"}).json()
    assert len(page["items"]) == 5 and page["next_cursor"]
    rest = api.get("/api/v1/items", params={"limit": 5, "cursor": page["next_cursor"]}).json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    ids = {i["item_id"] for i in page["items"] + rest["items"]}
    assert len(ids) == 7
    assert api.get("/api/v1/items", params={"status": "failed"}).json()["items"] == []
    detail = api.get(f"/api/v1/items/{page['items'][0]['item_id']}").json()
    assert detail["dag"] == {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def test_bad_requests_are_422_and_unknown_ids_404(api) -> None:
    assert api.post("/api/v1/items", json={"record": {}}).status_code == 422
    wrong = api.post(
        "/api/v1/items", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert wrong.status_code == 422
    plain = api.post("/api/v1/items", content=b"x", headers={"content-type": "text/plain"})
    assert plain.status_code == 415
    assert api.get("/api/v1/items/ffffffffffff").status_code == 404
    assert api.post("/api/v1/items/ffffffffffff/cancel").status_code == 404
    assert api.get("/api/v1/items", params={"cursor": "garbage!"}).status_code == 422
    assert api.get("/api/v1/results", params={"pipeline": "nope"}).status_code == 404
    missing = api.post("/api/v1/items", json={"pipeline": "nope", "record": 1})
    assert missing.status_code == 404 and "no pipeline named" in missing.json()["error"]["message"]


def test_processing_results_and_exports(api) -> None:
    for n in range(3):
        api.post("/api/v1/items", json={"pipeline": "noop", "record": {"n": n, "tags": [n]}})
    failing = api.post("/api/v1/items", json={"pipeline": "noop", "record": {"fail": "permanent"}})
    api.installation.controller().run_until_idle(timeout=120)
    item_id = failing.json()["item_id"]
    detail = api.get(f"/api/v1/items/{item_id}").json()
    assert detail["status"] == "failed"
    assert any("permanent failure" in (s["error"] or "") for s in detail["steps"])
    assert api.get(f"/api/v1/items/{item_id}/result").status_code == 404
    assert api.post(f"/api/v1/items/{item_id}/retry").json()["status"] == "queued"
    assert api.post(f"/api/v1/items/{item_id}/cancel").json()["status"] == "cancelled"
    assert api.post(f"/api/v1/items/{item_id}/cancel").status_code == 409

    exported = api.get("/api/v1/results", params={"pipeline": "noop", "status": "succeeded"})
    rows = exported.json()
    assert len(rows) == 3 and {r["result"]["n"] for r in rows} == {0, 1, 2}
    csv_rows = list(
        csv.DictReader(
            io.StringIO(
                api.get("/api/v1/results", params={"pipeline": "noop", "format": "csv"}).text
            )
        )
    )
    assert len(csv_rows) == 4 and "result.n" in csv_rows[0]
    parquet = api.get("/api/v1/results", params={"pipeline": "noop", "format": "parquet"})
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == 4
    ok_id = rows[0]["item_id"]
    result = api.get(f"/api/v1/items/{ok_id}/result")
    assert result.status_code == 200 and json.loads(result.text)["result"]["n"] in {0, 1, 2}


def test_inbox_stats_workers_health_and_metrics(api) -> None:
    api.installation.storage.put_in_inbox("w.csv", b"a\n1\n", "csv_profile")
    assert [f["name"] for f in api.get("/api/v1/inbox").json()["files"]] == ["csv_profile/w.csv"]
    assert len(api.post("/api/v1/inbox/scan").json()["queued"]) == 1
    stats = api.get("/api/v1/stats").json()
    assert stats["counts"]["csv_profile"]["queued"] == 1 and stats["queue"] == 1
    assert len(stats["throughput_per_minute"]) == 60
    assert api.get("/api/v1/workers").json()["connected"] is True
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").status_code == 200
    metrics = api.get("/metrics").text
    assert 'conveyor_items{pipeline="csv_profile",status="queued"} 1.0' in metrics
    assert "conveyor_http_request_duration_seconds_bucket" in metrics


def test_login_sessions_need_csrf_and_are_rate_limited(api) -> None:
    browser = TestClient(api.app)
    wrong = browser.post("/api/v1/auth/login", json={"name": "ada", "password": "wrong"})
    assert wrong.status_code == 401
    me = browser.post("/api/v1/auth/login", json={"name": "ada", "password": PASSWORD})
    assert me.status_code == 200 and me.json()["role"] == "admin"
    cookie = browser.cookies.get("conveyor_session")
    assert cookie and "httponly" in me.headers["set-cookie"].lower()
    record = {"pipeline": "noop", "record": {"x": 1}}
    assert browser.post("/api/v1/items", json=record).status_code == 403
    csrf = {"X-CSRF-Token": me.json()["csrf_token"]}
    assert browser.post("/api/v1/items", json=record, headers=csrf).status_code == 201
    assert browser.post("/api/v1/auth/logout").status_code == 204
    attacker = TestClient(api.app)
    codes = [
        attacker.post("/api/v1/auth/login", json={"name": "vic", "password": "guess"}).status_code
        for _ in range(7)
    ]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
