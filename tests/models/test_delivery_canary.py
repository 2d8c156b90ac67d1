"""The canary's routing on a real store (SQLite and PostgreSQL): started as a new revision with
the version pinned, refused on a busy endpoint, noticed when switched off, and given back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor.delivery.canary import CANARY_ARM, end_canary, start_canary, switched_off
from conveyor.errors import InvalidStateError
from conveyor.serving import endpoints
from conveyor.serving.routing import parse_config


@pytest.fixture
def sessions(tmp_path: Path, database_url: str) -> Any:
    from conveyor.installation import Installation
    from conveyor.settings import load_settings

    installation = Installation(load_settings(tmp_path / "home", database_url=database_url))
    endpoints.ensure_endpoints(installation.sessions, ["heart"], {})
    yield installation.sessions
    installation.close()


def routing(sessions: Any) -> Any:
    with sessions() as session:
        return endpoints.read_endpoint(session, "heart")


def test_canary_pins_the_version_and_gives_the_routing_back(sessions: Any) -> None:
    before = routing(sessions)
    canary = start_canary(sessions, "heart", "heart", 7, 10.0, "accuracy", "delivery:abc")
    during = routing(sessions)
    assert during.revision == before.revision + 1 and during.updated_by == "delivery:abc"
    arms = {a.name: (a.target, a.weight) for a in during.config.arms}
    assert arms == {"champion": ("champion", 90.0), CANARY_ARM: (7, 10.0)}
    assert during.config.auto_rollback and not switched_off(sessions, canary)
    with pytest.raises(InvalidStateError, match="already sends traffic to arm"):
        start_canary(sessions, "heart", "heart", 8, 10.0, "accuracy", "delivery:def")
    with pytest.raises(InvalidStateError, match="serves model 'heart', not 'movies'"):
        start_canary(sessions, "heart", "movies", 8, 10.0, "accuracy", "delivery:def")
    end_canary(sessions, canary, "delivery:abc")
    after = routing(sessions)
    assert after.config == before.config and after.revision == before.revision + 2


def test_a_canary_switched_off_by_the_guard_is_noticed(sessions: Any) -> None:
    canary = start_canary(sessions, "heart", "heart", 7, 10.0, "accuracy", "delivery:abc")
    config = routing(sessions).config.as_dict()
    config["arms"][1]["weight"] = 0
    with sessions.begin() as session:
        endpoints.save_routing(session, "heart", parse_config(config), "auto-rollback")
    assert switched_off(sessions, canary)
