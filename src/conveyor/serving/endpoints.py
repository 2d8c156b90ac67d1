"""SQL side of endpoints: their routing configs and revisions, the defaults the scenarios
get, and the record of a version that failed to load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from conveyor.errors import ItemNotFoundError
from conveyor.serving.routing import RoutingConfig, default_config, parse_config
from conveyor.serving.tables import ServingEndpoint
from conveyor.store.models import ModelEvent, utcnow

RELOAD_FAILED_EVENT = "serving-reload-failed"


class EndpointNotFoundError(ItemNotFoundError):
    http_status = 404


@dataclass(frozen=True)
class EndpointRecord:
    name: str
    config: RoutingConfig
    revision: int
    updated_by: str


def ensure_endpoints(
    sessions: sessionmaker[Session], models: list[str], key_fields: dict[str, str]
) -> None:
    """Create an endpoint routing to ``champion`` for each model that has none yet."""
    with sessions() as session:
        existing = set(session.scalars(select(ServingEndpoint.name)))
    for model in models:
        if model in existing:
            continue
        try:
            with sessions.begin() as session:
                session.add(
                    ServingEndpoint(
                        name=model,
                        config=default_config(model, key_fields.get(model)).as_dict(),
                        revision=1,
                        updated_by="default",
                    )
                )
        except IntegrityError:  # another replica created it first
            pass


def read_endpoints(session: Session) -> dict[str, EndpointRecord]:
    rows = session.scalars(select(ServingEndpoint).order_by(ServingEndpoint.name))
    return {row.name: _record(row) for row in rows}


def revisions(session: Session) -> dict[str, int]:
    """Cheap: what replicas poll every second."""
    rows = session.execute(select(ServingEndpoint.name, ServingEndpoint.revision))
    return {name: revision for name, revision in rows}


def read_endpoint(session: Session, name: str) -> EndpointRecord:
    row = session.get(ServingEndpoint, name)
    if row is None:
        raise EndpointNotFoundError(
            f"no serving endpoint named {name!r}; see GET /api/v1/endpoints."
        )
    return _record(row)


def save_routing(session: Session, name: str, config: RoutingConfig, actor: str) -> int:
    """Replace an endpoint's routing (creating the endpoint if new); returns the revision."""
    row = session.get(ServingEndpoint, name)
    if row is None:
        session.add(
            ServingEndpoint(name=name, config=config.as_dict(), revision=1, updated_by=actor)
        )
        return 1
    session.execute(
        update(ServingEndpoint)
        .where(ServingEndpoint.name == name)
        .values(
            config=config.as_dict(),
            revision=ServingEndpoint.revision + 1,
            updated_at=utcnow(),
            updated_by=actor,
        )
    )
    return row.revision + 1


def record_reload_failure(
    sessions: sessionmaker[Session], model: str, payload: dict[str, Any], source: str
) -> None:
    """Kept as a model event (docs/models.md): it shows in the model's events and starts no
    training unless an operator lists its type under ``retrain_on_events``."""
    with sessions.begin() as session:
        session.add(
            ModelEvent(model=model, type=RELOAD_FAILED_EVENT, payload=payload, source=source)
        )


def _record(row: ServingEndpoint) -> EndpointRecord:
    return EndpointRecord(row.name, parse_config(row.config), row.revision, row.updated_by)
