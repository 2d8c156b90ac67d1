"""Typed results of the client's calls: plain dataclasses built from the API's JSON, with an
HTML view for notebooks. Times are timezone-aware UTC datetimes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from conveyor.client.html import grid_table, key_value_table

if TYPE_CHECKING:
    import pandas

FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
T = TypeVar("T")


def parse_time(value: Any) -> datetime | None:
    """The API's ISO 8601 times (naive ones are UTC) as aware datetimes."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def build(cls: type[T], data: dict[str, Any], **extra: Any) -> T:
    """``cls`` from the fields of ``data`` it declares; ``*_at`` fields become datetimes. Fields
    a newer server adds are ignored, so an older client keeps working."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {k: v for k, v in data.items() if k in names} | extra
    for name in names:
        if name.endswith("_at") and name in values:
            values[name] = parse_time(values[name])
    return cls(**values)


@dataclasses.dataclass(frozen=True)
class Me:
    name: str
    role: str
    kind: str
    must_change_password: bool = False


@dataclasses.dataclass(frozen=True)
class Submission:
    """What ``submit_*`` returns: the item's id, and whether it is an earlier one (the same
    content was already submitted to the same pipeline version)."""

    item_id: str
    duplicate: bool
    url: str
    input: str | None = None  # the file name as sent; None for a record


@dataclasses.dataclass(frozen=True)
class Item:
    item_id: str
    pipeline: str
    pipeline_version: str
    kind: str
    input: Any
    input_size: int | None
    content_hash: str
    status: str
    error: str | None
    source: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    input_url: str | None = None  # a file submitted by reference: where it is read

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def _summary(self) -> list[tuple[str, Any]]:
        return [
            ("item", self.item_id),
            ("pipeline", f"{self.pipeline} v{self.pipeline_version}"),
            ("input", self.input),
            ("status", self.status),
            ("error", self.error),
            ("created", self.created_at),
            ("finished", self.finished_at),
        ]

    def _repr_html_(self) -> str:
        return key_value_table(f"item {self.item_id}", self._summary())


@dataclasses.dataclass(frozen=True)
class StepRun:
    step: str
    attempt: int
    status: str
    worker: str | None
    node_id: str | None
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    seconds: float | None
    error: str | None
    logs: str | None


@dataclasses.dataclass(frozen=True)
class ItemDetail(Item):
    """An item with every step attempt, its DAG, result and artifact names."""

    steps: list[StepRun] = dataclasses.field(default_factory=list)
    dag: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    result: Any = None
    result_pipeline_version: str | None = None
    artifacts: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ItemDetail:
        steps = [build(StepRun, s) for s in data.get("steps", [])]
        return build(cls, data, steps=steps)

    @property
    def logs(self) -> str:
        """Every step attempt's log, in order, each under a ``== step (attempt N) ==`` line."""
        parts = [
            f"== {run.step} (attempt {run.attempt}, {run.status}) ==\n{run.logs or ''}".rstrip()
            for run in self.steps
        ]
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        summary = key_value_table(
            f"item {self.item_id}", [*self._summary(), ("result", self.result)]
        )
        steps = grid_table(
            "steps",
            ["step", "attempt", "status", "seconds", "error"],
            [(s.step, s.attempt, s.status, s.seconds, s.error) for s in self.steps],
        )
        return summary + steps


@dataclasses.dataclass(frozen=True)
class ItemResult:
    item_id: str
    pipeline: str
    pipeline_version: str
    result: Any

    def _repr_html_(self) -> str:
        pairs = [("pipeline", f"{self.pipeline} v{self.pipeline_version}"), ("result", self.result)]
        return key_value_table(f"result of {self.item_id}", pairs)


@dataclasses.dataclass(frozen=True)
class Pipeline:
    name: str
    version: str
    accepts: list[str]
    description: str | None
    dag: dict[str, list[str]]


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    name: str
    versions: int
    champion: int | None
    challenger: int | None


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    model: str
    version: int
    aliases: list[str]
    created_at: datetime
    run_id: str | None
    metrics: dict[str, float]
    params: dict[str, str]

    def _repr_html_(self) -> str:
        pairs = [("aliases", ", ".join(self.aliases)), ("created", self.created_at)]
        pairs += [(f"metric {k}", v) for k, v in sorted(self.metrics.items())]
        pairs += [(f"param {k}", v) for k, v in sorted(self.params.items())]
        return key_value_table(f"{self.model} v{self.version}", pairs)


