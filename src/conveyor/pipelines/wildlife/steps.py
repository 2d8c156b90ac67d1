"""The wildlife steps: decode -> detect -> track -> (pose, render) -> summarise.

Steps pass small JSON outputs; frames and detections travel as artifacts in the item's work
folder (``analysis/frames.npz``, ``analysis/detections.json``, ``analysis/tracks.json``). Heavy
modules (OpenCV, ONNX Runtime, torch, PyAV) are imported inside the steps, and models load
once per worker process.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from conveyor.pipeline import StepContext, step
from conveyor.pipelines.wildlife.settings import WildlifeSettings, wildlife_settings

FRAMES = "analysis/frames.npz"
DETECTIONS = "analysis/detections.json"
TRACKS = "analysis/tracks.json"
VIDEO = "annotated.mp4"
PLOT = "trajectories.png"
SHEET = "contact_sheet.png"
_SETTINGS = wildlife_settings()
_TIMEOUT = _SETTINGS.step_timeout_seconds


def device(context: StepContext) -> str:
    """ "cuda" when Ray gave this step a GPU and torch can use it, else "cpu"."""
    if not context.gpu_ids():
        return "cpu"
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:
        return "cpu"


def publish(context: StepContext, name: str, local: Path) -> str:
    """Make a file written at ``context.artifact_path(name)`` an artifact (uploads if remote)."""
    if context.storage.local_path(context.work_dir, name) != local:
        context.save_artifact(name, local.read_bytes())
    return name


@step(cpus=1, retries=1, timeout_seconds=_TIMEOUT)
def decode(context: StepContext) -> dict[str, Any]:
    from conveyor.pipelines.wildlife import media

    settings = wildlife_settings()
    started = time.perf_counter()
    sampled = media.sample(
        context.input_path(), settings.fps, settings.max_width, settings.max_frames
    )
    target = context.artifact_path(FRAMES)
    media.save_frames(target, sampled.frames, sampled.times)
    info = sampled.info
    height, width = sampled.frames[0].shape[:2]
    context.log.info(
        "%s: %s %dx%d, %.2f s, %d frames sampled",
        context.input_name,
        info.kind,
        info.width,
        info.height,
        info.duration_s,
        len(sampled.frames),
    )
    if sampled.warning:
        context.log.warning("%s", sampled.warning)
    return {
        "warnings": [sampled.warning] if sampled.warning else [],
        "kind": info.kind,
        "container": info.container,
        "source_size": [info.width, info.height],
        "size": [width, height],
        "duration_s": round(info.duration_s, 3),
        "frame_rate": round(info.frame_rate, 3),
        "captured_at": info.captured_at.isoformat() if info.captured_at else None,
        "fps": settings.fps,
        "frames": len(sampled.frames),
        "frames_file": publish(context, FRAMES, target),
        "seconds": round(time.perf_counter() - started, 3),
    }


def build_detector(settings: WildlifeSettings, on: str) -> Any:
    from conveyor.pipelines.wildlife import bystanders, detector, motion
    from conveyor.pipelines.wildlife.classifier import load_classifier

    classifier = load_classifier(
        on, settings.classifier_threads, str(settings.model_cache_dir or "")
    )
    if settings.detector is not None:
        names = [name.strip() for name in settings.detector_classes.split(",")]
        return detector.OnnxObjectDetector(
            settings.detector,
            names,
            classifier,
            settings.detector_threshold,
            on,
            settings.species_threshold,
        )
    regions = motion.MotionSettings(
        threshold=settings.motion_threshold,
        min_area_fraction=settings.min_area_fraction,
        max_regions=settings.max_proposals,
    )
    finder = bystanders.choose(
        settings.coco_detector, settings.coco_threshold, settings.classifier_threads
    )
    return detector.MotionClassifierDetector(
        classifier,
        regions,
        settings.min_score,
        settings.relabel_every,
        settings.species_threshold,
        finder,
    )


@step(cpus=1, gpus=_SETTINGS.gpus, memory_mb=1500, retries=1, timeout_seconds=_TIMEOUT)
def detect(context: StepContext, decode: dict[str, Any]) -> dict[str, Any]:
    from conveyor.pipelines.wildlife import media

    settings = wildlife_settings()
    started = time.perf_counter()
    frames, times = media.load_frames(context.local_path(decode["frames_file"]))
    on = device(context)
    found = build_detector(settings, on)
    if decode["kind"] == "image":
        detections = found.detect_image(frames[0])
    else:
        detections = found.detect_video(frames, times)
    context.log.info("%d detections by %s on %s", len(detections), found.name, on)
    return {
        "detector": found.name,
        "detector_version": found.version,
        "device": on,
        "detections": len(detections),
        "best_rejected": round(found.best_rejected, 4),
        "detections_file": context.save_json(DETECTIONS, [d.as_json() for d in detections]),
        "seconds": round(time.perf_counter() - started, 3),
    }


@step(cpus=1, retries=1, timeout_seconds=_TIMEOUT)
def track(context: StepContext, decode: dict[str, Any], detect: dict[str, Any]) -> dict[str, Any]:
    from conveyor.pipelines.wildlife import tracking
    from conveyor.pipelines.wildlife.detector import Detection

    settings = wildlife_settings()
    started = time.perf_counter()
    detections = [Detection.from_json(d) for d in context.load_json(detect["detections_file"])]
    if decode["kind"] == "image":
        track_ids, tracks = tracking.image_tracks(detections)
    else:
        raw_ids = tracking.assign_tracks(
            detections, decode["frames"], decode["fps"], settings.min_score
        )
        track_ids, tracks = tracking.build_tracks(detections, raw_ids, settings.min_track_frames)
    payload = {"track_ids": track_ids, "tracks": [t.as_json() for t in tracks]}
    return {
        "tracks": len(tracks),
        "tracks_file": context.save_json(TRACKS, payload),
        "seconds": round(time.perf_counter() - started, 3),
    }


def load_tracks(context: StepContext, track: dict[str, Any]) -> tuple[list[int | None], list[Any]]:
    from conveyor.pipelines.wildlife.tracking import Track

    stored = context.load_json(track["tracks_file"])
    tracks = [
        Track(**{**t, "best_box": tuple(t["best_box"]), "path": [tuple(p) for p in t["path"]]})
        for t in stored["tracks"]
    ]
    return stored["track_ids"], tracks


@step(cpus=1, retries=1, timeout_seconds=_TIMEOUT)
def pose(context: StepContext, decode: dict[str, Any], track: dict[str, Any]) -> dict[str, Any]:
    from conveyor.pipelines.wildlife import pose as pose_models

    settings = wildlife_settings()
    if settings.pose_model is None:
        return dict(pose_models.UNAVAILABLE)
    if not settings.pose_model.is_file():
        return {"available": False, "reason": f"pose model {settings.pose_model} not found"}
    from conveyor.pipelines.wildlife import media

    model = pose_models.load_pose_model(str(settings.pose_model), device(context))
    frames, _ = media.load_frames(context.local_path(decode["frames_file"]))
    _, tracks = load_tracks(context, track)
    keypoints = {str(t.track_id): model.keypoints(frames[t.best_frame], t.best_box) for t in tracks}
    return {"available": True, "model": model.name, "keypoints": keypoints}


@step(cpus=1, memory_mb=1500, retries=1, timeout_seconds=_TIMEOUT)
def render(
    context: StepContext, decode: dict[str, Any], detect: dict[str, Any], track: dict[str, Any]
) -> dict[str, Any]:
    from conveyor.pipelines.wildlife import media
    from conveyor.pipelines.wildlife import render as pictures
    from conveyor.pipelines.wildlife.detector import Detection

    started = time.perf_counter()
    frames, times = media.load_frames(context.local_path(decode["frames_file"]))
    detections = [Detection.from_json(d) for d in context.load_json(detect["detections_file"])]
    track_ids, tracks = load_tracks(context, track)
    outputs: dict[str, Any] = {}
    if decode["kind"] == "video":
        video = context.artifact_path(VIDEO)
        pictures.write_video(
            video, frames, times, detections, track_ids, decode["duration_s"], tracks
        )
        outputs["video"] = publish(context, VIDEO, video)
    plot = context.artifact_path(PLOT)
    backdrop = frames[len(frames) // 2]
    pictures.trajectory_plot(plot, backdrop, tracks, context.input_name or "")
    outputs["plot"] = publish(context, PLOT, plot)
    outputs["seconds"] = round(time.perf_counter() - started, 3)
    return outputs


@step(cpus=1, retries=1, timeout_seconds=_TIMEOUT)
def summarise(
    context: StepContext,
    decode: dict[str, Any],
    detect: dict[str, Any],
    track: dict[str, Any],
    pose: dict[str, Any],
    render: dict[str, Any],
) -> dict[str, Any]:
    import cv2

    from conveyor.pipelines.wildlife import media, summary
    from conveyor.pipelines.wildlife.detector import Detection

    settings = wildlife_settings()
    started = time.perf_counter()
    detections = [Detection.from_json(d) for d in context.load_json(detect["detections_file"])]
    track_ids, tracks = load_tracks(context, track)
    verdict = summary.summarise(
        tracks, detections, track_ids, detect["best_rejected"], settings.empty_threshold
    )
    artifacts = {k: v for k, v in render.items() if k != "seconds"}
    if tracks:
        frames, _ = media.load_frames(context.local_path(decode["frames_file"]))
        sheet = cv2.imencode(".png", summary.contact_sheet(frames, tracks))[1].tobytes()
        context.save_artifact(SHEET, sheet)
        artifacts["contact_sheet"] = SHEET
    rows = [
        {**d.as_json(), "track_id": track_id}
        for d, track_id in zip(detections, track_ids, strict=True)
    ]
    return {
        "file": {
            k: decode[k] for k in ("kind", "duration_s", "frames", "fps", "size", "captured_at")
        },
        **verdict,
        "detector": {
            "name": detect["detector"],
            "version": detect["detector_version"],
            "device": detect["device"],
        },
        "warnings": decode.get("warnings", []),
        "tracks": [t.as_json() for t in tracks],
        "detections": rows[: settings.max_detection_rows],
        "detections_total": len(rows),
        "pose": pose,
        "artifacts": artifacts,
        "seconds": {
            "decode": decode["seconds"],
            "detect": detect["seconds"],
            "track": track["seconds"],
            "render": render["seconds"],
            "summarise": round(time.perf_counter() - started, 3),
        },
    }
