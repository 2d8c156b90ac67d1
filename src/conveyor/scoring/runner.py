"""Parts through Ray Data: a dataset of part descriptions, ``map_batches`` on a pool of
actors that each hold the model once and score one part per call (read, predict, write), and
the results streamed back to the driver, which records each part as it arrives.

Ray Data's streaming executor keeps a bounded number of parts in flight, so memory holds about
``parallelism`` parts (each a few times ``block_size``), whatever the input size; the results
that flow back are a few numbers per part.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson

from conveyor.scoring.parts import Destination, PartResult, score_part
from conveyor.scoring.plan import Part
from conveyor.serving.predictors import LoadedVersion

# The environment variables that configure object stores for fsspec (s3fs, gcsfs, adlfs).
STORAGE_ENVIRONMENT_PREFIXES = ("AWS_", "FSSPEC_", "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_")


class PartScorer:
    """A Ray Data actor: the loaded version, built once, scores every part it is given."""

    def __init__(self, loaded: list[Any], destination: Destination) -> None:
        import ray

        # The version travels as a reference inside a list: Ray resolves it here, once per
        # actor, instead of inlining the model into every actor's creation arguments.
        self.loaded: LoadedVersion = ray.get(loaded[0])
        self.destination = destination

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = [
            orjson.dumps(
                score_part(
                    Part.from_wire(orjson.loads(wire)), self.loaded, self.destination
                ).to_wire()
            ).decode()
            for wire in batch["part"]
        ]
        return {"result": np.array(results, dtype=object)}


def score_parts(
    parts: list[Part],
    loaded: LoadedVersion,
    destination: Destination,
    parallelism: int,
) -> Iterator[PartResult]:
    """Each part's result as it finishes (in no fixed order); the caller records it."""
    import ray.data

    if not parts:
        return
    _quiet(ray.data.DataContext.get_current())
    dataset = ray.data.from_items(
        [{"part": orjson.dumps(part.to_wire()).decode()} for part in parts],
        override_num_blocks=min(len(parts), 10_000),
    )
    with warnings.catch_warnings():  # ray_remote_args_fn: deprecated from Ray 2.60, still works
        warnings.simplefilter("ignore", DeprecationWarning)
        scored = _scored(dataset, loaded, destination, min(parallelism, len(parts)))
    for row in scored.iter_rows():
        yield PartResult(**orjson.loads(row["result"]))


def _scored(dataset: Any, loaded: LoadedVersion, destination: Destination, parallelism: int) -> Any:
    import ray.data

    return dataset.map_batches(
        PartScorer,
        fn_constructor_kwargs={"loaded": [ray.put(loaded)], "destination": destination},
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=max(1, parallelism)),
        num_cpus=1,
        ray_remote_args_fn=functools.partial(_actor_options, storage_environment()),
    )


def _actor_options(environment: dict[str, str]) -> dict[str, Any]:
    """A lost actor fails the run (the job resumes from its records) rather than restarting,
    which Ray warns cannot work for an actor whose arguments are in the object store."""
    options: dict[str, Any] = {"max_restarts": 0}
    if environment:
        options["runtime_env"] = {"env_vars": environment}
    return options


def storage_environment() -> dict[str, str]:
    """The driver's object-store settings (``AWS_ENDPOINT_URL``, keys, region, ``FSSPEC_*``),
    given to the actors so that they read and write ``s3://`` as the command does, whatever
    environment the cluster's workers were started with."""
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith(STORAGE_ENVIRONMENT_PREFIXES)
    }


def _quiet(context: Any) -> None:
    """Conveyor draws its own progress bar; Ray Data's would fight it for the terminal."""
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.verbose_stats_logs = False
    context.execution_options.preserve_order = False
