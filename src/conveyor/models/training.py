"""Training as a pipeline: what a training item carries in and what its result hands back.

A :class:`TrainingPipeline` is an ordinary pipeline of record items whose record is a
:class:`TrainingRequest` and whose final step returns a :class:`TrainingOutcome` as a dict.
Steps stay stateless: they read the dataset snapshot from storage and write the model files to
the item's work folder; the control side (``conveyor up`` or ``conveyor train --wait``) then
logs the run to MLflow, registers the version and applies the promotion gate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.errors import InputRejectedError, PermanentStepError
from conveyor.models.flavors import default_flavor
from conveyor.models.provenance import code_version
from conveyor.pipeline.hooks import PipelineHooks
from conveyor.pipeline.spec import Pipeline, Step

if TYPE_CHECKING:
    from conveyor.models.flavors import ModelFlavor
    from conveyor.models.schema import TableSchema

DATASETS_FOLDER = "datasets"


class TrainingPipeline(Pipeline):
    """A pipeline that trains the model ``model_name`` (by default the pipeline's name).

    ``default_params`` lists every parameter a run accepts with its default; ``default_dataset``
    is the file used when a run names none (relative paths are taken from the current folder),
    or a function returning the bytes (named ``default_dataset_source`` in the run);
    ``check_params`` normalises the merged parameters and raises ``InputRejectedError`` with a
    clear message for a bad value; ``schema`` describes the dataset's rows, so new labelled rows
    can be checked when they arrive; ``flavor`` logs and scores the model on the control side
    (default: a scikit-learn classifier); ``promotion_metric`` is what the gate compares unless
    the model's settings say otherwise.
    """

    def __init__(
        self,
        name: str,
        version: str,
        dag: Mapping[Step, Sequence[Step]],
        default_params: Mapping[str, Any],
        default_dataset: str | Callable[[], bytes] | None = None,
        model_name: str | None = None,
        description: str = "",
        check_params: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        schema: TableSchema | None = None,
        flavor: ModelFlavor | None = None,
        promotion_metric: str = "roc_auc",
        default_dataset_source: str = "",
        hooks: PipelineHooks | None = None,
    ) -> None:
        super().__init__(
            name, version, dag, description=description, accepts=("record",), hooks=hooks
        )
        self.model_name = model_name or name
        self.default_params = dict(default_params)
        self.default_dataset = default_dataset
        self.default_dataset_source = default_dataset_source or str(default_dataset)
        self.check_params = check_params
        self.schema = schema
        self.flavor: ModelFlavor = flavor or default_flavor()
        self.promotion_metric = promotion_metric

    def resolve_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overridden by ``given``; an unknown name is an error that lists the known."""
        unknown = sorted(set(given) - set(self.default_params))
        if unknown:
            known = ", ".join(sorted(self.default_params))
            raise InputRejectedError(
                f"model {self.model_name!r} has no parameter {', '.join(unknown)}; "
                f"its parameters are: {known}."
            )
        merged = {**self.default_params, **given}
        if self.check_params is None:
            return merged
        try:
            return self.check_params(merged)
        except (TypeError, ValueError, KeyError) as error:  # e.g. a number where a list goes
            raise InputRejectedError(
                f"model {self.model_name!r}: a parameter has the wrong type ({error})."
            ) from error

    def request_of(self, record: Any) -> tuple[TrainingRequest, dict[str, Any]]:
        """A training item's request and its resolved parameters, as its steps read them; a
        bad parameter is a :class:`PermanentStepError` (it will not get better on retry)."""
        request = TrainingRequest.from_record(record, self.model_name)
        try:
            return request, self.resolve_params(request.params)
        except Exception as error:
            raise PermanentStepError(str(error)) from error

    def outcome(
        self,
        record: Any,
        prepared: Mapping[str, Any],
        compared: Mapping[str, Any],
        fitted: Mapping[str, Any],
        **details: Any,
    ) -> TrainingOutcome:
        """What every summarize step records: the request and its parameters, the dataset with
        its digest, the code version, the comparison of candidates and the held-out metrics;
        ``details`` add what is the pipeline's own (artifacts, features, target, ...)."""
        request, params = self.request_of(record)
        dataset: dict[str, Any] = {
            "path": request.dataset,
            "source": request.dataset_source,
            "sha256": request.dataset_sha256,
        }
        if request.new_rows:
            dataset["new_rows"] = request.new_rows
        return TrainingOutcome(
            model=self.model_name,
            params=params,
            dataset=dataset | dict(prepared),
            code_version=code_version(),
            candidates=compared["candidates"],
            chosen=compared["chosen"],
            selection_metric=compared["selection_metric"],
            heldout=fitted["heldout"],
            **details,
        )


@dataclass(frozen=True)
class TrainingRequest:
    """The record of a training item. ``dataset`` is a snapshot inside storage (by digest)."""

    model: str
    dataset: str
    dataset_source: str
    dataset_sha256: str
    params: dict[str, Any] = field(default_factory=dict)
    trigger: str = "cli"
    requested_by: str = "unknown"
    requested_at: str = ""
    # A delivery from a model repository (docs/cicd.md): commit, repository, gate; else empty.
    delivery: dict[str, Any] = field(default_factory=dict)
    # A data trigger's run: {"fire": K, "new": N, "total": M}: it trained on the labelled rows
    # with fire <= K (M rows, N of them new), appended in id order to the dataset; else empty.
    new_rows: dict[str, int] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Any, model: str) -> TrainingRequest:
        """The request of a training item of ``model``; its dataset must be that model's
        snapshot named by its digest, ``datasets/<model>/<sha256>.csv``, nothing else."""
        if not isinstance(record, dict):
            raise PermanentStepError("a training item's record must be a JSON object")
        try:
            request = cls(**record)
        except TypeError as error:
            raise PermanentStepError(
                f"not a training request ({error}); submit training with `conveyor train`."
            ) from error
        if request.model != model:
            raise PermanentStepError(
                f"this pipeline trains {model!r}, not {request.model!r}; submit training "
                "with `conveyor train` or POST /api/v1/models/{name}/train."
            )
        check_snapshot_path(model, request.dataset, request.dataset_sha256)
        return request


SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def snapshot_path(model: str, digest: str) -> str:
    """Where the dataset snapshot of ``model`` with content digest ``digest`` is stored."""
    return f"{DATASETS_FOLDER}/{model}/{digest}.csv"


def check_snapshot_path(model: str, path: Any, digest: Any) -> None:
    """Refuse every dataset path but ``datasets/<model>/<sha256>.csv`` (no ``..``, no other
    folder, no other name): a training item reads only snapshots the server stored."""
    valid = isinstance(digest, str) and SHA256_HEX.fullmatch(digest) is not None
    if not valid or path != snapshot_path(model, digest):
        raise PermanentStepError(
            f"dataset {str(path)[:200]!r} is not a dataset snapshot of model {model!r} "
            f"(it must be {DATASETS_FOLDER}/{model}/<sha256>.csv, with the digest of "
            "dataset_sha256); submit training with `conveyor train` or "
            "POST /api/v1/models/{name}/train, which store the dataset."
        )


class TrainingThroughItemsError(InputRejectedError):
    """Training items are made by the server (dataset snapshot, provenance), never sent."""

    code = "training_pipeline"


def refuse_training_records(pipeline: Pipeline) -> None:
    if isinstance(pipeline, TrainingPipeline):
        raise TrainingThroughItemsError(
            f"pipeline {pipeline.name!r} trains the model {pipeline.model_name!r}: its items "
            "are made by the server, not submitted as records. Start a run with "
            f"POST /api/v1/models/{pipeline.model_name}/train or `conveyor train "
            f"{pipeline.model_name}`."
        )


@dataclass(frozen=True)
class TrainingOutcome:
    """The result of a training item: enough to log the run and register the version.

    ``candidates`` holds cross-validated {metric: {"mean", "std"}} per candidate; ``heldout``
    the chosen model's metrics on the held-out rows; ``artifacts`` file names in the work folder
    (``model`` a joblib file, ``onnx`` when exported, ``heldout`` and ``train`` CSV tables).
    """

    model: str
    params: dict[str, Any]
    dataset: dict[str, Any]
    code_version: str
    candidates: dict[str, dict[str, dict[str, float]]]
    chosen: str
    selection_metric: str
    heldout: dict[str, float]
    artifacts: dict[str, str]
    onnx: dict[str, Any] = field(default_factory=dict)
    features: list[str] = field(default_factory=list)
    target: str = ""
    candidate_prefix: str = "cv"  # "cv" (cross-validation) or "val" (a validation split)
    evaluation: str = ""  # how candidates were compared, in words
    baseline: dict[str, float] = field(default_factory=dict)  # a baseline on held-out data

    def to_result(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_result(cls, result: Any) -> TrainingOutcome:
        if not isinstance(result, Mapping):
            raise ValueError(f"not the result of a training run: {str(result)[:200]}")
        return cls(**result)

    def flat_params(self) -> dict[str, str]:
        """Params as MLflow stores them: strings, lists as JSON."""
        flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in self.params.items()}
        return (
            flat
            | {
                "dataset_sha256": self.dataset["sha256"],
                "dataset_source": self.dataset["source"],
                "dataset_rows": str(self.dataset["rows"]),
                "code_version": self.code_version,
                "chosen_candidate": self.chosen,
            }
            | {k: str(v) for k, v in self.onnx.items() if isinstance(v, str)}
        )

    def flat_metrics(self) -> dict[str, float]:
        prefix = self.candidate_prefix
        metrics = {f"heldout_{name}": value for name, value in self.heldout.items()}
        metrics |= {f"baseline_{name}": value for name, value in self.baseline.items()}
        for candidate, scores in self.candidates.items():
            for metric, summary in scores.items():
                metrics[f"{prefix}_{candidate}_{metric}"] = summary["mean"]
                metrics[f"{prefix}_{candidate}_{metric}_std"] = summary["std"]
        for metric, summary in self.candidates[self.chosen].items():
            metrics[f"{prefix}_{metric}"] = summary["mean"]
        return metrics | {k: v for k, v in self.onnx.items() if isinstance(v, int | float)}


def parse_param(text: str) -> tuple[str, Any]:
    """``k=v`` from the command line; ``v`` is read as JSON when it parses, else as text."""
    name, separator, value = text.partition("=")
    if not separator or not name.strip():
        raise InputRejectedError(f"--param {text!r} must look like NAME=VALUE")
    try:
        return name.strip(), json.loads(value)
    except json.JSONDecodeError:
        return name.strip(), value
