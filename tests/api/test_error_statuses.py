"""Errors answer the same wherever they are raised: each ConveyorError class states its status,
code and Retry-After, and the API's handler and the predict fast path both send exactly that."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from conveyor.api.app import create_app  # noqa: F401  (imports every route's error classes)
from conveyor.api.errors import ApiError, install_error_handlers
from conveyor.auth.hashing import HashingBusyError
from conveyor.errors import ConveyorError
from conveyor.firstuse import InitialisationTimeoutError
from conveyor.models.promotion import NoRollbackTargetError
from conveyor.models.registry import ModelNotFoundError
from conveyor.serving.fastpath import PredictFastPath
from conveyor.serving.inputs import InvalidInputError

DETAILS = [{"record": 0, "field": "age", "problem": "missing"}]
RAISED: dict[str, ConveyorError] = {
    "starting": InitialisationTimeoutError("gave up after 600 s waiting for another process"),
    "busy": HashingBusyError("too many password checks at once; try again"),
    "model": ModelNotFoundError("no registered model named 'x'"),
    "rollback": NoRollbackTargetError("no earlier champion to roll back to"),
    "input": InvalidInputError("record 0 lacks age", DETAILS),
    "forbidden": ApiError(403, "forbidden", "this needs the admin role"),
}
EXPECTED = {
    "starting": (503, "unavailable", "5"),
    "busy": (503, "busy", "1"),
    "model": (404, "not_found", None),
    "rollback": (409, "invalid_state", None),
    "input": (422, "invalid_input", None),
    "forbidden": (403, "forbidden", None),
}


def _raising_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise/{name}")
    def raise_error(name: str) -> None:
        raise RAISED[name]

    return app


async def _not_reached(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the fast path answered, the app is not called")


async def _handler(name: str, body: bytes, key: str | None, authorization: str | None) -> bytes:
    if name == "ok":
        return b'{"predictions": []}'
    raise RAISED[name]


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[TestClient, TestClient]]:
    predict = TestClient(PredictFastPath(_not_reached, _handler))  # no lifespan to run
    with TestClient(_raising_app()) as api:
        yield api, predict


@pytest.mark.parametrize("name", sorted(RAISED))
def test_the_handler_and_the_fast_path_send_the_classes_answer(clients, name: str) -> None:  # type: ignore[no-untyped-def]
    api, predict = clients
    status, code, retry_after = EXPECTED[name]
    answers = (
        api.get(f"/raise/{name}"),
        predict.post(f"/api/v1/endpoints/{name}/predict", content=b"{}"),
    )
    for answer in answers:
        assert answer.status_code == status
        assert answer.headers.get("retry-after") == retry_after
        assert answer.json() == {
            "error": {
                "code": code,
                "message": str(RAISED[name]),
                "details": DETAILS if name == "input" else None,
            }
        }


def test_the_fast_path_answers_predictions_with_200(clients) -> None:  # type: ignore[no-untyped-def]
    answer = clients[1].post("/api/v1/endpoints/ok/predict", content=b"{}")
    assert answer.status_code == 200 and answer.json() == {"predictions": []}


def _subclasses(cls: type[ConveyorError]) -> Iterator[type[ConveyorError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_class_states_an_error_status() -> None:
    classes = list(_subclasses(ConveyorError))
    assert len(classes) > 25
    for cls in classes:
        assert 400 <= cls.http_status < 600, cls
        assert isinstance(cls.code, str) and cls.code, cls
