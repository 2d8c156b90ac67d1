"""A ten-minute call keeps one label per speaker from start to end (one clustering over the
whole call, no per-chunk labels)."""

from __future__ import annotations

from collections import Counter

import pytest

from conveyor.pipelines.calls import audio, diarisation, embeddings
from conveyor.pipelines.calls.clustering import SpeakerBounds
from conveyor.pipelines.calls.settings import CallsSettings
from support.calls_audio import Call


@pytest.mark.slow
def test_speaker_labels_are_stable_over_ten_minutes(ten_minute_mono: Call) -> None:
    mono = audio.decode(ten_minute_mono.path).mono()
    settings = CallsSettings()
    bounds = SpeakerBounds(settings.min_speakers, settings.max_speakers)
    turns = diarisation.mono_turns(mono, embeddings.embed_windows, bounds)
    assert ten_minute_mono.duration > 590
    assert {t.speaker for t in turns} == {"S1", "S2"}
    label_of_role: dict[str, Counter] = {"agent": Counter(), "customer": Counter()}
    for turn in ten_minute_mono.turns:
        heard = Counter()
        for t in turns:
            heard[t.speaker] += max(0.0, min(t.end, turn.end) - max(t.start, turn.start))
        label, _ = heard.most_common(1)[0]
        label_of_role[turn.role][label] += 1
    # every one of the 108 scripted turns, first minute to last, carries its speaker's label
    assert label_of_role == {"agent": Counter({"S1": 54}), "customer": Counter({"S2": 54})}
