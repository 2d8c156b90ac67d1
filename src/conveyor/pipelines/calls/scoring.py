"""The call-level logic behind the emotions, summarise and assess steps, over plain data
(the conversation as stored in ``conversation.json``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conveyor.pipelines.calls import assessment, summary
from conveyor.pipelines.calls import emotion_scores as emotions
from conveyor.pipelines.calls.settings import CallsSettings

LEXICON_METHOD = "NRC lexicon + VADER per utterance (negation, intensifiers, duration weights)"


def score_call(
    utterances: Sequence[Mapping], duration: float, model: Path | None
) -> dict[str, Any]:
    """Per-utterance emotions, then per speaker: duration-weighted means over the whole call
    and over its last third, and a satisfaction rating."""
    from conveyor.pipelines.calls import models

    analyser = models.vader()
    texts = [u["text"] for u in utterances]
    compounds = [analyser.polarity_scores(t)["compound"] for t in texts]
    if model is not None:
        from conveyor.pipelines.calls import classifier

        per_utterance = classifier.classify(str(model), texts)
        method = f"transformer classifier {model}"
    else:
        lexicon = models.nrc_lexicon()
        per_utterance = [
            emotions.utterance_emotions(t, c, emotions.lexicon_scores(t, lexicon))
            for t, c in zip(texts, compounds, strict=True)
        ]
        method = LEXICON_METHOD
    return {
        "method": method,
        "utterances": [
            {"start": u["start"], "speaker": u["speaker"], "compound": c, "emotions": e}
            for u, c, e in zip(utterances, compounds, per_utterance, strict=True)
        ],
        "speakers": _per_speaker(utterances, compounds, per_utterance, duration),
    }


def _per_speaker(
    utterances: Sequence[Mapping],
    compounds: Sequence[float],
    per_utterance: Sequence[dict[str, float]],
    duration: float,
) -> dict[str, dict[str, Any]]:
    rows = list(zip(utterances, compounds, per_utterance, strict=True))
    last_third = duration * 2 / 3
    found: dict[str, dict[str, Any]] = {}
    for speaker in dict.fromkeys(u["speaker"] for u in utterances):
        mine = [(u, c, e) for u, c, e in rows if u["speaker"] == speaker]
        overall = emotions.weighted_mean([(_seconds(u), e) for u, _, e in mine])
        late = [(_seconds(u), e) for u, _, e in mine if u["end"] >= last_third]
        positions = [(_seconds(u), u["start"] / max(duration, 1e-9), c) for u, c, _ in mine]
        found[speaker] = {
            "emotions": overall,
            "emotions_last_third": emotions.weighted_mean(late) if late else overall,
            "satisfaction": emotions.satisfaction(positions, overall),
            "top_emotion": emotions.top_emotion(overall),
        }
    return found


def _seconds(utterance: Mapping) -> float:
    return max(utterance["end"] - utterance["start"], 0.1)


def summarise_call(
    conversation: Mapping, settings: CallsSettings, log: logging.Logger
) -> dict[str, Any]:
    roles = {s["id"]: s["role"] for s in conversation["speakers"]}
    lines = [(roles.get(u["speaker"], "speaker"), u["text"]) for u in conversation["utterances"]]
    customer = [text for role, text in lines if role == "customer"]
    needed, cues = summary.follow_up(" ".join(t for _, t in lines), " ".join(customer[-2:]))
    text, method = summary.extractive_summary(lines), "extractive (TextRank)"
    if settings.summary_url:
        transcript = "\n".join(f"{role}: {text}" for role, text in lines)
        try:
            text = summary.endpoint_summary(
                settings.summary_url,
                settings.summary_model,
                os.environ.get(settings.summary_key_env),
                transcript,
                settings.summary_timeout_seconds,
            )
            method = f"{settings.summary_model} at {settings.summary_url}"
        except Exception as error:  # any endpoint failure: keep the offline summary
            log.warning("summary endpoint failed (%s); kept the extractive summary", error)
    return {
        "summary": text,
        "customer_issue": summary.customer_issue(customer),
        "follow_up": needed,
        "follow_up_cues": cues,
        "method": method,
    }


def build_result(
    decode: Mapping,
    diarise: Mapping,
    transcribe: Mapping,
    conversation: Mapping,
    turns: Sequence[Sequence],
    scored: Mapping,
    summarised: Mapping,
    settings: CallsSettings,
) -> dict[str, Any]:
    """The documented result shape (docs/calls.md), with the poor-call flag."""
    speakers = [
        speaker | scored["speakers"].get(speaker["id"], _no_speech())
        for speaker in conversation["speakers"]
    ]
    by_role = {s["role"]: s for s in reversed(speakers)}
    customer, agent = by_role.get("customer"), by_role.get("agent")
    talk_total = sum(s["talk_time_s"] for s in speakers)
    gaps = assessment.silences(turns, settings.long_silence_seconds)
    interrupted = (
        assessment.interruptions(turns, customer["id"], agent["id"]) if customer and agent else 0
    )
    poor, reasons = assessment.assess(
        customer, agent, talk_total, gaps, interrupted, _thresholds(settings)
    )
    return {
        "duration_s": decode["duration_s"],
        "channels": decode["channels"],
        "language": transcribe["language"],
        "speakers": speakers,
        "segments": [
            {k: u[k] for k in ("start", "end", "speaker", "text")}
            for u in conversation["utterances"]
        ],
        "summary": summarised["summary"],
        "customer_issue": summarised["customer_issue"],
        "follow_up": summarised["follow_up"],
        "flag": {"poor_call": poor, "reasons": reasons},
        "customer_satisfaction": customer["satisfaction"] if customer else None,
        "top_emotion": customer["top_emotion"] if customer else None,
        "warnings": decode["warnings"] + ([] if speakers else ["no speech found"]),
        "artifacts": {"audio": decode["listen"]} if decode.get("listen") else {},
        "models": {
            "transcription": transcribe["model"],
            "diarisation": diarise["method"],
            "emotions": scored["method"],
            "summary": summarised["method"],
        },
    }


def _no_speech() -> dict[str, Any]:
    zero = dict.fromkeys(emotions.EMOTIONS, 0.0)
    return {"emotions": zero, "emotions_last_third": zero, "satisfaction": 3.0, "top_emotion": None}


def _thresholds(settings: CallsSettings) -> assessment.Thresholds:
    return assessment.Thresholds(
        anger=settings.anger_threshold,
        sadness=settings.sadness_threshold,
        satisfaction=settings.satisfaction_threshold,
        agent_talk_share=settings.agent_talk_share,
        long_silence_seconds=settings.long_silence_seconds,
        interruptions=settings.interruptions,
    )
