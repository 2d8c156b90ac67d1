"""Schemathesis against /api/openapi.json, in-process: nothing the schema allows, and nothing
that breaks it, may make the server answer 5xx or stray from the documented responses."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from conveyor.api.app import create_app
from conveyor.api.routes.endpoints import serving_of
from conveyor.auth.service import add_user, create_token
from conveyor.installation import Installation
from conveyor.models.service import ModelOps
from conveyor.settings import load_settings

EXAMPLES_PER_OPERATION = 50
REAL_PIPELINES = ["noop", "csv_profile", "text_stats"]
CHECKS = [not_a_server_error, response_schema_conformance]


def error_body_check(ctx, response, case) -> None:  # type: ignore[no-untyped-def]
    """Every error, documented or not, carries {"error": {"code", "message", "details"}}."""
    if response.status_code < 400:
        return
    error = response.json().get("error")
    assert isinstance(error, dict), f"{response.status_code} without an error body"
    assert set(error) == {"code", "message", "details"}, error


def _openapi_document() -> dict[str, Any]:
    """The schema as served; it depends on the code only, so any installation will do."""
    with tempfile.TemporaryDirectory(prefix="conveyor-openapi-") as home:
        installation = Installation(load_settings(Path(home), database_url="sqlite://"))
        try:
            return create_app(installation, auth_required=True).openapi()
        finally:
            installation.close()


schema = schemathesis.openapi.from_dict(_openapi_document())


def _name_a_real_pipeline_sometimes(case) -> None:  # type: ignore[no-untyped-def]
    """Generated names never match a pipeline, which would leave accepting untested."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("pipeline"), str):
        choices = [*REAL_PIPELINES, body["pipeline"]]
        body["pipeline"] = choices[len(repr(body)) % len(choices)]


@pytest.fixture(scope="module")
def served(module_installation) -> tuple[FastAPI, str]:  # type: ignore[no-untyped-def]
    """One store, tracking store and serving per database for all operations: building them
    cost more than the 50 requests of a case, and later operations then meet the rows earlier
    ones left, so list responses are checked with content (a fresh store had none)."""
    installation = module_installation
    with installation.sessions.begin() as session:
        add_user(session, "ada", "correct horse battery", "admin")
        token = create_token(session, "fuzz", "operator")
    app = create_app(installation, auth_required=True)
    # MLflow migrates a fresh tracking store on first use and serving loads its endpoints on
    # first use (20 s and more on a loaded machine): done here, so that one-time work does not
    # eat the fuzzer's 10 s read timeout on whichever request comes first.
    app.state.model_ops = ModelOps(installation)
    serving_of(app)
    return app, token


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_makes_a_server_error(case, served) -> None:  # type: ignore[no-untyped-def]
    app, token = served
    _name_a_real_pipeline_sometimes(case)
    case.call_and_validate(
        app=app, headers={"Authorization": f"Bearer {token}"}, checks=[*CHECKS, error_body_check]
    )


@pytest.mark.slow
def test_the_fuzzers_token_survived(served) -> None:  # type: ignore[no-untyped-def]
    """Run after the operations (pytest keeps file order): had a generated request revoked the
    shared token, every later operation would have seen only 401s and proven nothing."""
    app, token = served
    with TestClient(app) as client:
        answer = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
