"""The item page's ``calls`` renderer shows the flag and reasons, the summary, emotion bars per
speaker and the transcript coloured by speaker."""

from __future__ import annotations

from conveyor.pipelines.calls import calls
from conveyor.web.assets import assets_url
from conveyor.web.templating import GENERIC_RENDERER, renderer_for, templates

RESULT = {
    "duration_s": 61.0,
    "channels": 2,
    "speakers": [
        {
            "id": "S1",
            "role": "agent",
            "role_confidence": 0.9,
            "talk_time_s": 30.0,
            "satisfaction": 3.5,
            "emotions": {"anger": 0.0, "joy": 0.4},
        },
        {
            "id": "S2",
            "role": "customer",
            "role_confidence": 0.9,
            "talk_time_s": 25.0,
            "satisfaction": 1.8,
            "emotions": {"anger": 0.72, "joy": 0.0},
        },
    ],
    "segments": [
        {"start": 0.0, "end": 2.0, "speaker": "S1", "text": "How can I help?"},
        {"start": 62.5, "end": 64.0, "speaker": "S2", "text": "<b>It is broken</b>"},
    ],
    "summary": "Customer: it is broken.",
    "customer_issue": "It is broken",
    "follow_up": True,
    "customer_satisfaction": 1.8,
    "flag": {"poor_call": True, "reasons": ["customer anger 0.72 in the last third"]},
}


def test_calls_items_use_their_own_renderer() -> None:
    renderer = renderer_for(calls)
    assert renderer != GENERIC_RENDERER
    html = templates.env.get_template(renderer).render(result=RESULT, item={})
    assert "poor call" in html and "customer anger 0.72 in the last third" in html
    assert "Customer: it is broken." in html and "1.8/5" in html
    assert 'style="width: 72.0%"' in html  # the customer's anger bar
    assert "1:02" in html and "S2 customer" in html
    assert "&lt;b&gt;It is broken&lt;/b&gt;" in html  # transcripts are escaped


def test_other_results_fall_back_to_the_tree() -> None:
    html = templates.env.get_template(renderer_for(calls)).render(result={"x": 1}, item={})
    assert "result-tree" in html


def test_the_page_plays_the_call_beside_its_transcript_and_shows_warnings() -> None:
    result = RESULT | {
        "artifacts": {"audio": "call.m4a"},
        "warnings": ["truncated/corrupt at 12.0 s: the file declares 61.0 s"],
    }
    html = templates.env.get_template(renderer_for(calls)).render(
        result=result, item={"item_id": "abc"}, root="/ui", assets=assets_url("calls", "/ui")
    )
    assert 'src="/ui/api/v1/items/abc/artifacts/call.m4a"' in html and "data-call-audio" in html
    assert 'src="/ui/static/pipelines/calls/call_player.js' in html
    assert 'data-start="62.5" data-end="64.0"' in html  # each line knows where it is
    assert "truncated/corrupt at 12.0 s: the file declares 61.0 s" in html
    plain = templates.env.get_template(renderer_for(calls)).render(result=RESULT, item={})
    assert "<audio" not in plain and "Warning:" not in plain
