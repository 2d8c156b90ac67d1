"""PUT /api/v1/endpoints/{name}/routing with logins: operators move traffic toward the
champion, admins make every other change (issue 13, finding 5), on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.auth.service import create_token

ROLES = ("viewer", "operator", "admin")
URL = "/api/v1/endpoints/{name}/routing"
CHAMPION = {"name": "champion", "target": "champion", "weight": 90}
ALL_TO_V2 = {"model": "heart", "arms": [{"name": "pinned", "target": 2, "weight": 1}]}
CANARY = {"model": "heart", "arms": [CHAMPION, {"name": "canary", "target": 2, "weight": 10}]}


@pytest.fixture
def clients(serving) -> dict[str, TestClient]:  # type: ignore[no-untyped-def]
    with serving.installation.sessions.begin() as session:
        tokens = {role: create_token(session, role, role) for role in ROLES}
    app = create_app(serving.installation, auth_required=True)
    app.state.serving = serving.service
    return {
        role: TestClient(app, headers={"Authorization": f"Bearer {token}"})
        for role, token in tokens.items()
    }


def _put(client: TestClient, config: dict[str, Any], name: str = "heart") -> Any:
    return client.put(URL.format(name=name), json=config)


def _refused(response: Any, reason: str) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert "needs the admin role; you are operator" in error["message"]
    assert reason in error["message"]


def test_operators_move_traffic_toward_the_champion_only(clients) -> None:  # type: ignore[no-untyped-def]
    """One test per database: loading the serving models is the expensive part."""
    operator = clients["operator"]
    _refused(_put(operator, ALL_TO_V2), "sends 100% of traffic to version 2 (was 0%)")
    _refused(_put(operator, CANARY), "sends 10% of traffic to version 2")
    capture = {"model": "heart", "arms": [CHAMPION], "capture_features": True}
    _refused(_put(operator, capture), "turns on feature capture")
    _refused(_put(operator, {"model": "heart", "arms": [CHAMPION]}, "shadow"), "creates")
    viewer = _put(clients["viewer"], {"model": "heart", "arms": [CHAMPION]})
    assert viewer.status_code == 403 and "needs the operator role" in viewer.text
    routing = clients["viewer"].get(URL.format(name="heart")).json()
    assert routing["revision"] == 1 and routing["routing"]["arms"][0]["target"] == "champion"
    assert clients["viewer"].get(URL.format(name="shadow")).status_code == 404
    # an admin starts a canary; an operator may shrink and stop it, not grow it again
    started = _put(clients["admin"], CANARY)
    assert started.status_code == 200 and started.json()["updated_by"] == "token:admin"
    smaller = {**CANARY, "arms": [CHAMPION, {"name": "canary", "target": 2, "weight": 2}]}
    assert _put(clients["operator"], smaller).status_code == 200
    _refused(_put(clients["operator"], CANARY), "(was 2%)")
    back = _put(clients["operator"], {"model": "heart", "arms": [CHAMPION]})
    assert back.status_code == 200 and back.json()["revision"] == 4
    assert _put(clients["admin"], ALL_TO_V2).status_code == 200
