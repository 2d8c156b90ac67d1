"""The wildlife item page names a species with its probability and the alternatives, says
"species unsure" when none is likely enough, and shows a truncation warning."""

from __future__ import annotations

from conveyor.pipelines.wildlife import wildlife
from conveyor.web.templating import renderer_for, templates


def _track(track_id: int, group: str, species: str, probability: float, others: list) -> dict:
    return {
        "track_id": track_id,
        "group": group,
        "species": species,
        "score": 0.9,
        "first_seen_s": 0.0,
        "last_seen_s": 1.0,
        "detections": 5,
        "species_probability": probability,
        "alternatives": others,
    }


RESULT = {
    "file": {"kind": "video", "duration_s": 4.0, "frames": 20, "fps": 5.0, "size": [640, 360]},
    "empty": False,
    "empty_confidence": 0.9,
    "animals": True,
    "max_animals": 2,
    "activity": {"first_s": 0.0, "last_s": 3.0, "seconds": 3.0},
    "counts": {"mammal": 2},
    "detector": {"name": "motion+efficientnet-lite0", "device": "cpu"},
    "pose": {"available": False, "reason": "no pose model installed"},
    "artifacts": {},
    "warnings": ["truncated/corrupt at 2.4 s: the file declares 4.0 s"],
    "tracks": [
        _track(1, "mammal", "Egyptian cat", 0.78, [["tiger cat", 0.1], ["tabby", 0.07]]),
        _track(2, "mammal", "mammal", 0.3, [["Border terrier", 0.3], ["badger", 0.2]]),
    ],
}


def test_species_probability_alternatives_and_warnings_are_shown() -> None:
    html = templates.env.get_template(renderer_for(wildlife)).render(
        result=RESULT, item={"item_id": "abc"}, root=""
    )
    assert "Egyptian cat" in html and "78%" in html and "or tiger cat 10%, tabby 7%" in html
    assert "species unsure" in html and "likeliest: Border terrier 30%, badger 20%" in html
    assert "truncated/corrupt at 2.4 s: the file declares 4.0 s" in html
