"""The pure parts of ``calls``: emotions, roles, summary cues, the flag, windows, clustering."""

from __future__ import annotations

import numpy as np

from conveyor.pipelines.calls import assessment, diarisation, models, speaker_roles, summary
from conveyor.pipelines.calls import emotion_scores as emotions
from conveyor.pipelines.calls.clustering import SpeakerBounds, cluster_speakers
from conveyor.pipelines.calls.transcription import Word, drop_repeats, windows
from conveyor.pipelines.calls.voice_split import split_merged_voices


def _lexical(text: str) -> dict[str, float]:
    return emotions.lexicon_scores(text, models.nrc_lexicon())


def test_negation_turns_joy_into_disappointment_and_cancels_anger() -> None:
    assert _lexical("I am happy")["joy"] > 0.3
    not_happy = _lexical("I am not happy")
    assert not_happy["joy"] == 0 and not_happy["sadness"] > 0
    assert _lexical("I am not angry")["anger"] == 0
    assert _lexical("I am very angry")["anger"] > _lexical("I am angry")["anger"] > 0


def test_utterance_scores_stay_in_range_and_weight_by_duration() -> None:
    angry = emotions.utterance_emotions("I am furious", -0.9, _lexical("I am furious"))
    calm = emotions.utterance_emotions("fine thanks", 0.4, _lexical("fine thanks"))
    assert all(0 <= v <= 1 for v in (*angry.values(), *calm.values()))
    long_angry = emotions.weighted_mean([(9.0, angry), (1.0, calm)])
    short_angry = emotions.weighted_mean([(1.0, angry), (9.0, calm)])
    assert long_angry["anger"] > short_angry["anger"]


def test_satisfaction_follows_the_mood_and_ends_matter_more() -> None:
    none = dict.fromkeys(emotions.EMOTIONS, 0.0)
    happy = emotions.satisfaction([(5, 0.1, 0.8), (5, 0.9, 0.9)], none)
    unhappy = emotions.satisfaction([(5, 0.1, 0.8), (5, 0.9, -0.9)], none)
    recovered = emotions.satisfaction([(5, 0.1, -0.9), (5, 0.9, 0.8)], none)
    assert 1 <= unhappy < recovered < happy <= 5


def test_roles_come_from_cues_or_the_channel_mapping() -> None:
    texts = {
        "S1": "My internet is down and I want it fixed.",
        "S2": "Thank you for calling, my name is Anna, how can I help?",
    }
    talk = {"S1": 10.0, "S2": 8.0}
    assigned = speaker_roles.assign_roles(texts, ["S1", "S2"], talk)
    assert assigned["S2"][0] == "agent" and assigned["S1"][0] == "customer"
    assert 0.5 < assigned["S2"][1] <= 1
    mapped = speaker_roles.assign_roles(texts, ["S1", "S2"], talk, {"S1": "agent"})
    assert mapped["S1"] == ("agent", 1.0)


def test_customer_issue_and_follow_up_cues() -> None:
    issue = summary.customer_issue(["Hello there.", "My router is broken and I need a fix."])
    assert issue == "My router is broken and I need a fix."
    needed, cues = summary.follow_up("I will escalate this and call you back.", "ok")
    assert needed and "call you back" in cues
    assert summary.follow_up("The address is updated.", "Thank you so much.") == (False, [])


def test_extractive_summary_runs_without_nltk_data() -> None:
    lines = [
        ("agent", "Thank you for calling. How can I help you today?"),
        ("customer", "My internet has been down for a week. Nobody fixed it yet."),
        ("agent", "I will send a technician tomorrow morning to fix the line."),
    ]
    text = summary.extractive_summary(lines, count=2)
    assert text.count(":") == 2 and ("Customer:" in text or "Agent:" in text)


def test_poor_call_reasons_are_readable() -> None:
    customer = {
        "emotions": dict.fromkeys(emotions.EMOTIONS, 0.0),
        "emotions_last_third": {**dict.fromkeys(emotions.EMOTIONS, 0.0), "anger": 0.72},
        "satisfaction": 1.8,
    }
    agent = {"talk_time_s": 85.0}
    poor, reasons = assessment.assess(customer, agent, 100.0, [12.0], 0, assessment.Thresholds())
    assert poor
    assert reasons[:3] == [
        "customer anger 0.72 in the last third",
        "customer satisfaction 1.8/5",
        "agent talked 85% of the time",
    ]
    assert "long silences" in reasons[3]
    calm = customer | {"emotions_last_third": customer["emotions"], "satisfaction": 4.0}
    assert assessment.assess(
        calm, {"talk_time_s": 50.0}, 100.0, [], 0, assessment.Thresholds()
    ) == (
        False,
        [],
    )


