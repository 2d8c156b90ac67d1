"""Experiments as the client reads them: each arm's interval, who leads, whether the
intervals separate, a table per arm, escaped HTML; and when a routing change is served."""

from __future__ import annotations

from conveyor.client.experiments import Experiment
from conveyor.client.models import Endpoint


def experiment(results: list[dict[str, object]] | None) -> Experiment:
    return Experiment.from_api(
        {"id": 3, "endpoint": "movies", "name": "<b>svd</b> vs popularity", "metric": "ctr",
         "starts_at": "2026-11-29T05:00:00", "ends_at": None, "created_by": "api:maria",
         "results": results}
    )  # fmt: skip


def arm(name: str, successes: int, trials: int, low: float, high: float) -> dict[str, object]:
    value = successes / trials if trials else None
    return {"arm": name, "successes": successes, "trials": trials, "value": value,
            "low": low if trials else None, "high": high if trials else None}  # fmt: skip


def test_a_clear_winner_is_separated() -> None:
    read = experiment([arm("popularity", 4, 40, 0.04, 0.23), arm("svd", 24, 40, 0.45, 0.74)])
    assert read.leader == read.arm("svd") and read.separated
    assert read.verdict() == (
        "ctr: svd: 0.600 [0.450, 0.740] (24/40) ahead, intervals separate from "
        "popularity: 0.100 [0.040, 0.230] (4/40)"
    )
    frame = read.to_pandas()
    assert frame.loc["svd", "successes"] == 24 and list(frame.index) == ["popularity", "svd"]
    assert read.starts_at is not None and read.starts_at.tzinfo is not None


def test_overlapping_intervals_and_no_outcomes() -> None:
    close = experiment([arm("a", 5, 10, 0.24, 0.76), arm("b", 6, 10, 0.31, 0.83)])
    assert close.leader == close.arm("b") and not close.separated
    assert "intervals overlap" in close.verdict()
    empty = experiment([arm("a", 0, 0, 0, 0)])
    assert empty.leader is None and not empty.separated
    assert empty.verdict() == "experiment '<b>svd</b> vs popularity': no outcomes yet"
    listed = experiment(None)
    assert listed.results is None and listed.to_pandas().empty


def test_experiment_html_is_escaped() -> None:
    shown = experiment([arm("<i>a</i>", 1, 2, 0.1, 0.9)])._repr_html_()
    assert "&lt;b&gt;svd&lt;/b&gt;" in shown and "&lt;i&gt;a&lt;/i&gt;" in shown
    assert "<b>" not in shown and "<i>" not in shown


def test_routing_is_served_once_every_arm_with_traffic_has_its_version() -> None:
    def endpoint(*arms: dict[str, object]) -> Endpoint:
        return Endpoint("movies", "movies", 4, "api:maria", {}, list(arms))

    served = {"name": "a", "target": "champion", "weight": 1, "version": 2}
    pinned = {"name": "b", "target": 3, "weight": 1, "version": 3}
    assert endpoint(served, pinned).serves_every_arm
    assert not endpoint(served, pinned | {"version": 2}).serves_every_arm  # still the old one
    assert not endpoint(served, pinned | {"version": None}).serves_every_arm
    assert endpoint(served, pinned | {"version": None, "weight": 0}).serves_every_arm
