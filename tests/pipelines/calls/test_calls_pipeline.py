"""``calls`` end to end through the controller on synthetic calls with known words, speakers
and moods: transcript quality, who said what, roles, the flag, the tables and the files."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import select

from conveyor.pipelines.calls.tables import CallEmotionScore, CallResult, CallSpeaker
from conveyor.store import queries
from support.calls_audio import Call, normalise_words, word_error_rate


def _words_by_segment(result: dict) -> list[tuple[str, str, float]]:
    """(word, speaker, segment middle) for every transcribed word."""
    return [
        (word, segment["speaker"], (segment["start"] + segment["end"]) / 2)
        for segment in result["segments"]
        for word in normalise_words(segment["text"])
    ]


def _attribution(result: dict, call: Call) -> float:
    """Fraction of words whose speaker's role is the role of the scripted turn they fall in."""
    roles = {s["id"]: s["role"] for s in result["speakers"]}
    hits = total = 0
    for segment in result["segments"]:
        words = normalise_words(segment["text"])
        step = (segment["end"] - segment["start"]) / max(len(words), 1)
        for index, _ in enumerate(words):
            middle = segment["start"] + (index + 0.5) * step
            hits += roles[segment["speaker"]] == call.role_at(middle)
            total += 1
    return hits / total


@pytest.mark.slow
def test_angry_and_happy_calls_end_to_end(
    installation, angry_mono_wav: Call, happy_stereo_mp3: Call
) -> None:  # type: ignore[no-untyped-def]
    calls = {"angry": angry_mono_wav, "happy": happy_stereo_mp3}
    ids = {k: installation.submitter.submit_file("calls", c.path).item_id for k, c in calls.items()}
    installation.controller().run_until_idle(timeout=300)
    with installation.sessions() as session:
        items = {k: queries.get_item(session, i) for k, i in ids.items()}
        assert {k: item.status for k, item in items.items()} == {
            "angry": "succeeded",
            "happy": "succeeded",
        }, {k: item.error for k, item in items.items()}
        results = {k: queries.result_of(session, i).result for k, i in ids.items()}
        runs = [run for i in ids.values() for run in queries.step_runs(session, i)]
        rows = session.scalars(select(CallResult)).all()
        speakers = session.scalars(select(CallSpeaker)).all()
        scores = session.scalars(select(CallEmotionScore)).all()

    angry, happy = results["angry"], results["happy"]
    for name, result in results.items():
        hypothesis = [w for w, _, _ in _words_by_segment(result)]
        assert word_error_rate(calls[name].words, hypothesis) < 0.2, name
        assert [s["role"] for s in result["speakers"]] == ["agent", "customer"], name
        assert all(s["role_confidence"] > 0.6 for s in result["speakers"])
        assert set(result["speakers"][0]["emotions"]) == {
            "sadness",
            "joy",
            "love",
            "anger",
            "fear",
            "surprise",
        }
    assert angry["channels"] == 1 and happy["channels"] == 2
    assert _attribution(angry, angry_mono_wav) >= 0.9
    assert _attribution(happy, happy_stereo_mp3) == 1.0

    assert angry["flag"]["poor_call"] and not happy["flag"]["poor_call"]
    assert any("customer anger" in reason for reason in angry["flag"]["reasons"])
    customer = {k: r["speakers"][1] for k, r in results.items()}
    assert customer["angry"]["satisfaction"] < 2.5 < 4 <= customer["happy"]["satisfaction"]
    assert customer["angry"]["top_emotion"] == "anger"
    assert customer["happy"]["emotions"]["joy"] > customer["angry"]["emotions"]["joy"]
    assert angry["follow_up"] and not happy["follow_up"]
    assert "internet" in angry["customer_issue"].lower()
    assert "address" in happy["customer_issue"].lower()  # "billing" is sometimes "willing"
    assert angry["summary"]

    for step, message in (("transcribe", "loading Whisper"), ("diarise", "voice encoder")):
        ran = Counter(r.worker for r in runs if r.step == step and r.status == "succeeded")
        loads = Counter(r.worker for r in runs if r.step == step and message in (r.logs or ""))
        assert sum(ran.values()) == len(calls), ran
        # Workers are reused across tests, so a worker may have loaded the model earlier.
        assert all(loads[worker] <= 1 for worker in ran), loads  # once per worker process

    assert {row.item_id: row.poor_call for row in rows} == {ids["angry"]: True, ids["happy"]: False}
    assert len(speakers) == 4 and len(scores) == 4 * 6
    for key, item in items.items():
        files = installation.storage.list_files(item.work_dir)
        assert calls[key].path.name in files and "result.json" in files
        saved = installation.storage.local_path(item.work_dir, "result.json")
        assert json.loads(saved.read_text())["flag"] == results[key]["flag"]
