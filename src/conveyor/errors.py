"""One exception hierarchy for Conveyor; every message says what was wrong and what to do."""


class ConveyorError(Exception):
    """Base of all errors Conveyor raises on purpose."""

    code = "conveyor_error"


class ConfigurationError(ConveyorError):
    code = "configuration_error"


class PipelineDefinitionError(ConveyorError):
    """A pipeline or step is declared wrongly (cycle, unknown dependency, bad signature)."""

    code = "pipeline_definition_error"


class UnknownPipelineError(ConveyorError):
    code = "unknown_pipeline"


class InputRejectedError(ConveyorError):
    """A submitted file or record cannot be accepted (unreadable, outside the allowed area)."""

    code = "input_rejected"


class InputTooLargeError(InputRejectedError):
    code = "too_large"


class ItemNotFoundError(ConveyorError):
    code = "not_found"


class InvalidStateError(ConveyorError):
    """The requested action does not apply to the item in its current state."""

    code = "invalid_state"


class PermanentStepError(ConveyorError):
    """Raised by a step when retrying cannot help (bad input): the item fails at once."""

    code = "permanent_step_error"


class StepTimeoutError(ConveyorError):
    """A step ran past its ``timeout_seconds`` and was interrupted; it is retried like any
    transient failure. Raise the step's timeout if it needs longer."""

    code = "step_timeout"
