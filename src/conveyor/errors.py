"""One exception hierarchy for Conveyor; every message says what was wrong and what to do.

Each class states how the API answers it: ``http_status``, ``code`` and, for errors that pass,
``retry_after`` seconds. The API's one exception handler (api/errors.py) and the predict fast
path (serving/fastpath.py) read these and nothing else, so a new error needs no table entry.
"""

from __future__ import annotations

from typing import Any


class ConveyorError(Exception):
    """Base of all errors Conveyor raises on purpose."""

    code = "conveyor_error"
    http_status: int = 400
    retry_after: int | None = None  # seconds, sent as Retry-After
    details: Any = None  # names fields and problems, where the message alone cannot

    def http_body(self) -> dict[str, Any]:
        """The API's answer: ``{"error": {"code", "message", "details"}}``."""
        return {"error": {"code": self.code, "message": str(self), "details": self.details}}

    def http_headers(self) -> dict[str, str] | None:
        return None if self.retry_after is None else {"Retry-After": str(self.retry_after)}


class ConfigurationError(ConveyorError):
    code = "configuration_error"
    http_status = 500


class PipelineDefinitionError(ConveyorError):
    """A pipeline or step is declared wrongly (cycle, unknown dependency, bad signature)."""

    code = "pipeline_definition_error"


class UnknownPipelineError(ConveyorError):
    code = "unknown_pipeline"
    http_status = 404


class InputRejectedError(ConveyorError):
    """A submitted file or record cannot be accepted (unreadable, outside the allowed area)."""

    code = "input_rejected"
    http_status = 422


class InputTooLargeError(InputRejectedError):
    code = "too_large"
    http_status = 413


class ItemNotFoundError(ConveyorError):
    code = "not_found"
    http_status = 404


class InvalidStateError(ConveyorError):
    """The requested action does not apply to the item in its current state."""

    code = "invalid_state"
    http_status = 409


class PermanentStepError(ConveyorError):
    """Raised by a step when retrying cannot help (bad input): the item fails at once."""

    code = "permanent_step_error"


class StepTimeoutError(ConveyorError):
    """A step ran past its ``timeout_seconds`` and was interrupted; it is retried like any
    transient failure. Raise the step's timeout if it needs longer."""

    code = "step_timeout"