def test_silences_and_interruptions() -> None:
    turns = [[0, 5, "S1"], [4.2, 8, "S2"], [20, 25, "S1"]]
    assert assessment.silences(turns, 8.0) == [12]
    assert assessment.interruptions(turns, "S2", "S1") == 1


def test_windows_cut_only_between_speech_regions() -> None:
    regions = [(0.0, 4.0), (4.5, 20.0), (21.0, 29.0), (30.0, 33.0), (40.0, 100.0)]
    packed = windows(regions, 30.0)
    assert all(end - start <= 29.6 for start, end in packed)
    edges = {edge for window in packed for edge in window}
    inside = [e for e in edges if any(s < e < t for s, t in regions)]
    assert all(40.0 < e < 100.0 for e in inside)  # only the 60 s monologue is cut inside speech
    assert packed[0] == (0.0, 29.0)


def test_words_heard_twice_at_an_edge_are_kept_once() -> None:
    words = [Word("hello", 1.0, 1.3, 0.9), Word("Hello", 1.1, 1.35, 0.8), Word("hi", 2, 2.2, 1)]
    assert [w.text for w in drop_repeats(words)] == ["hello", "hi"]


def test_clustering_estimates_the_number_of_speakers() -> None:
    generator = np.random.default_rng(0)
    centres = generator.normal(size=(3, 32))
    points = np.concatenate([c + 0.15 * generator.normal(size=(40, 32)) for c in centres])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    free = SpeakerBounds(1, 8)
    assert len(set(cluster_speakers(points, free))) == 3
    assert len(set(cluster_speakers(points[:40], free))) == 1
    assert len(set(cluster_speakers(points, SpeakerBounds(1, 2)))) == 2  # more voices: the bound
    assert len(set(cluster_speakers(points[:40], SpeakerBounds(2, 4)))) == 2  # fewer: the bound
    labels = cluster_speakers(points, SpeakerBounds(2, 4))
    assert all(len(set(labels[k * 40 : (k + 1) * 40])) == 1 for k in range(3))


def test_a_speaker_holding_two_voices_is_split_and_one_voice_is_not() -> None:
    generator = np.random.default_rng(2)
    centres = generator.normal(size=(3, 32))
    points = np.concatenate([c + 0.15 * generator.normal(size=(30, 32)) for c in centres])
    merged = np.array([0] * 30 + [1] * 60)  # the second and third voice found as one speaker
    labels = split_merged_voices(points, merged, max_speakers=4)
    assert len(set(labels[:30])) == 1 and set(labels[:30]) == {0}
    assert len(set(labels[30:60])) == 1 and len(set(labels[60:])) == 1
    assert labels[30] != labels[60]
    assert (split_merged_voices(points, merged, max_speakers=2) == merged).all()  # the bound


def test_long_calls_cluster_a_subset_with_the_iterative_eigensolver(monkeypatch) -> None:
    from conveyor.pipelines.calls import clustering

    generator = np.random.default_rng(1)
    centres = generator.normal(size=(3, 32))
    points = np.concatenate([c + 0.15 * generator.normal(size=(80, 32)) for c in centres])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    monkeypatch.setattr(clustering, "DENSE_LIMIT", 50)  # Lanczos instead of a full solve
    monkeypatch.setattr(clustering, "MAX_CLUSTERED", 120)  # 240 windows: half are clustered
    labels = cluster_speakers(points, SpeakerBounds(1, 8))
    assert len(set(labels)) == 3
    assert all(len(set(labels[k * 80 : (k + 1) * 80])) == 1 for k in range(3))


def test_labels_follow_first_speech() -> None:
    turns = [diarisation.Turn(5, 6, "K3"), diarisation.Turn(0, 1, "K7")]
    assert [t.speaker for t in diarisation.relabel_by_first_speech(turns)] == ["S2", "S1"]


def test_whisper_base_is_joined_once_atomically(tmp_path) -> None:
    folder = models.default_whisper_folder(tmp_path / "cache")
    model = folder / "model.bin"
    first = model.stat().st_mtime_ns
    assert models.default_whisper_folder(tmp_path / "cache") == folder
    assert model.stat().st_mtime_ns == first  # not joined again
    assert {p.name for p in folder.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.json",
    }
