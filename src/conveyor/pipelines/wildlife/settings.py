"""The ``wildlife`` settings: one object read from ``CONVEYOR_WILDLIFE_*`` environment variables."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class WildlifeSettings(BaseSettings):
    """Every knob of the ``wildlife`` pipeline, with offline defaults (docs/wildlife.md)."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_WILDLIFE_", extra="ignore")

    fps: float = 5.0  # frames analysed per second of video
    max_width: int = 960  # analysed frames are scaled down to this width
    max_frames: int = 900  # at most this many frames per file (3 min at 5 fps; then sparser)
    detector: Path | None = None  # a local ONNX object detector (MegaDetector v5/v6, YOLO)
    detector_classes: str = "animal,person,vehicle"  # the detector's class names, in order
    detector_threshold: float = 0.2
    pose_model: Path | None = None  # a local ONNX keypoint model (heatmap output)
    coco_detector: Path | None = None  # a Darknet YOLO folder; default: the packaged YOLOv3-tiny
    coco_threshold: float = 0.25  # least score of a person or vehicle box it finds
    min_score: float = 0.35  # least reported-group probability for a detection to count
    species_threshold: float = 0.5  # least class probability to name a species (else the group)
    min_area_fraction: float = 0.002  # smallest moving region, as a fraction of the frame
    motion_threshold: float = 28.0  # grey-level change (after lighting correction) that counts
    max_proposals: int = 6  # motion regions classified per frame
    relabel_every: int = 3  # a region that stays put is classified again after this many frames
    empty_threshold: float = 0.4  # a track needs this mean score to make a file non-empty
    min_track_frames: int = 2  # detections a track needs to be reported
    classifier_threads: int = 2
    gpus: float = 0.0  # GPUs Ray reserves for the detect step (CUDA is used when given one)
    model_cache_dir: Path | None = None  # where the classifier's ONNX export is kept
    max_detection_rows: int = 5000  # detections kept in the result and the detections table
    step_timeout_seconds: float = 900.0
    max_image_pixels: int = 64_000_000  # width x height of a photo
    max_frame_pixels: int = 8192 * 4320  # width x height of a video frame (8K)
    max_video_pixels: int = 1920 * 1080 * 30 * 3600  # frame pixels x frames: 1 h of 1080p30


@cache
def wildlife_settings() -> WildlifeSettings:
    return WildlifeSettings()
