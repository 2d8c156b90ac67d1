"""The API client every API test starts from: an admin and a viewer user, and operator and
viewer tokens, on a real store (SQLite and PostgreSQL) and Ray."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.auth.service import add_user, create_token

PASSWORD = "correct horse battery"


@pytest.fixture
def api(installation):  # type: ignore[no-untyped-def]
    """A client sending the operator token; `.viewer_token` and `.installation` ride along."""
    with installation.sessions.begin() as session:
        add_user(session, "ada", PASSWORD, "admin")
        add_user(session, "vic", PASSWORD, "viewer")
        operator_token = create_token(session, "ops", "operator")
        viewer_token = create_token(session, "look", "viewer")
    client = TestClient(create_app(installation, auth_required=True))
    client.headers["Authorization"] = f"Bearer {operator_token}"
    client.viewer_token = viewer_token  # type: ignore[attr-defined]
    client.installation = installation  # type: ignore[attr-defined]
    return client
