"""The delivery's pure parts: the layout file, the gate of a delivered version, the canary's
verdict, and the git seam on a real repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conveyor.delivery.layout import CanarySpec, GateSpec, LayoutError, PromotionSpec, parse_layout
from conveyor.delivery.repository import GitRepository, RepositoryError
from conveyor.delivery.rules import (
    PROMOTE,
    ROLLBACK,
    WAIT,
    ArmCounts,
    canary_verdict,
    delivered_decision,
    gate_passed,
)
from conveyor.models.promotion import CHALLENGER, CHAMPION, GateRule, decide

FULL = """
[model]
pipeline = "heart"
dataset = "data/heart.csv"
[params]
candidates = ["svm"]
[gate]
metric = "brier"
minimum = 0.2
[canary]
endpoint = "heart"
weight = 5
[promotion]
when = "not_worse"
"""


def test_layout_reads_every_table_with_defaults() -> None:
    spec = parse_layout(FULL)
    assert (spec.pipeline, spec.branch, spec.dataset) == ("heart", "main", "data/heart.csv")
    assert spec.params == {"candidates": ["svm"]}
    assert spec.gate == GateSpec("brier", 0.2, 0.0)
    assert spec.canary == CanarySpec("heart", weight=5.0)
    assert spec.promotion == PromotionSpec("not_worse", "rollback")
    assert parse_layout('[model]\npipeline = "heart"').canary is None


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[model]\n", "model.pipeline"),
        ('[model]\npipeline = "h"\nbrnch = "x"', "model.brnch"),
        ('[model]\npipeline = "h"\n[canary]\nendpoint = "h"\nweight = 150', "canary.weight"),
        ('[model]\npipeline = "h"\n[canary]\nendpoint = "h"\nmetric = "f1"', "canary.metric"),
        ('[model]\npipeline = "h"\n[promotion]\nwhen = "always"', "promotion.when"),
        ("[model", "not valid TOML"),
    ],
)
def test_layout_errors_name_the_key(text: str, named: str) -> None:
    with pytest.raises(LayoutError, match=named.replace(".", r"\.")):
        parse_layout(text)


def test_a_delivered_version_waits_for_the_canary_unless_it_is_the_first() -> None:
    rule = GateRule("roc_auc", 0.0)
    first = delivered_decision(
        decide({"roc_auc": 0.9}, None, rule), {"roc_auc": 0.9}, GateSpec(), rule
    )
    assert first.alias == CHAMPION and gate_passed(first.reason)
    better = decide({"roc_auc": 0.9}, {"roc_auc": 0.8}, rule, 1)
    held = delivered_decision(better, {"roc_auc": 0.9}, GateSpec(), rule)
    assert held.alias == CHALLENGER and gate_passed(held.reason) and "canary" in held.reason
    worse = decide({"roc_auc": 0.7}, {"roc_auc": 0.8}, rule, 1)
    refused = delivered_decision(worse, {"roc_auc": 0.7}, GateSpec(), rule)
    assert refused.alias == CHALLENGER and not gate_passed(refused.reason)


def test_the_minimum_refuses_even_a_first_version() -> None:
    rule = GateRule("roc_auc")
    decision = decide({"roc_auc": 0.6}, None, rule)
    refused = delivered_decision(decision, {"roc_auc": 0.6}, GateSpec(minimum=0.8), rule)
    assert not gate_passed(refused.reason) and "below the minimum 0.8" in refused.reason
    lower = GateRule("brier")
    kept = delivered_decision(
        decide({"brier": 0.1}, None, lower), {"brier": 0.1}, GateSpec(minimum=0.2), lower
    )
    assert gate_passed(kept.reason)


CANARY = CanarySpec("heart", min_samples=40, confidence=0.95)


@pytest.mark.parametrize(
    ("champion", "canary", "when", "timed_out", "action"),
    [
        (ArmCounts(23, 40), ArmCounts(43, 51), "better", False, PROMOTE),
        (ArmCounts(62, 79), ArmCounts(22, 40), "better", False, ROLLBACK),
        (ArmCounts(30, 40), ArmCounts(31, 40), "better", False, WAIT),
        (ArmCounts(30, 40), ArmCounts(31, 40), "better", True, ROLLBACK),
        (ArmCounts(30, 40), ArmCounts(31, 40), "not_worse", False, PROMOTE),
        (ArmCounts(5, 10), ArmCounts(10, 10), "better", False, WAIT),  # too few outcomes
        (ArmCounts(40, 40), ArmCounts(40, 40), "better", False, WAIT),  # no spread at all
    ],
)
def test_canary_verdict(
    champion: ArmCounts, canary: ArmCounts, when: str, timed_out: bool, action: str
) -> None:
    verdict = canary_verdict(champion, canary, CANARY, PromotionSpec(when), timed_out)
    assert verdict.action == action, verdict.reason


def test_on_timeout_promote() -> None:
    verdict = canary_verdict(
        ArmCounts(1, 2), ArmCounts(1, 2), CANARY, PromotionSpec("better", "promote"), True
    )
    assert verdict.action == PROMOTE and "time limit" in verdict.reason


def test_git_seam_reads_a_file_at_a_commit_of_a_bare_repository(tmp_path: Path) -> None:
    work, bare = tmp_path / "work", tmp_path / "bare.git"
    identity = ["-c", "user.name=a", "-c", "user.email=a@example.org"]
    subprocess.run(["git", "init", "-q", "--initial-branch=main", str(work)], check=True)
    (work / "conveyor-model.toml").write_text("one")
    subprocess.run(["git", "add", "conveyor-model.toml"], cwd=work, check=True)
    subprocess.run(["git", *identity, "commit", "-qm", "first"], cwd=work, check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    repository = GitRepository(bare)
    commit = repository.commit("main")
    assert commit.subject == "first" and len(commit.sha) == 40
    assert repository.read(commit.sha, "conveyor-model.toml") == b"one"
    with pytest.raises(RepositoryError, match=r"missing\.toml is not in commit"):
        repository.read(commit.sha, "missing.toml")
    for bad in ("../etc/passwd", "/etc/passwd", "--output=x"):
        with pytest.raises(RepositoryError, match="inside the repository"):
            repository.read(commit.sha, bad)
    with pytest.raises(RepositoryError):
        repository.commit("--all")
