"""Items as the API and the web pages show them: a page of items, one item with its steps,
with errors and logs disclosed as the caller's role allows (api/disclosure.py)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import TypeVar

from sqlalchemy import or_, select

from conveyor.api.disclosure import Disclosure, disclosure_for
from conveyor.api.errors import ApiError
from conveyor.api.schemas import ItemDetailOut, ItemOut, ItemPage
from conveyor.auth.service import Principal
from conveyor.installation import Installation
from conveyor.store import queries
from conveyor.store.models import Item
from conveyor.store.queries import ItemFilter

OutT = TypeVar("OutT", bound=ItemOut)


def item_page(
    installation: Installation,
    filters: ItemFilter,
    cursor: str | None,
    limit: int,
    principal: Principal,
) -> ItemPage:
    """Newest first, after ``cursor`` (a page's ``next_cursor``)."""
    query = filters.apply(select(Item))
    if cursor:
        created, item_id = _decode_cursor(cursor)
        query = query.where(
            or_(Item.created_at < created, (Item.created_at == created) & (Item.id > item_id))
        )
    query = query.order_by(Item.created_at.desc(), Item.id).limit(limit + 1)
    with installation.sessions() as session:
        found = list(session.scalars(query).all())
    page, more = found[:limit], len(found) > limit
    disclose = disclosure_for(principal, installation.storage)
    return ItemPage(
        items=[_disclosed(ItemOut.of(i), disclose) for i in page],
        next_cursor=_encode_cursor(page[-1]) if more else None,
    )


def item_detail(installation: Installation, item_id: str, principal: Principal) -> ItemDetailOut:
    """The item with every step attempt; ItemNotFoundError (404) when there is none."""
    with installation.sessions() as session:
        item = queries.get_item(session, item_id)
        runs = queries.step_runs(session, item.id)
        result = queries.result_of(session, item.id)
    dag = _dag_of(installation, item.pipeline)
    artifacts = artifacts_of(installation, item)
    detail = ItemDetailOut.build(item, runs, result, dag, artifacts)
    return _disclosed(detail, disclosure_for(principal, installation.storage))


def _disclosed(out: OutT, disclose: Disclosure) -> OutT:
    out.error = disclose(out.error)
    out.input_url = disclose(out.input_url)
    for run in getattr(out, "steps", []):
        run.error, run.logs = disclose(run.error), disclose(run.logs)
    return out


def _dag_of(installation: Installation, pipeline: str) -> dict[str, list[str]]:
    try:
        found = installation.registry.get(pipeline)
    except Exception:
        return {}
    return {name: list(found.dependencies[name]) for name in found.order}


def artifacts_of(installation: Installation, item: Item) -> list[str]:
    try:
        return installation.storage.list_files(item.work_dir)
    except FileNotFoundError:
        return []


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, _, item_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        created_at = datetime.fromisoformat(created)
        if created_at.tzinfo is not None or not item_id.isalnum():
            raise ValueError(cursor)
        return created_at, item_id
    except (ValueError, binascii.Error, UnicodeError):
        raise ApiError(422, "invalid_cursor", "the cursor is not one this API returned") from None


def _encode_cursor(item: Item) -> str:
    return base64.urlsafe_b64encode(f"{item.created_at.isoformat()}|{item.id}".encode()).decode()
