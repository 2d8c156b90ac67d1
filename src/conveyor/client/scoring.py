"""Batch scoring jobs as the client returns them (``POST/GET /models/{name}/batch``): a model
version scoring CSV/JSONL files under the server's storage root into an output folder."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from conveyor.client.html import key_value_table
from conveyor.client.models import build

FINISHED = ("succeeded", "failed")


@dataclasses.dataclass(frozen=True)
class BatchJob:
    """One job: ``status`` is ``running``, ``succeeded`` or ``failed`` (``error`` says why);
    parts and rows count its progress, rejected rows are written beside the output."""

    id: str
    model: str
    version: int
    output: str
    inputs: list[str]
    status: str
    parts_total: int
    parts_done: int
    rows_total: int
    rows_scored: int
    rows_rejected: int
    requested_by: str
    created_at: datetime
    updated_at: datetime
    dataset_sha256: str | None = None
    error: str | None = None
    finished_at: datetime | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> BatchJob:
        return build(cls, data)

    @property
    def done(self) -> bool:
        return self.status in FINISHED

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def __str__(self) -> str:
        return (
            f"batch {self.id[:8]} of {self.model} v{self.version}: {self.status}, "
            f"{self.rows_scored}/{self.rows_total} rows scored, {self.rows_rejected} rejected"
        )

    def _repr_html_(self) -> str:
        pairs: list[tuple[str, Any]] = [
            ("model", f"{self.model} v{self.version}"),
            ("status", self.status),
            ("parts", f"{self.parts_done}/{self.parts_total}"),
            ("rows scored", f"{self.rows_scored}/{self.rows_total}"),
            ("rows rejected", self.rows_rejected),
            ("output", self.output),
            ("error", self.error),
        ]
        return key_value_table(f"batch scoring {self.id}", pairs)


def batch_body(
    inputs: str | list[str],
    output: str,
    version: int | None,
    alias: str | None,
    columns: list[str] | None,
    format: str,
    max_rejects: int | None,
) -> dict[str, Any]:
    """The request body, without the unset options (the server's defaults apply)."""
    body: dict[str, Any] = {
        "inputs": [inputs] if isinstance(inputs, str) else list(inputs),
        "output": output,
        "format": format,
    }
    options = {"version": version, "alias": alias, "columns": columns, "max_rejects": max_rejects}
    return body | {name: value for name, value in options.items() if value is not None}
