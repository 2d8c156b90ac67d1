"""Serving through a store outage: loaded models keep answering (a token verified before the
outage still stands), the prediction log goes to the spool on local disk and is written back
once the store returns, every answered prediction exactly once. The cluster is the test's own
(the shared one is never stopped)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conveyor.api.app import create_app
from conveyor.api.routes.endpoints import serving_of
from conveyor.auth.service import create_token
from conveyor.installation import Installation
from conveyor.serving.predlog import PredictionLog
from conveyor.serving.spool import PredictionSpool
from conveyor.serving.tables import CapturedRow, Prediction
from conveyor.serving.tokens import TokenCache
from conveyor.settings import load_settings
from conveyor.store.database import connect, migrate, session_factory
from support.polling import wait_for
from support.prediction_rows import captured_row, prediction_row
from support.throwaway_postgres import ThrowawayPostgres, new_database, throwaway_postgres

URL = "/api/v1/endpoints/heart/predict"


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayPostgres]:
    with throwaway_postgres() as started:
        yield started


def _logged_ids(installation: Installation) -> list[str]:
    with installation.sessions() as session:
        return list(session.scalars(select(Prediction.id)))


def _predict(client: TestClient, record: dict[str, Any], times: int) -> list[str]:
    ids = []
    for _ in range(times):
        answer = client.post(URL, json=record)
        assert answer.status_code == 200, answer.text
        ids += [p["id"] for p in answer.json()["predictions"]]
    return ids


def test_serving_answers_through_a_store_outage_and_logs_every_prediction_once(
    cluster: ThrowawayPostgres, model_home: Path, heart_record: dict[str, Any]
) -> None:
    installation = Installation(load_settings(model_home, database_url=new_database(cluster)))
    with installation.sessions.begin() as session:
        token = create_token(session, "app", "viewer")
    app = create_app(installation, auth_required=True)
    service = serving_of(app)
    # No cache hits: every request verifies its token, as once the cached few seconds end.
    app.state.serving_tokens = TokenCache(ttl_seconds=0.0)
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    answered = _predict(client, heart_record, 10)
    service.log.flush()
    spool = service.log.spool
    assert spool is not None
    cluster.stop()
    try:
        answered += _predict(client, heart_record, 25)
        wait_for(lambda: spool.rows() == 25, 60, "the outage's predictions in the spool")
        unknown = client.post(URL, json=heart_record, headers={"Authorization": "Bearer x"})
        assert unknown.status_code == 503  # a token never verified cannot be checked now
    finally:
        cluster.start()
    answered += _predict(client, heart_record, 5)
    wait_for(lambda: not spool.files(), 60, "the spool to be written back")
    wait_for(lambda: len(_logged_ids(installation)) >= len(answered), 60, "the whole log")
    logged = _logged_ids(installation)
    assert sorted(logged) == sorted(answered)  # nothing lost, nothing twice
    service.close()
    installation.close()


def test_a_spooled_batch_replayed_twice_is_written_once(database_url: str, tmp_path: Path) -> None:
    engine = connect(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    spool = PredictionSpool(tmp_path / "spool")
    rows = [prediction_row(n) for n in range(3)]
    captured = [captured_row(row) for row in rows]
    assert spool.keep(rows, captured)
    [path] = spool.files()
    shutil.copy(path, path.with_name("0-copy-3.json"))  # as if two processes spooled it
    log = PredictionLog(sessions, spool=spool)
    assert log.replay() == 3
    assert spool.files() == []
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 3
        assert session.scalar(select(func.count()).select_from(CapturedRow)) == 3
    engine.dispose()
