"""Training items are made by the server, never sent through the generic item route: a forged
record with a traversal dataset path and made-up provenance is refused (issue 13, finding 5)."""

from __future__ import annotations

from sqlalchemy import func, select

from conveyor.store.models import Item

FORGED = {
    "model": "heart",
    "dataset": "datasets/../work/abc/heart.csv",
    "dataset_source": "the hospital's audited export",
    "dataset_sha256": "0" * 64,
    "params": {},
    "trigger": "schedule",
    "requested_by": "chief-medical-officer",
}


def test_records_for_a_training_pipeline_are_refused(api) -> None:  # type: ignore[no-untyped-def]
    admin_token = _admin_token(api)
    for headers in ({}, {"Authorization": f"Bearer {admin_token}"}):
        response = api.post(
            "/api/v1/items", json={"pipeline": "heart", "record": FORGED}, headers=headers
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "training_pipeline"
        assert "POST /api/v1/models/heart/train" in error["message"]
    with api.installation.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 0
    ordinary = api.post("/api/v1/items", json={"pipeline": "noop", "record": {"n": 1}})
    assert ordinary.status_code == 201


def _admin_token(api) -> str:  # type: ignore[no-untyped-def]
    from conveyor.auth.service import create_token

    with api.installation.sessions.begin() as session:
        return create_token(session, "root", "admin")
