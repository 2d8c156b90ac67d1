"""Batch scoring jobs, what the CLI and the API call: prepare (find the job for the output or
plan a new one) and run (stream the parts left through a Ray actor pool, recording each)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConveyorError, InvalidStateError
from conveyor.scoring import jobs
from conveyor.scoring.jobs import JobView
from conveyor.scoring.outputs import finish_output, merge_rejects, output_exists
from conveyor.scoring.parts import Destination, PartResult
from conveyor.scoring.plan import DEFAULT_BLOCK_SIZE, Part, expand_inputs, plan_parts

if TYPE_CHECKING:
    from conveyor.installation import Installation
    from conveyor.models.registry import ModelRegistry
    from conveyor.serving.predictors import LoadedVersion

DEFAULT_ALIAS = "champion"
OUTPUT_FORMATS = ("parquet", "csv")


class TooManyRejectsError(ConveyorError):
    code = "too_many_rejects"
    http_status = 422


@dataclass(frozen=True)
class ScoreRequest:
    model: str
    inputs: tuple[str, ...]
    output: str
    version: int | None = None
    alias: str | None = None
    columns: tuple[str, ...] | None = None
    output_format: str = "parquet"
    max_rejects: int | None = None  # None: no limit
    block_size: int = DEFAULT_BLOCK_SIZE
    parallelism: int | None = None  # None: one actor per CPU of the Ray cluster
    requested_by: str = "cli"


@dataclass
class PreparedJob:
    job_id: str
    loaded: LoadedVersion | None  # None when the job had finished already
    destination: Destination
    pending: list[Part]
    view: JobView  # as it stood when prepared
    resumed: bool


ProgressCallback = Callable[[PartResult, JobView], None]


class BatchScoring:
    def __init__(self, installation: Installation) -> None:
        self.installation = installation

    @cached_property
    def tracking(self) -> ModelRegistry:
        from conveyor.models.registry import ModelRegistry

        settings = self.installation.settings
        return ModelRegistry.for_home(
            settings.home, settings.mlflow_tracking_uri, settings.init_lock_timeout_seconds
        )

    def prepare(self, request: ScoreRequest) -> PreparedJob:
        """The job writing ``request.output``: the unfinished one to resume, or a new one."""
        _check_request(request)
        request = _normalised(request)
        with self.installation.sessions.begin() as session:
            job = jobs.latest_for_output(session, request.output)
            found = jobs.job_view(session, job.id) if job else None
        if found is not None and found.status != jobs.SUCCEEDED:
            return self._resume(found, request)
        if found is not None and output_exists(found.output):
            return PreparedJob(found.id, None, _destination(request), [], found, resumed=True)
        return self._create(request)

    def _create(self, request: ScoreRequest) -> PreparedJob:
        version = self._version(request)
        loaded = self._load(request.model, version)
        needed = (*loaded.signature.names, *(request.columns or ()))
        parts = plan_parts(expand_inputs(list(request.inputs)), request.block_size, needed)
        fields = {
            "model": request.model,
            "version": version,
            "dataset_sha256": loaded.dataset_sha256,
            "output": request.output,
            "inputs": list(request.inputs),
            "options": _options(request),
            "requested_by": request.requested_by,
        }
        with self.installation.sessions.begin() as session:
            job_id = jobs.create_job(session, fields, parts)
        with self.installation.sessions() as session:
            view = jobs.job_view(session, job_id)
        return PreparedJob(job_id, loaded, _destination(request), parts, view, resumed=False)

    def _resume(self, found: JobView, request: ScoreRequest) -> PreparedJob:
        _check_same_job(found, request)
        options = {**found.options, "max_rejects": request.max_rejects}
        destination = Destination(
            found.output, options["output_format"], _tuple(options.get("columns"))
        )
        with self.installation.sessions.begin() as session:
            jobs.set_options(session, found.id, options)
            jobs.set_status(session, found.id, jobs.RUNNING)
            pending = jobs.pending_parts(session, found.id)
        loaded = self._load(found.model, found.version)
        view = replace(found, options=options)  # this run's limit, the job's counts so far
        return PreparedJob(found.id, loaded, destination, pending, view, resumed=True)

    def resume_job(self, job_id: str) -> PreparedJob:
        """The stored job ready to go on, with the options it was started with."""
        found = self.status(job_id)
        options = found.options
        request = ScoreRequest(
            model=found.model,
            inputs=tuple(found.inputs),
            output=found.output,
            version=found.version,
            columns=_tuple(options.get("columns")),
            output_format=options.get("output_format", "parquet"),
            max_rejects=options.get("max_rejects"),
            requested_by=found.requested_by,
        )
        return self._resume(found, request)

    def fail_job(self, job_id: str, error: BaseException) -> None:
        message = str(error) if isinstance(error, ConveyorError) else repr(error)
        with self.installation.sessions.begin() as session:
            jobs.set_status(session, job_id, jobs.FAILED, message[:4000])

    def _version(self, request: ScoreRequest) -> int:
        if request.version is not None:
            self.tracking.version(request.model, request.version)  # raises when unknown
            return request.version
        alias = request.alias or DEFAULT_ALIAS
        aliases = self.tracking.aliases(request.model)
        if alias not in aliases:
            raise InvalidStateError(
                f"model {request.model!r} has no version with the alias {alias!r} (it has "
                f"{', '.join(sorted(aliases)) or 'none'}); pass --version N or --alias NAME."
            )
        return aliases[alias]

    def _load(self, model: str, version: int) -> LoadedVersion:
        from conveyor.serving.predictors import load_version

        return load_version(self.tracking, model, version, self._nullable(model))

    def _nullable(self, model: str) -> frozenset[str]:
        """Fields the training schema allows to be missing (heart's ``ca``, ``thal``), as in
        serving."""
        schema = getattr(self.installation.registry.trainer_of(model), "schema", None)
        if schema is None:
            return frozenset()
        return frozenset(c.name for c in schema.columns if c.missing_allowed)

    def run(self, prepared: PreparedJob, on_part: ProgressCallback | None = None) -> JobView:
        """Score the parts left, recording each as it commits; fails the job (and raises) when
        the rejects pass the limit or anything else goes wrong."""
        if prepared.loaded is None:
            return prepared.view
        try:
            self._score(prepared, on_part)
        except BaseException as error:
            self._fail(prepared, error)
            raise
        finish_output(prepared.destination.output)
        merge_rejects(prepared.destination.output)
        with self.installation.sessions.begin() as session:
            jobs.set_status(session, prepared.job_id, jobs.SUCCEEDED)
        return self.status(prepared.job_id)

    def connect_ray(self) -> None:
        """Join or start Ray as the engine does (``run`` does it too, if not done before)."""
        from conveyor.engine.executor import ensure_ray

        settings = self.installation.settings
        ensure_ray(settings.ray_address, settings.ray_num_cpus)

    def _score(self, prepared: PreparedJob, on_part: ProgressCallback | None) -> None:
        from conveyor.scoring.runner import score_parts

        assert prepared.loaded is not None
        self.connect_ray()
        limit = prepared.view.options.get("max_rejects")
        rejected = prepared.view.rows_rejected
        parallelism = prepared.view.options.get("parallelism") or _cluster_cpus()
        for result in score_parts(
            prepared.pending, prepared.loaded, prepared.destination, parallelism
        ):
            with self.installation.sessions.begin() as session:
                if jobs.record_part(session, prepared.job_id, result):
                    rejected += result.rows_rejected
            if on_part is not None:
                on_part(result, prepared.view)
            if limit is not None and rejected > limit:
                raise TooManyRejectsError(
                    f"{rejected:,} rejected rows, more than --max-rejects {limit:,}; see "
                    f"{prepared.destination.output}/_rejects.csv for each file, line and problem."
                    " Fix the input, or raise the limit and run the same command to go on."
                )

    def _fail(self, prepared: PreparedJob, error: BaseException) -> None:
        message = str(error) if isinstance(error, ConveyorError) else repr(error)
        if isinstance(error, KeyboardInterrupt):
            message = "interrupted; run the same command again to go on"
        try:
            merge_rejects(prepared.destination.output)
        finally:
            with self.installation.sessions.begin() as session:
                jobs.set_status(session, prepared.job_id, jobs.FAILED, message[:4000])

    def status(self, job_id: str) -> JobView:
        with self.installation.sessions() as session:
            return jobs.job_view(session, job_id)


def _cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _check_request(request: ScoreRequest) -> None:
    if request.version is not None and request.alias is not None:
        raise InvalidStateError("give --version or --alias, not both.")
    if request.output_format not in OUTPUT_FORMATS:
        raise InvalidStateError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}.")
    if not request.inputs:
        raise InvalidStateError("name at least one input file, folder or glob.")
    if request.block_size < 1024:
        raise InvalidStateError("the block size must be at least 1 KiB.")


def _normalised(request: ScoreRequest) -> ScoreRequest:
    inputs = tuple(_absolute(given) for given in request.inputs)
    return replace(request, inputs=inputs, output=_absolute(request.output).rstrip("/"))


def _absolute(given: str) -> str:
    """Local paths made absolute, so that a job is found again from any folder."""
    return given if "://" in given else os.path.abspath(given)


def _options(request: ScoreRequest) -> dict[str, Any]:
    return {
        "columns": list(request.columns) if request.columns else None,
        "output_format": request.output_format,
        "block_size": request.block_size,
        "max_rejects": request.max_rejects,
        "parallelism": request.parallelism,
    }


def _destination(request: ScoreRequest) -> Destination:
    return Destination(request.output, request.output_format, request.columns)


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values else None


def _check_same_job(found: JobView, request: ScoreRequest) -> None:
    differences = []
    if found.model != request.model:
        differences.append(f"model {found.model}")
    if found.inputs != list(request.inputs):
        differences.append(f"inputs {' '.join(found.inputs)}")
    if request.version is not None and request.version != found.version:
        differences.append(f"version {found.version}")
    if differences:
        raise InvalidStateError(
            f"{found.output} belongs to the unfinished scoring job {found.id} with "
            f"{', '.join(differences)}; run that command again to finish it, or write to "
            "another output folder."
        )
