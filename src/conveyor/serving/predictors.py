"""Loaded model versions and how they answer: ONNX through onnxruntime on a float32 matrix
where the version has an ONNX form, the native flavour otherwise (scikit-learn, or a pyfunc
model such as the movies recommender).

Loading goes through the registry seam (``models/registry.py``) and happens off the request
path (``reload.py``); a loaded version is immutable and shared by every request.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from conveyor.errors import ConveyorError
from conveyor.models.onnx import INPUT_NAME
from conveyor.serving.signature import Signature, from_mlflow

if TYPE_CHECKING:
    from conveyor.models.registry import ModelRegistry

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # logs, not a terminal
ONNX_ARTIFACT = "onnx/model.onnx"
DATASET_PARAM = "dataset_sha256"


class VersionLoadError(ConveyorError):
    """A version could not be loaded or did not answer its own input example."""

    code = "model_load_failed"


class Predictor(Protocol):
    form: str  # "onnx", "sklearn" or "pyfunc"

    def predict(self, records: list[dict[str, Any]], signature: Signature) -> list[Any]:
        """One output per record, JSON-ready."""
        ...


class OnnxClassifier:
    """A classifier exported by ``models/onnx.py``: input ``features``, outputs label and
    probabilities. One thread per session: replicas scale by process, not by thread."""

    form = "onnx"

    def __init__(self, onnx_bytes: bytes, memory_arena: bool = True) -> None:
        import onnxruntime  # type: ignore[import-untyped]

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # The arena keeps the largest batch's buffers for reuse: right for small requests,
        # ~40 MB held per batch-scoring worker for nothing (parts come seconds apart).
        options.enable_cpu_mem_arena = memory_arena
        self.onnx_bytes = onnx_bytes
        self.memory_arena = memory_arena
        self.session = onnxruntime.InferenceSession(
            onnx_bytes, options, providers=["CPUExecutionProvider"]
        )

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its ONNX bytes (a session is not picklable): batch scoring sends a
        loaded version to Ray workers."""
        return (OnnxClassifier, (self.onnx_bytes, self.memory_arena))

    def predict(self, records: list[dict[str, Any]], signature: Signature) -> list[Any]:
        labels, probabilities = self.session.run(None, {INPUT_NAME: signature.matrix(records)})
        return classifier_outputs(labels, probabilities)


class SklearnClassifier:
    form = "sklearn"

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, records: list[dict[str, Any]], signature: Signature) -> list[Any]:
        import pandas as pd  # type: ignore[import-untyped]

        table = pd.DataFrame(signature.matrix(records).astype(float), columns=signature.names)
        return classifier_outputs(self.model.predict(table), self.model.predict_proba(table))


class PyfuncModel:
    """An MLflow ``PythonModel``: records in as a table, one output row per record."""

    form = "pyfunc"

    def __init__(self, python_model: Any) -> None:
        self.python_model = python_model

    def predict(self, records: list[dict[str, Any]], signature: Signature) -> list[Any]:
        import pandas as pd

        signature.check(records)
        output = self.python_model.predict(None, pd.DataFrame(records, columns=signature.names))
        if isinstance(output, pd.DataFrame):
            return output.to_dict("records")
        return [_plain(value) for value in np.asarray(output).tolist()]


def classifier_outputs(labels: Any, probabilities: Any) -> list[dict[str, Any]]:
    """``probability`` is that of class 1 for a binary classifier, else of the label."""
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    if probabilities.ndim == 2 and probabilities.shape[1] == 2:
        chosen = probabilities[:, 1]
    else:
        chosen = probabilities.max(axis=1)
    return [
        {"label": _plain(label), "probability": round(float(p), 6)}
        for label, p in zip(labels.tolist(), chosen.tolist(), strict=True)
    ]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class LoadedVersion:
    model: str
    version: int
    dataset_sha256: str | None
    signature: Signature
    predictor: Predictor
    example: list[dict[str, Any]]  # the version's input example, as records

    @property
    def form(self) -> str:
        return self.predictor.form

    def predict(self, records: list[dict[str, Any]]) -> list[Any]:
        return self.predictor.predict(records, self.signature)

    def verify(self) -> None:
        """Answer the input example, or raise: a version that cannot is never served."""
        if not self.example:
            raise VersionLoadError(f"{self.model} v{self.version} has no input example.")
        outputs = self.predict(self.example)
        if len(outputs) != len(self.example):
            raise VersionLoadError(
                f"{self.model} v{self.version} answered {len(outputs)} outputs for "
                f"{len(self.example)} example records."
            )


def load_version(
    tracking: ModelRegistry, model: str, version: int, nullable: frozenset[str] = frozenset()
) -> LoadedVersion:
    """Load and verify a version fully; raises :class:`VersionLoadError` with the cause."""
    try:
        loaded = _load(tracking, model, version, nullable)
        loaded.verify()
    except VersionLoadError:
        raise
    except Exception as error:
        raise VersionLoadError(
            f"{model} v{version} could not be loaded: {type(error).__name__}: {error}"
        ) from error
    return loaded


def _load(
    tracking: ModelRegistry, model: str, version: int, nullable: frozenset[str]
) -> LoadedVersion:
    from mlflow.models import Model

    info = tracking.version(model, version)
    with tempfile.TemporaryDirectory(prefix="conveyor-serve-") as folder:
        local = _download_model(tracking, model, version, Path(folder) / "model")
        description = Model.load(str(local))
        if description.signature is None:
            raise VersionLoadError(f"{model} v{version} was logged without a signature.")
        signature = from_mlflow(description.signature.inputs, nullable)
        example = _example_records(description, local)
        predictor = _predictor(tracking, info, description, Path(folder))
    return LoadedVersion(
        model=model,
        version=version,
        dataset_sha256=info.params.get(DATASET_PARAM) or info.tags.get("conveyor.dataset_sha256"),
        signature=signature,
        predictor=predictor,
        example=example,
    )


def _download_model(tracking: ModelRegistry, model: str, version: int, target: Path) -> Path:
    import mlflow

    from conveyor.models.registry import _FLUENT_LOCK  # MLflow's URIs are process-global

    target.mkdir(parents=True)
    with _FLUENT_LOCK:
        mlflow.set_registry_uri(tracking.tracking_uri)
        mlflow.set_tracking_uri(tracking.tracking_uri)
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{model}/{version}", dst_path=str(target)
            )
        )


def _example_records(description: Any, local: Path) -> list[dict[str, Any]]:
    example = description.load_input_example(str(local))
    if example is None:
        return []
    if hasattr(example, "to_dict"):
        return [{k: _plain(v) for k, v in row.items()} for row in example.to_dict("records")]
    return list(example)


def _predictor(tracking: ModelRegistry, info: Any, description: Any, folder: Path) -> Predictor:
    onnx_path = _onnx_file(tracking, info.run_id, folder)
    if onnx_path is not None:
        return OnnxClassifier(onnx_path.read_bytes())
    if "sklearn" in description.flavors:
        return SklearnClassifier(tracking.load_sklearn(info.name, info.version))
    return PyfuncModel(tracking.load_python_model(info.name, info.version))


def _onnx_file(tracking: ModelRegistry, run_id: str | None, folder: Path) -> Path | None:
    if not run_id:
        return None
    artifacts = {a.path for a in tracking.client.list_artifacts(run_id, "onnx")}
    if ONNX_ARTIFACT not in artifacts:
        return None
    return tracking.download(run_id, ONNX_ARTIFACT, folder / "onnx")
