"""Record lines parse to the values ``json.loads`` gives (content hashes depend on them),
whichever parser reads them; a bad line is still named with its number."""

from __future__ import annotations

import json

import pytest

from conveyor.ingest.records import BadRecordLine, JsonlBatcher

LINES = [
    b'{"n": 1, "amount": 12.25, "note": "caf\\u00e9 \\t", "tags": ["a", null, true]}',
    b'{"big": 123456789012345678901234567890, "negative": -9223372036854775809}',
    b'{"edge": 18446744073709551615, "small": 1e-320, "exp": 2.5e+300, "zero": -0.0}',
    b'{"nan": NaN, "inf": -Infinity}',  # json.loads takes these; orjson does not
    b'"\\ud800 a lone surrogate"',
    b"\xef\xbb\xbf" + b'{"bom": 1}',
    b'{"same": 1, "same": 2}',
    b"[1.7976931348623157e308, 5e-324, 0.1, 100000000000000000.0]",
]


def test_every_line_parses_to_what_json_loads_gives() -> None:
    batcher = JsonlBatcher("records.jsonl", batch_size=len(LINES))
    batch = None
    for line in LINES:
        batch = batcher.feed(line + b"\n")
    assert batch is not None
    expected = [json.loads(line) for line in LINES]
    assert json.dumps(batch.records) == json.dumps(expected)  # NaN != NaN: compare as text
    assert [type(v) for r in batch.records[1:3] for v in r.values()] == [
        type(v) for r in expected[1:3] for v in r.values()
    ]


def test_a_bad_line_is_named_by_its_number() -> None:
    batcher = JsonlBatcher("records.jsonl")
    batcher.feed(b'{"n": 1}\n')
    batcher.feed(b"\n")
    with pytest.raises(BadRecordLine, match=r"records.jsonl:3 is not valid JSON") as raised:
        batcher.feed(b'{"n": 2,}\n')
    assert raised.value.line == 3
    with pytest.raises(BadRecordLine, match="not UTF-8"):
        batcher.feed(b'{"n": "\xff"}\n')
