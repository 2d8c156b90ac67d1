"""What a message asks for: a record item, a file item, or nothing (a poison message).

A message is one UTF-8 JSON object. ``{"$file": "incoming/cam1/a.mp4"}`` names a file under
the storage root (a path relative to it, or a URL that starts with the storage URL) and becomes
a file item of a copy of that file. Where the installation allows references
(``reference_roots``), a ``$file`` outside the storage root (``s3://bucket/calls/a.wav``,
``/mnt/shared/a.wav``) is a reference: a file item read where it lies, never copied. Any other
object is a record. Plain functions, no I/O.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

FILE_KEY = "$file"
NAME_KEY = "name"  # optional, with $file: the name the item shows (default: the file's)
MAX_REASON_CHARS = 2000

# A record's problem with the source's schema, or None when it fits.
RecordCheck = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class RecordInput:
    record: dict[str, Any]


@dataclass(frozen=True)
class FileInput:
    path: str  # relative to the storage root
    name: str


@dataclass(frozen=True)
class ReferenceInput:
    location: str  # outside the storage root: checked against reference_roots by the intake
    name: str | None


@dataclass(frozen=True)
class Poison:
    code: str  # low-cardinality, a metrics label: bad_json, not_an_object, schema, ...
    reason: str


Parsed = RecordInput | FileInput | ReferenceInput | Poison


def parse_message(
    payload: bytes,
    accepts: Sequence[str],
    storage_url: str,
    check: RecordCheck | None = None,
    references: bool = False,
) -> Parsed:
    """What ``payload`` asks for; ``references``: a ``$file`` outside the storage root is a
    reference (the installation has ``reference_roots``), else a poison message."""
    try:
        value = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as error:
        return Poison("not_utf8", f"payload is not UTF-8 text ({error.reason} at {error.start})")
    except json.JSONDecodeError as error:
        return Poison("bad_json", f"payload is not JSON: {error.msg} at character {error.pos}")
    if not isinstance(value, dict):
        return Poison("not_an_object", f"payload is JSON {type(value).__name__}, not an object")
    if FILE_KEY in value:
        return _file_input(value, accepts, storage_url, references)
    if "record" not in accepts:
        return Poison("wrong_kind", f"the pipeline takes {' or '.join(accepts)}s, not records")
    problem = check(value) if check else None
    if problem:
        return Poison(
            "schema", f"record does not match the source's schema: {problem}"[:MAX_REASON_CHARS]
        )
    return RecordInput(value)


def _file_input(
    value: dict[str, Any], accepts: Sequence[str], storage_url: str, references: bool
) -> Parsed:
    if "file" not in accepts:
        return Poison("wrong_kind", f"the pipeline takes {' or '.join(accepts)}s, not files")
    location = value[FILE_KEY]
    if not isinstance(location, str) or not location.strip():
        return Poison("bad_file", f"{FILE_KEY} must be a storage path or URL (a string)")
    path = storage_path(location, storage_url)
    name = value.get(NAME_KEY)
    if path is None and references:
        return ReferenceInput(location, name if isinstance(name, str) and name else None)
    if path is None:
        return Poison(
            "bad_file",
            f"{location!r} is not inside the storage root {storage_url} (to take files where "
            "they lie, list their folder or URL prefix in reference_roots)",
        )
    if not isinstance(name, str) or not name:
        name = posixpath.basename(path)
    return FileInput(path, name)


def storage_path(location: str, storage_url: str) -> str | None:
    """``location`` relative to the storage root, or None when it lies outside it."""
    root = storage_url.rstrip("/")
    if "://" in location or location.startswith("/"):
        if not location.startswith(root + "/"):
            return None
        location = location[len(root) + 1 :]
    normalised = posixpath.normpath(location)
    if normalised in (".", "..") or normalised.startswith(("../", "/")) or "\x00" in location:
        return None
    return normalised


def schema_check(schema: dict[str, Any]) -> RecordCheck:
    """A check of records against a JSON Schema (draft 2020-12 unless it names another)."""
    import jsonschema  # type: ignore[import-untyped]  # only sources with a schema import it

    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)

    def check(record: Any) -> str | None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(record))
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path) or "(the record)"
        return f"{where}: {error.message}"

    return check