@dataclasses.dataclass(frozen=True)
class Model:
    name: str
    aliases: dict[str, int]
    versions: list[ModelVersion]

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Model:
        versions = [build(ModelVersion, v, model=data["name"]) for v in data["versions"]]
        return cls(name=data["name"], aliases=dict(data["aliases"]), versions=versions)

    def version(self, number: int) -> ModelVersion:
        for found in self.versions:
            if found.version == number:
                return found
        raise KeyError(f"{self.name} has no version {number}")

    def _repr_html_(self) -> str:
        return VersionComparison(self.name, self.versions)._repr_html_()


@dataclasses.dataclass(frozen=True)
class VersionComparison:
    """Versions of one model side by side: one row per version, one column per metric."""

    model: str
    versions: list[ModelVersion]

    @property
    def metrics(self) -> list[str]:
        return sorted({name for v in self.versions for name in v.metrics})

    def best(self, metric: str, higher_is_better: bool = True) -> ModelVersion:
        """The version with the best value of ``metric`` (brier: ``higher_is_better=False``)."""
        scored = [v for v in self.versions if metric in v.metrics]
        if not scored:
            raise KeyError(f"no version of {self.model} has the metric {metric!r}")
        pick = max if higher_is_better else min
        return pick(scored, key=lambda v: v.metrics[metric])

    def to_pandas(self) -> pandas.DataFrame:
        import pandas

        rows = [self._row(v) for v in self.versions]
        return pandas.DataFrame(rows).set_index("version")

    def _row(self, version: ModelVersion) -> dict[str, Any]:
        row: dict[str, Any] = {"version": version.version, "aliases": ",".join(version.aliases)}
        return row | {m: version.metrics.get(m) for m in self.metrics}

    def _repr_html_(self) -> str:
        columns = ["version", "aliases", *self.metrics]
        rows = [list(self._row(v).values()) for v in self.versions]
        return grid_table(f"{self.model}: versions", columns, rows)


@dataclasses.dataclass(frozen=True)
class AliasChange:
    alias: str
    action: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    item_id: str | None = None
    created_at: datetime | None = None


@dataclasses.dataclass(frozen=True)
class Training:
    """A training run: its item, and once registered, the version and the gate's decision."""

    model: str
    item_id: str
    item: ItemDetail | None = None
    registration: AliasChange | None = None

    @property
    def version(self) -> int | None:
        return self.registration.to_version if self.registration else None

    def _repr_html_(self) -> str:
        pairs: list[tuple[str, Any]] = [("item", self.item_id)]
        if self.item is not None:
            pairs.append(("status", self.item.status))
        if self.registration is not None:
            change = self.registration
            pairs += [("version", change.to_version), ("alias", change.alias)]
            pairs.append(("gate", change.reason))
        return key_value_table(f"training of {self.model}", pairs)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    name: str
    model: str
    revision: int
    updated_by: str
    routing: dict[str, Any]
    arms: list[dict[str, Any]]  # name, target, weight, and the version this server answers with

    @property
    def serves_every_arm(self) -> bool:
        """Whether the answering server has loaded a version for every arm with traffic (the
        one its target names, when that is a version number)."""
        live = [arm for arm in self.arms if arm.get("weight", 0) > 0]
        return all(
            arm.get("version") is not None
            and (not isinstance(arm.get("target"), int) or arm["version"] == arm["target"])
            for arm in live
        )

    def _repr_html_(self) -> str:
        rows = [[a.get(c) for c in ("name", "target", "weight", "version")] for a in self.arms]
        title = f"endpoint {self.name}: {self.model}, routing revision {self.revision}"
        return grid_table(title, ["arm", "target", "weight", "version"], rows)


@dataclasses.dataclass(frozen=True)
class Predictions:
    """Predictions of one call, one dict per input row (in order), each with the ``model``,
    ``version`` and ``arm`` that answered it and the prediction ``id`` for feedback."""

    endpoint: str
    rows: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]

    def to_pandas(self) -> pandas.DataFrame:
        import pandas

        return pandas.DataFrame(self.rows)

    def _repr_html_(self) -> str:
        columns = sorted({key for row in self.rows for key in row})
        rows = [[row.get(c) for c in columns] for row in self.rows[:50]]
        return grid_table(f"{self.endpoint}: {len(self.rows)} prediction(s)", columns, rows)


def prediction_rows(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The predict answer's records, each with the model, version and arm of the answer."""
    common = {k: answer.get(k) for k in ("model", "version", "arm")}
    rows = []
    for prediction in answer.get("predictions", []):
        values = prediction if isinstance(prediction, dict) else {"prediction": prediction}
        rows.append(values | common)
    return rows
