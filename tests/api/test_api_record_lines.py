"""POST /api/v1/items/records: JSON lines streamed into items in batches."""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import func, select

from conveyor.store.models import Item

RECORDS = 6_000  # more than one batch


def _body(records: int, bad_line: int | None = None) -> Iterator[bytes]:
    lines = (
        "{oops\n" if n == bad_line else json.dumps({"n": n}) + "\n" for n in range(1, records + 1)
    )
    chunk: list[str] = []
    for line in lines:  # chunks that cut lines anywhere, as a network would
        chunk.append(line)
        if len(chunk) == 777:
            yield "".join(chunk).encode()
            chunk = []
    yield "".join(chunk).encode()


def _count(api) -> int:  # type: ignore[no-untyped-def]
    with api.installation.sessions() as session:
        return session.scalar(select(func.count()).select_from(Item))


def _post(api, body: Iterator[bytes], **params: str):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/x-ndjson"}
    return api.post(
        "/api/v1/items/records",
        params={"pipeline": "noop", **params},
        content=body,
        headers=headers,
    )


def test_records_once_each_and_a_resend_adds_nothing(api) -> None:  # type: ignore[no-untyped-def]
    first = _post(api, _body(RECORDS), ids="true")
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["records"], answer["accepted"], answer["duplicates"]) == (RECORDS, RECORDS, 0)
    assert len(set(answer["item_ids"])) == RECORDS == _count(api)
    again = _post(api, _body(RECORDS)).json()
    assert (again["accepted"], again["duplicates"]) == (0, RECORDS) and "item_ids" not in again
    assert _count(api) == RECORDS


def test_a_bad_line_is_named_and_only_what_came_before_is_kept(api) -> None:  # type: ignore[no-untyped-def]
    answer = _post(api, _body(RECORDS, bad_line=5_432))
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "bad_record_line" and "body:5432 is not valid JSON" in error["message"]
    assert error["details"]["accepted"] == 5_431 == _count(api)


def test_viewers_cannot_submit(api) -> None:  # type: ignore[no-untyped-def]
    headers = {
        "Authorization": f"Bearer {api.viewer_token}",
        "Content-Type": "application/x-ndjson",
    }
    answer = api.post(
        "/api/v1/items/records", params={"pipeline": "noop"}, content=b"{}\n", headers=headers
    )
    assert answer.status_code == 403 and _count(api) == 0
