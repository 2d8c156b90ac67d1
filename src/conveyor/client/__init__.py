"""Conveyor's Python client, for scripts and notebooks: submit files and records, wait with a
progress bar, read items, logs, artifacts and results (pandas, Arrow, polars), train, compare,
promote and roll back models, predict, and score files in batch.

>>> from conveyor.client import Client
>>> with Client("http://127.0.0.1:8321", token="cvy_...") as conveyor:
...     submitted = conveyor.submit_records("noop", [{"customer": 42}])
...     conveyor.wait(submitted)
...     frame = conveyor.results("noop").to_pandas()

Importing it loads httpx only: no Ray, MLflow or server code (docs/client.md).
"""

from conveyor.client.async_client import AsyncClient
from conveyor.client.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConveyorAPIError,
    ConveyorClientError,
    ConveyorConnectionError,
    FieldProblem,
    GatewayError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    RetryableError,
    ServerError,
    UnavailableError,
    ValidationError,
    WaitTimeoutError,
)
from conveyor.client.frames import ResultSet
from conveyor.client.models import (
    AliasChange,
    Endpoint,
    Item,
    ItemDetail,
    ItemResult,
    Me,
    Model,
    ModelSummary,
    ModelVersion,
    Pipeline,
    Predictions,
    StepRun,
    Submission,
    Training,
    VersionComparison,
)
from conveyor.client.scoring import BatchJob
from conveyor.client.sync import Client

__all__ = [
    "AliasChange",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "BatchJob",
    "Client",
    "ConflictError",
    "ConveyorAPIError",
    "ConveyorClientError",
    "ConveyorConnectionError",
    "Endpoint",
    "FieldProblem",
    "GatewayError",
    "Item",
    "ItemDetail",
    "ItemResult",
    "Me",
    "Model",
    "ModelSummary",
    "ModelVersion",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Pipeline",
    "Predictions",
    "RateLimitedError",
    "ResultSet",
    "RetryableError",
    "ServerError",
    "StepRun",
    "Submission",
    "Training",
    "UnavailableError",
    "ValidationError",
    "VersionComparison",
    "WaitTimeoutError",
]
