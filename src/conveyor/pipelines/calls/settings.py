"""The ``calls`` settings: one object read from ``CONVEYOR_CALLS_*`` environment variables."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class CallsSettings(BaseSettings):
    """Every knob of the ``calls`` pipeline, with safe offline defaults (docs/calls.md)."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_CALLS_", extra="ignore")

    whisper_model: Path | None = None  # a local faster-whisper model folder; default: base
    compute_type: str = "int8"
    gpus: float = 0.0  # GPUs the transcribe step asks Ray for (read when the module loads)
    cpu_threads: int = 2
    beam_size: int = 1
    batch_size: int = 4  # Whisper windows decoded together
    language: str | None = "en"  # None: detect
    window_seconds: float = 30.0  # longest audio given to Whisper at once (cut at silences)
    channel_roles: dict[int, str] = Field(default_factory=dict)  # {"0": "agent", "1": ...}
    min_speakers: int = 2  # a mono call has at least this many voices (agent and customer)
    max_speakers: int = 4  # and at most this many (the count between is found from the audio)
    diarisation_model: Path | None = None  # a local pyannote pipeline folder (config.yaml)
    speaker_embedding_model: Path | None = None  # a local .onnx or pyannote embedding model
    emotion_model: Path | None = None  # a folder with model.onnx + tokenizer.json
    summary_url: str | None = None  # an OpenAI-compatible base URL (…/v1)
    summary_model: str = "gpt-4o-mini"
    summary_key_env: str = "OPENAI_API_KEY"  # the variable holding the endpoint's key
    summary_timeout_seconds: float = 30.0
    anger_threshold: float = 0.35
    sadness_threshold: float = 0.45
    satisfaction_threshold: float = 2.5
    agent_talk_share: float = 0.8
    long_silence_seconds: float = 8.0
    interruptions: int = 3
    max_duration_seconds: float = 7200.0  # longer recordings are refused (memory: 64 KB/s/channel)
    step_timeout_seconds: float = 3600.0  # every calls step is interrupted after this long

    @model_validator(mode="after")
    def _speaker_bounds_in_order(self) -> CallsSettings:
        if not 1 <= self.min_speakers <= self.max_speakers:
            raise ValueError(
                f"CONVEYOR_CALLS_MIN_SPEAKERS={self.min_speakers} and MAX_SPEAKERS="
                f"{self.max_speakers}: need 1 <= min_speakers <= max_speakers"
            )
        return self


@cache
def calls_settings() -> CallsSettings:
    return CallsSettings()
