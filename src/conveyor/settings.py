"""All configuration in one place: environment variables (CONVEYOR_*) and a config file.

Precedence: explicit arguments > environment > ``<home>/conveyor.toml`` > defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from conveyor.errors import ConfigurationError

DEFAULT_HOME = "./conveyor-data"
CONFIG_FILE_NAME = "conveyor.toml"


class ModelSettings(BaseModel):
    """Per-model training settings, e.g. ``[models.heart]`` in conveyor.toml (docs/models.md)."""

    model_config = {"extra": "forbid"}

    dataset: str | None = None  # file trained on when a run names none
    params: dict[str, Any] = Field(default_factory=dict)  # default parameters of every run
    promotion_metric: str | None = None  # held-out metric the gate compares (default: model's)
    promotion_margin: float = 0.0  # promote unless worse than the champion by more than this
    schedule: str | None = None  # cron expression (UTC): train on a schedule
    retrain_after_rows: int | None = Field(None, ge=1)  # train after this many new rows
    # ... or once the oldest new row waited this long (rows from a stream, a trickle of data)
    retrain_after_minutes: float | None = Field(None, gt=0)
    retrain_on_events: list[str] = Field(default_factory=list)  # event types that start a run


class RetentionSettings(BaseModel):
    """Telemetry retention, ``[retention]`` in conveyor.toml (docs/monitoring.md). Days are
    how long rows are kept (unset: forever); raw rows go only once rolled up."""

    model_config = {"extra": "forbid"}

    predictions_days: float | None = Field(30, gt=0)  # raw prediction log rows
    feedback_days: float | None = Field(90, gt=0)  # labels and click/watch events
    step_runs_days: float | None = Field(180, gt=0)  # step runs of finished items
    minute_rollups_days: float | None = Field(90, gt=0)
    hour_rollups_days: float | None = Field(730, gt=0)
    stream_messages_days: float | None = Field(14, gt=0)  # identities of stream messages taken
    batch_rows: int = Field(2000, ge=1)  # rows deleted per short transaction
    batch_pause_seconds: float = Field(0.05, ge=0)  # pause between batches
    interval_minutes: float = Field(10, gt=0)  # how often `conveyor up` runs maintenance
    scheduled: bool = True  # `conveyor up` runs maintenance (off: cron `conveyor maintenance`)


class Settings(BaseSettings):
    """Settings of one Conveyor installation; everything lives under ``home``."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="forbid")

    home: Path = Field(default=Path(DEFAULT_HOME))
    database_url: str | None = None
    storage_url: str | None = None
    ray_address: str | None = None
    ray_num_cpus: int | None = None
    pipelines: Annotated[list[str], NoDecode] = Field(default_factory=list)
    lease_seconds: float = 30.0
    poll_interval_seconds: float = 0.05
    inbox_scan_seconds: float = 2.0
    inbox_settle_seconds: float = 1.0
    inflight_per_cpu: int = 16
    max_inflight_items: int = 2000
    init_lock_timeout_seconds: float = Field(600.0, gt=0)  # wait for another process's migration
    default_inbox_pipeline: str | None = None
    max_upload_bytes: int = 4 * 1024**3
    # Folders (shared mounts) and URL prefixes (s3://bucket/data) inputs may be submitted by
    # reference (docs/batch.md); none by default: references are refused.
    reference_roots: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_request_body_bytes: int = Field(1024**2, ge=1024)  # every body but streamed uploads
    login_concurrency: int | None = Field(None, ge=1)  # argon2 hashes at once (CPUs, max 4)
    login_wait_seconds: float = 2.0  # a login waits this long for a hashing slot, then 503
    login_attempts_per_user: int = 5  # per client address and user name, per window
    login_attempts_per_address: int = 30  # per client address, whatever the user names
    login_window_seconds: float = 60.0
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)
    api_host: str = "127.0.0.1"
    api_port: int = 8321
    auth_required: bool = True
    mlflow_tracking_uri: str | None = None  # default: SQLite + artifacts under <home>/mlflow
    mlflow_ui_url: str | None = None  # an MLflow UI to link to from the model pages
    models: dict[str, ModelSettings] = Field(default_factory=dict)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @field_validator("pipelines", "forwarded_allow_ips", "reference_roots", mode="before")
    @classmethod
    def _split_modules(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'conveyor.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return str((self.home / "storage").resolve())

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"


def load_settings(home: str | Path | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults, the home's config file, the environment and overrides."""
    home_path = Path(home or os.environ.get("CONVEYOR_HOME") or DEFAULT_HOME)
    file_values = _read_config_file(home_path / CONFIG_FILE_NAME)
    env_values = Settings().model_dump(exclude_unset=True)  # environment only
    merged = {**file_values, **env_values, **{k: v for k, v in overrides.items() if v is not None}}
    merged["home"] = home_path
    return Settings(**merged)


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(
            f"{path} is not valid TOML ({error}); fix the file or remove it to use defaults."
        ) from error
