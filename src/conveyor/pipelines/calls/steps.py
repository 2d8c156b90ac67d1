"""The ``calls`` steps: thin wrappers that read artifacts, call the pure modules and write
artifacts back. Step outputs stay small (they are committed to the database); audio, words
and the conversation live in the item's work folder and are passed on by name.

Heavy libraries (torch, faster-whisper, resemblyzer) are imported inside the steps, so that
discovering the pipeline stays cheap; their models load once per worker process.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

from conveyor.pipeline import StepContext, step
from conveyor.pipelines.calls.settings import CallsSettings, calls_settings

if TYPE_CHECKING:
    import numpy as np

    from conveyor.pipelines.calls.diarisation import Turn

AUDIO = "audio.npy"
LISTEN = "call.m4a"  # what the item page plays
TURNS = "turns.json"
WORDS = "words.json"
CONVERSATION = "conversation.json"
EMOTION_DETAIL = "emotions.json"
RESULT = "result.json"
_TIMEOUT = calls_settings().step_timeout_seconds
logger = logging.getLogger(__name__)


def load_audio(context: StepContext, name: str):  # type: ignore[no-untyped-def]
    import numpy as np

    pcm = np.load(context.local_path(name))
    return pcm.astype(np.float32) / 32767.0


@step(retries=1, memory_mb=512, timeout_seconds=_TIMEOUT)
def decode(context: StepContext) -> dict[str, Any]:
    import numpy as np

    from conveyor.pipelines.calls import audio

    decoded = audio.decode(context.input_path())
    samples, note = decoded.samples, None
    if decoded.channels == 2 and audio.same_channels(samples):
        samples, note = samples[:1], "both channels are identical: treated as mono"
    buffer = io.BytesIO()
    np.save(buffer, (np.clip(samples, -1, 1) * 32767).astype(np.int16))
    context.save_artifact(AUDIO, buffer.getvalue())
    context.save_artifact(LISTEN, audio.listening_copy(samples))
    warnings = [w for w in (note, decoded.warning) if w]
    for warning in warnings:
        context.log.warning("%s", warning)
    context.log.info(
        "decoded %s: %.1f s, %d channel(s)", context.input_name, decoded.duration, len(samples)
    )
    return {
        "audio": AUDIO,
        "listen": LISTEN,
        "duration_s": round(decoded.duration, 3),
        "channels": len(samples),
        "source_channels": decoded.source_channels,
        "warnings": warnings,
    }


def mono_turns(mono: np.ndarray, settings: CallsSettings) -> tuple[list[Turn], str]:
    """A mono call's turns and the method's name: the pyannote pipeline the settings point
    at, else spectral clustering of speaker embeddings (the local model the settings point at,
    else resemblyzer's)."""
    from conveyor.pipelines.calls import diarisation, embeddings, models, pyannote_diarisation
    from conveyor.pipelines.calls.clustering import SpeakerBounds

    bounds = SpeakerBounds(settings.min_speakers, settings.max_speakers)
    if settings.diarisation_model is not None:
        folder = settings.diarisation_model
        pipeline = models.pyannote_pipeline(str(folder))
        turns = pyannote_diarisation.pyannote_turns(pipeline, mono, bounds)
        return turns, pyannote_diarisation.METHOD.format(folder.name)
    if settings.speaker_embedding_model is not None:
        model = models.speaker_embedder(str(settings.speaker_embedding_model), settings.cpu_threads)
        turns = diarisation.mono_turns(mono, model.embed, bounds)
        return turns, f"voice embeddings ({model.name}), spectral clustering"
    turns = diarisation.mono_turns(mono, embeddings.embed_windows, bounds)
    return turns, "voice embeddings (resemblyzer), spectral clustering"


@step(retries=1, memory_mb=1024, timeout_seconds=_TIMEOUT)
def diarise(context: StepContext, decode: dict[str, Any]) -> dict[str, Any]:
    from conveyor.pipelines.calls import diarisation

    samples = load_audio(context, decode["audio"])
    if samples.shape[0] == 2:
        turns, channel_speakers = diarisation.stereo_turns(samples)
        method = "channels"
    else:
        turns, method = mono_turns(samples[0], CallsSettings())
        channel_speakers = {}
    speakers = sorted({t.speaker for t in turns})
    context.log.info("%d speaker(s) by %s, %d turns", len(speakers), method, len(turns))
    context.save_json(TURNS, [t.as_list() for t in turns])
    return {
        "turns": TURNS,
        "speakers": speakers,
        "method": method,
        "channel_speakers": channel_speakers,
    }


@step(retries=1, memory_mb=1536, gpus=calls_settings().gpus, timeout_seconds=_TIMEOUT)
def transcribe(context: StepContext, decode: dict[str, Any]) -> dict[str, Any]:
    from conveyor.pipelines.calls import diarisation, models, transcription
    from conveyor.pipelines.calls.settings import CallsSettings

    settings = CallsSettings()
    device = "cuda" if context.gpu_ids() else "cpu"
    compute = settings.compute_type if device == "cpu" else "float16"
    model_path = str(settings.whisper_model) if settings.whisper_model else None
    model = models.batched_whisper(model_path, device, compute, settings.cpu_threads)
    mono = load_audio(context, decode["audio"]).mean(axis=0)
    regions = diarisation.speech_regions(mono)
    options = transcription.whisper_options(
        settings.beam_size, settings.language or None, settings.batch_size
    )
    words, language = transcription.transcribe(
        model, mono, regions, settings.window_seconds, options
    )
    context.log.info("transcribed %d words on %s (%s)", len(words), device, compute)
    context.save_json(WORDS, [w.as_list() for w in words])
    return {
        "words": WORDS,
        "count": len(words),
        "language": language,
        "model": model_path or models.DEFAULT_WHISPER_NAME,
        "device": device,
    }


@step(retries=1, timeout_seconds=_TIMEOUT)
def roles(
    context: StepContext,
    decode: dict[str, Any],
    diarise: dict[str, Any],
    transcribe: dict[str, Any],
) -> dict[str, Any]:
    from conveyor.pipelines.calls import conversation as talk
    from conveyor.pipelines.calls import speaker_roles as role_rules
    from conveyor.pipelines.calls.settings import CallsSettings

    words = context.load_json(transcribe["words"])
    turns = context.load_json(diarise["turns"])
    if diarise["channel_speakers"]:
        channel_speakers = diarise["channel_speakers"]
        order = [channel_speakers[str(c)] for c in range(len(channel_speakers))]
        speakers = talk.speaker_by_channel(words, load_audio(context, decode["audio"]), order)
    else:
        speakers = talk.speaker_by_overlap(words, turns)
    utterances = talk.utterances(words, speakers)
    order = talk.speaker_order(utterances, turns)
    texts = {s: " ".join(u.text for u in utterances if u.speaker == s) for s in order}
    talk_time = talk.talk_times(turns)
    mapping = _channel_roles(diarise["channel_speakers"], CallsSettings().channel_roles)
    assigned = role_rules.assign_roles(texts, order, talk_time, mapping)
    context.save_json(
        CONVERSATION,
        {
            "utterances": [u.as_dict() | {"words": u.words} for u in utterances],
            "speakers": [
                {
                    "id": s,
                    "role": assigned[s][0],
                    "role_confidence": assigned[s][1],
                    "talk_time_s": round(talk_time.get(s, 0.0), 2),
                    "words": sum(u.words for u in utterances if u.speaker == s),
                    "text": texts[s],
                }
                for s in order
            ],
        },
    )
    return {"conversation": CONVERSATION, "roles": {s: list(assigned[s]) for s in order}}


def _channel_roles(channel_speakers: dict[str, str], configured: dict[int, str]) -> dict[str, str]:
    return {
        speaker: configured[int(channel)]
        for channel, speaker in channel_speakers.items()
        if int(channel) in configured
    }


@step(retries=1, timeout_seconds=_TIMEOUT)
def emotions(context: StepContext, decode: dict[str, Any], roles: dict[str, Any]) -> dict[str, Any]:
    from conveyor.pipelines.calls import scoring
    from conveyor.pipelines.calls.settings import CallsSettings

    conversation = context.load_json(roles["conversation"])
    model = CallsSettings().emotion_model
    scored = scoring.score_call(conversation["utterances"], decode["duration_s"], model)
    context.save_json(EMOTION_DETAIL, scored["utterances"])
    context.log.info("emotions by %s", scored["method"])
    return {"speakers": scored["speakers"], "method": scored["method"]}


@step(retries=1, timeout_seconds=_TIMEOUT)
def summarise(context: StepContext, roles: dict[str, Any]) -> dict[str, Any]:
    from conveyor.pipelines.calls import scoring
    from conveyor.pipelines.calls.settings import CallsSettings

    conversation = context.load_json(roles["conversation"])
    return scoring.summarise_call(conversation, CallsSettings(), context.log)


@step(retries=1, timeout_seconds=_TIMEOUT)
def assess(
    context: StepContext,
    decode: dict[str, Any],
    diarise: dict[str, Any],
    transcribe: dict[str, Any],
    roles: dict[str, Any],
    emotions: dict[str, Any],
    summarise: dict[str, Any],
) -> dict[str, Any]:
    from conveyor.pipelines.calls import scoring
    from conveyor.pipelines.calls.settings import CallsSettings

    conversation = context.load_json(roles["conversation"])
    turns = context.load_json(diarise["turns"])
    result = scoring.build_result(
        decode, diarise, transcribe, conversation, turns, emotions, summarise, CallsSettings()
    )
    result["pipeline_version"] = context.pipeline_version
    context.save_json(RESULT, result)
    return result
