"""Parsing a message into what it asks for: plain functions, no broker and no store."""

from __future__ import annotations

from conveyor.streams.messages import (
    FileInput,
    Poison,
    RecordInput,
    parse_message,
    schema_check,
    storage_path,
)

BOTH = ("file", "record")
ROOT = "/data/storage"


def test_a_json_object_is_a_record() -> None:
    assert parse_message(b'{"pulse": 72}', BOTH, ROOT) == RecordInput({"pulse": 72})


def test_poison_messages_say_what_is_wrong() -> None:
    cases = {
        b"\xff": "not_utf8",
        b"{pulse: 72}": "bad_json",
        b"[72]": "not_an_object",
        b'{"$file": 7}': "bad_file",
        b'{"$file": "s3://elsewhere/a.wav"}': "bad_file",
    }
    for payload, code in cases.items():
        parsed = parse_message(payload, BOTH, ROOT)
        assert isinstance(parsed, Poison) and parsed.code == code, payload
        assert parsed.reason


def test_a_schema_names_the_field_that_does_not_fit() -> None:
    check = schema_check({"type": "object", "properties": {"pulse": {"type": "integer"}}})
    parsed = parse_message(b'{"pulse": "fast"}', BOTH, ROOT, check)
    assert isinstance(parsed, Poison) and parsed.code == "schema"
    assert "pulse" in parsed.reason and "integer" in parsed.reason
    assert parse_message(b'{"pulse": 72}', BOTH, ROOT, check) == RecordInput({"pulse": 72})


def test_the_kind_must_be_one_the_pipeline_takes() -> None:
    assert parse_message(b'{"a": 1}', ("file",), ROOT) == Poison(
        "wrong_kind", "the pipeline takes files, not records"
    )
    parsed = parse_message(b'{"$file": "in/a.wav"}', ("record",), ROOT)
    assert isinstance(parsed, Poison) and parsed.code == "wrong_kind"


def test_file_locations_stay_inside_the_storage_root() -> None:
    assert parse_message(b'{"$file": "in/a.wav"}', BOTH, ROOT) == FileInput("in/a.wav", "a.wav")
    assert storage_path("/data/storage/in/a.wav", ROOT) == "in/a.wav"
    assert storage_path("s3://bucket/root/in/a.wav", "s3://bucket/root") == "in/a.wav"
    for outside in ("../a.wav", "in/../../a.wav", "/data/storage-other/a.wav", "/etc/passwd"):
        assert storage_path(outside, ROOT) is None, outside
    assert storage_path("s3://bucket/rootless/a.wav", "s3://bucket/root") is None
