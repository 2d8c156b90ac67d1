"""Request bodies of ``POST /endpoints/{name}/predict`` into a list of records (dicts).

Accepted: one flat JSON object (any key order), a list of objects, and MLflow's scoring
formats ``dataframe_records``, ``dataframe_split`` ({columns, data}), ``instances`` and
``inputs`` (a list of objects, or columns as {name: [values]}), so MLflow clients work as is.
"""

from __future__ import annotations

from typing import Any

import orjson

from conveyor.errors import InputRejectedError, InputTooLargeError

MAX_BODY_BYTES = 1_000_000
MAX_RECORDS = 1_000
MLFLOW_KEYS = ("dataframe_records", "dataframe_split", "instances", "inputs")


class InvalidInputError(InputRejectedError):
    """The body is not something a model can answer; ``details`` names field and record."""

    code = "invalid_input"
    http_status = 422

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


class BodyTooLargeError(InputTooLargeError):
    code = "too_large"
    http_status = 413


def parse_records(body: bytes) -> list[dict[str, Any]]:
    """The records of a request body, in order; raises with what to send instead. Counts are
    checked before any record is built, so an oversized batch costs no more than its parsing."""
    if len(body) > MAX_BODY_BYTES:
        raise BodyTooLargeError(
            f"the body has {len(body)} bytes; send at most {MAX_BODY_BYTES} (split the batch)."
        )
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidInputError(f"the body is not JSON: {error}") from None
    records = _records(data)
    if not records:
        raise InvalidInputError("the body holds no record; send at least one.")
    return records


def _check_count(count: int, where: str) -> None:
    if count > MAX_RECORDS:
        raise BodyTooLargeError(
            f"{count} records in {where}; send at most {MAX_RECORDS} per request (split the batch)."
        )


def _records(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return _objects(data, "the list")
    if not isinstance(data, dict):
        raise InvalidInputError(
            "send a JSON object (one record), a list of objects or an MLflow scoring body "
            "(dataframe_records, dataframe_split, instances, inputs)."
        )
    found = [key for key in MLFLOW_KEYS if key in data]
    if not found:
        return [data]
    if len(found) > 1:
        raise InvalidInputError(f"send only one of {', '.join(found)}.")
    key = found[0]
    if key == "dataframe_split":
        return _split(data[key])
    if key == "dataframe_records" or isinstance(data[key], list):
        return _objects(data[key], key)
    if isinstance(data[key], dict):
        return _columns(data[key], key)
    raise InvalidInputError(f"{key} must be a list of objects or an object of columns.")


def _objects(values: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(values, list):
        raise InvalidInputError(f"{where} must be a list of objects.")
    _check_count(len(values), where)
    for index, value in enumerate(values):
        if not isinstance(value, dict):
            raise InvalidInputError(
                f"record {index} of {where} is not an object with named fields.",
                [{"record": index, "field": None, "problem": "not an object"}],
            )
    return values


def _split(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, dict) or not isinstance(value.get("columns"), list):
        raise InvalidInputError('dataframe_split must be {"columns": [...], "data": [[...]]}.')
    columns, rows = _column_names(value["columns"]), value.get("data")
    if not isinstance(rows, list):
        raise InvalidInputError("dataframe_split.data must be a list of rows.")
    _check_count(len(rows), "dataframe_split.data")
    records = []
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise InvalidInputError(
                f"row {index} of dataframe_split.data must be a list of {len(columns)} values "
                "(one per column).",
                [{"record": index, "field": None, "problem": "wrong number of values"}],
            )
        records.append(dict(zip(columns, row, strict=True)))
    return records


def _column_names(columns: list[Any]) -> list[str]:
    for index, name in enumerate(columns):
        if not isinstance(name, str):
            raise InvalidInputError(
                f"dataframe_split.columns[{index}] is {name!r}; every column name must be a "
                "string.",
                [{"record": None, "field": f"columns[{index}]", "problem": "not a string"}],
            )
    if len(set(columns)) != len(columns):
        raise InvalidInputError("dataframe_split.columns names a column more than once.")
    return columns


def _columns(value: dict[str, Any], where: str) -> list[dict[str, Any]]:
    if not value:
        raise InvalidInputError(f"{where} has no column; send {{name: [values]}}.")
    lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise InvalidInputError(f"every column of {where} must be a list of the same length.")
    _check_count(lengths.pop(), where)
    names = list(value)
    return [dict(zip(names, row, strict=True)) for row in zip(*value.values(), strict=True)]
