"""Small HTML tables for notebooks (``_repr_html_``). Every value is escaped: item names,
records and results are user input."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from typing import Any

MAX_CELL = 300
STYLE = "border-collapse:collapse;text-align:left"


def cell(value: Any) -> str:
    """One value as escaped text, long values cut."""
    if value is None:
        text = ""
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    if len(text) > MAX_CELL:
        text = text[: MAX_CELL - 1] + "…"
    return html.escape(text)


def key_value_table(title: str, pairs: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{cell(k)}</th><td>{cell(v)}</td></tr>" for k, v in pairs)
    return f'<table style="{STYLE}"><caption>{cell(title)}</caption>{rows}</table>'


def grid_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{cell(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return (
        f'<table style="{STYLE}"><caption>{cell(title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
