"""Scoring one part, the unit of commit: parse, predict, write the output under a temporary
name and rename it into place. Runs on a Ray worker; touches no database and no MLflow.

Output names depend only on the part's number (``part-000042.parquet``), so a part scored
twice (a crash between the rename and the record) replaces its file instead of adding rows.
"""

from __future__ import annotations

import os
import resource
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]

from conveyor.models.onnx import INPUT_NAME
from conveyor.scoring.parse import Layout, ParsedPart, Reject, parse_part
from conveyor.scoring.plan import Part
from conveyor.serving.predictors import LoadedVersion

REJECTS_FOLDER = "_rejects"
REJECT_COLUMNS = ["file", "line", "problem", "text"]
OUTPUT_COLUMNS = ("prediction", "probability", "model", "model_version", "dataset_sha256")
# Parquet dictionary-encodes these; the input columns kept (row ids, mostly) and the
# probability are nearly all distinct, and hashing them only to give up costs a third of a write.
DICTIONARY_COLUMNS = ["prediction", "model", "model_version", "dataset_sha256"]
# ONNX Runtime over a whole part runs at half speed: intermediate tensors of this many rows
# stay in cache and reuse their buffers (the session has no memory arena).
ONNX_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class PartResult:
    index: int
    rows_scored: int
    rows_rejected: int
    peak_rss_bytes: int  # of the worker process so far

    def to_wire(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass(frozen=True)
class Destination:
    output: str  # a folder: local path or fsspec URL
    output_format: str  # parquet or csv
    columns: tuple[str, ...] | None  # input columns to keep; None: all


def score_part(part: Part, loaded: LoadedVersion, destination: Destination) -> PartResult:
    layout = Layout(loaded.signature, destination.columns)
    parsed = parse_part(part, layout)
    if parsed.table.num_rows:
        table = scored_table(parsed, loaded, destination.columns)
        _write(table, destination, f"part-{part.index:06d}.{destination.output_format}")
    if parsed.rejects:
        name = f"{REJECTS_FOLDER}/part-{part.index:06d}.csv"
        _write(_rejects_table(parsed.rejects), destination, name, "csv")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return PartResult(part.index, parsed.table.num_rows, len(parsed.rejects), peak)


def scored_table(
    parsed: ParsedPart, loaded: LoadedVersion, columns: tuple[str, ...] | None
) -> pa.Table:
    table = parsed.table
    labels, probabilities = predict(loaded, table)
    kept = [n for n in columns if n in table.column_names] if columns else table.column_names
    count = table.num_rows
    extra = [
        labels,
        pa.array(probabilities, type=pa.float64()),
        _constant(loaded.model, count),
        pa.array(np.full(count, loaded.version, dtype=np.int64)),
        _constant(loaded.dataset_sha256, count),
    ]
    return pa.table([*(table.column(n) for n in kept), *extra], names=[*kept, *OUTPUT_COLUMNS])


def _constant(value: str | None, count: int) -> pa.Array:
    """One string ``count`` times as a dictionary of one entry: no copy per row to build, and
    Parquet writes the dictionary as it is instead of hashing every row to find it."""
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(count, dtype=np.int32)), pa.array([value], pa.string())
    )


def predict(loaded: LoadedVersion, table: pa.Table) -> tuple[pa.Array, Any]:
    """Labels and the probability (of class 1 for a binary classifier, else of the label;
    rounded to 6 places like the REST answer); a pyfunc model gives no probability."""
    names = loaded.signature.names
    form = loaded.predictor.form
    if form in ("onnx", "sklearn"):
        matrix = np.column_stack(
            [table.column(n).to_numpy(zero_copy_only=False).astype(np.float32) for n in names]
        )
        labels, probabilities = _classify(loaded, matrix)
        return pa.array(np.asarray(labels)), np.round(_chosen(probabilities), 6)
    outputs = loaded.predict(table.select(list(names)).to_pylist())
    return _plain_array(outputs), [None] * len(outputs)


def _classify(loaded: LoadedVersion, matrix: np.ndarray) -> tuple[Any, Any]:
    predictor: Any = loaded.predictor
    if predictor.form == "onnx":
        outputs = [
            predictor.session.run(None, {INPUT_NAME: matrix[start : start + ONNX_BATCH_ROWS]})
            for start in range(0, max(len(matrix), 1), ONNX_BATCH_ROWS)
        ]
        labels = np.concatenate([np.asarray(output[0]) for output in outputs])
        return labels, np.concatenate([np.asarray(output[1]) for output in outputs])
    import pandas as pd  # type: ignore[import-untyped]

    frame = pd.DataFrame(matrix.astype(float), columns=list(loaded.signature.names))
    return predictor.model.predict(frame), predictor.model.predict_proba(frame)


def _chosen(probabilities: Any) -> np.ndarray:
    values = np.asarray(probabilities, dtype=np.float64)
    if values.ndim == 2 and values.shape[1] == 2:
        return values[:, 1]
    return values.max(axis=1)


def _plain_array(outputs: list[Any]) -> pa.Array:
    import orjson

    if all(isinstance(value, int | float | str | bool) for value in outputs):
        return pa.array(outputs)
    return pa.array([orjson.dumps(value).decode() for value in outputs], type=pa.string())


def _rejects_table(rejects: list[Reject]) -> pa.Table:
    rows = [reject.as_row() for reject in rejects]
    columns = list(zip(*rows, strict=True))
    return pa.table(
        [pa.array(columns[0]), pa.array(columns[1], pa.int64()), pa.array(columns[2]),
         pa.array(columns[3])],
        names=REJECT_COLUMNS,
    )  # fmt: skip


def _write(table: pa.Table, destination: Destination, name: str, kind: str | None = None) -> None:
    """Whole or not at all: a local file is written under a temporary name, flushed to disk
    and renamed; an object store makes an object visible only once its upload completes."""
    import fsspec  # type: ignore[import-untyped]

    filesystem, folder = fsspec.core.url_to_fs(destination.output)
    final = f"{folder.rstrip('/')}/{name}"
    kind = kind or destination.output_format
    if not _is_local(filesystem):
        with filesystem.open(final, "wb") as handle:
            _encode(table, handle, kind)
        return
    os.makedirs(os.path.dirname(final), exist_ok=True)
    temporary = f"{os.path.dirname(final)}/.{os.path.basename(final)}.{uuid.uuid4().hex}.tmp"
    with open(temporary, "wb") as handle:
        _encode(table, handle, kind)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, final)


def _is_local(filesystem: Any) -> bool:
    protocol = filesystem.protocol
    return "file" in (protocol if isinstance(protocol, tuple | list) else (protocol,))


def _encode(table: pa.Table, handle: Any, kind: str) -> None:
    if kind == "parquet":
        import pyarrow.parquet as parquet  # type: ignore[import-untyped]

        parquet.write_table(table, handle, compression="zstd", use_dictionary=DICTIONARY_COLUMNS)
    else:
        from pyarrow import csv as arrow_csv

        arrow_csv.write_csv(table, handle)
