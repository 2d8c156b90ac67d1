"""A model version's input signature: feature names and types, and the check that turns
records into a float32 matrix (or names each field that is missing, extra or wrongly typed)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from conveyor.serving.inputs import InvalidInputError

NUMERIC = frozenset({"double", "float", "long", "integer"})
MAX_REPORTED = 10  # problems named in the message
MAX_DETAILS = 100  # problems listed in the details: a batch of wrong records stops here
PLAIN_NUMBERS = (int, float)  # by exact type: bool is an int subclass but not a number here


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # MLflow's column type: double, float, long, integer, boolean, string
    nullable: bool = False  # null means missing (NaN for a numeric model input)


@dataclass(frozen=True)
class Signature:
    features: tuple[Feature, ...]

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @cached_property
    def all_real(self) -> bool:
        return all(f.kind in ("double", "float") for f in self.features)

    def as_dict(self) -> list[dict[str, Any]]:
        return [{"name": f.name, "type": f.kind, "nullable": f.nullable} for f in self.features]

    def matrix(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Rows x features as float32, in signature order; NaN for an allowed null."""
        rows = self._plain_rows(records)
        if rows is None:
            self.check(records)  # raises with every problem named
            rows = [[_number(record[f.name]) for f in self.features] for record in records]
        return np.array(rows, dtype=np.float32)

    def _plain_rows(self, records: list[dict[str, Any]]) -> list[list[Any]] | None:
        """The common case, checked cheaply: exactly the fields, every value a number."""
        if not self.all_real:
            return None
        names, count = self.names, len(self.names)
        rows = []
        for record in records:
            if len(record) != count:
                return None
            try:
                row = [record[name] for name in names]
            except KeyError:
                return None
            for value in row:
                if type(value) not in PLAIN_NUMBERS:
                    return None
            rows.append(row)
        return rows

    def check(self, records: list[dict[str, Any]]) -> None:
        problems: list[dict[str, Any]] = []
        for index, record in enumerate(records):
            problems += self._record_problems(index, record)
            if len(problems) >= MAX_DETAILS:
                break
        if problems:
            shown = problems[:MAX_REPORTED]
            text = "; ".join(
                f"record {p['record']}, field {p['field']!r}: {p['problem']}" for p in shown
            )
            more = " (and more)" if len(problems) > len(shown) else ""
            raise InvalidInputError(
                f"the input does not match the model's signature: {text}{more}. Expected "
                f"fields: {', '.join(self.names)}.",
                problems,
            )

    def _record_problems(self, index: int, record: dict[str, Any]) -> list[dict[str, Any]]:
        problems = []
        for feature in self.features:
            if feature.name not in record:
                problems.append(_problem(index, feature.name, f"missing ({feature.kind})"))
                continue
            problem = _type_problem(feature, record[feature.name])
            if problem:
                problems.append(_problem(index, feature.name, problem))
        known = set(self.names)
        for name in record:
            if name not in known:
                problems.append(_problem(index, name, "not an input of this model"))
        return problems


def _number(value: Any) -> float:
    return np.nan if value is None else float(value)


def _problem(index: int, field: str, problem: str) -> dict[str, Any]:
    return {"record": index, "field": field, "problem": problem}


def _type_problem(feature: Feature, value: Any) -> str | None:
    if value is None:
        return None if feature.nullable else f"null, expected a {feature.kind}"
    kind = feature.kind
    if kind in NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{value!r} is not a number ({kind})"
        if kind in ("long", "integer") and isinstance(value, float) and not value.is_integer():
            return f"{value!r} is not a whole number ({kind})"
        return None
    if kind == "boolean" and not isinstance(value, bool):
        return f"{value!r} is not true or false"
    if kind == "string" and not isinstance(value, str):
        return f"{value!r} is not a string"
    return None


def from_mlflow(schema: Any, nullable: frozenset[str] = frozenset()) -> Signature:
    """From an MLflow input ``Schema``; columns it marks optional, or listed in ``nullable``,
    accept null."""
    features = []
    for column in schema.to_dict():
        name = column["name"]
        optional = not column.get("required", True) or name in nullable
        features.append(Feature(name, str(column["type"]), optional))
    return Signature(tuple(features))
