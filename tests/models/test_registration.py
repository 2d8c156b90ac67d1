"""Training runs on the real engine end in MLflow: a run with provenance, a registered version,
and aliases moved by the promotion gate, recorded in Conveyor's own history."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conveyor.models.promotion import NoRollbackTargetError
from conveyor.models.provenance import code_version
from conveyor.models.registry import ModelNotFoundError
from conveyor.models.service import ModelOps
from conveyor.pipelines.heart.data import HEART_SCHEMA, synthetic_csv
from conveyor.store import queries

FAST = {"cv_folds": 3, "candidates": "logistic_regression,gradient_boosting"}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "heart.csv"
    path.write_bytes(synthetic_csv(120, seed=1))
    return path


def train(installation, dataset: Path, **params):  # type: ignore[no-untyped-def]
    ops = ModelOps(installation)
    submission = ops.train("heart", {"dataset": str(dataset), **FAST, **params})
    installation.controller().run_until_idle(timeout=180)
    with installation.sessions() as session:
        item = queries.get_item(session, submission.item_id)
    assert item.status == "succeeded", item.error
    [registration] = ops.register_pending()
    assert registration.item_id == submission.item_id
    return ops, registration


def test_training_run_is_tracked_and_registered_as_champion(installation, dataset) -> None:
    ops, registration = train(installation, dataset)
    assert (registration.version, registration.decision.alias) == (1, "champion")
    [version] = ops.versions("heart")
    assert version.aliases == ("champion",)
    run = ops.tracking.client.get_run(version.run_id)
    params, metrics = run.data.params, run.data.metrics
    assert params["dataset_sha256"] == hashlib.sha256(dataset.read_bytes()).hexdigest()
    assert params["dataset_source"] == str(dataset.resolve())
    assert params["code_version"] == code_version() and code_version().startswith(("git:", "conv"))
    assert params["cv_folds"] == "3" and params["chosen_candidate"] in FAST["candidates"]
    for name in ("accuracy", "roc_auc", "f1", "brier"):
        assert 0 <= metrics[f"heldout_{name}"] <= 1 and 0 <= metrics[f"cv_{name}"] <= 1
    assert metrics["cv_accuracy"] > 0.8  # the synthetic data is learnable
    assert metrics["onnx_label_agreement"] == 1.0
    info = ops.tracking.model_info("heart", version.version)
    assert info.signature.inputs.input_names() == HEART_SCHEMA.features
    assert info.saved_input_example_info is not None and "sklearn" in info.flavors
    assert ops.registration(registration.item_id).state == "registered"
    assert ops.register_pending() == []  # registered once


def test_worse_model_is_not_promoted_and_rollback_restores_previous(installation, dataset) -> None:
    ops, first = train(installation, dataset)
    _, worse = train(installation, dataset, candidates="baseline")
    assert worse.version == 2 and worse.decision.alias == "challenger"
    assert "worse than the champion" in worse.decision.reason
    assert ops.tracking.aliases("heart") == {"champion": 1, "challenger": 2}
    _, better = train(installation, dataset, candidates="logistic_regression")
    assert better.decision.alias == "champion"  # same data and model family: not worse
    assert ops.tracking.aliases("heart")["champion"] == 3
    change = ops.rollback("heart", actor="cli:tester", reason="alerts after release")
    assert (change.from_version, change.to_version) == (3, 1)
    assert ops.tracking.aliases("heart")["champion"] == 1
    history = ops.history("heart")
    assert [(h.alias, h.action, h.from_version, h.to_version) for h in history] == [
        ("champion", "promote", None, 1),
        ("challenger", "challenge", None, 2),
        ("champion", "promote", 1, 3),
        ("champion", "rollback", 3, 1),
    ]
    assert history[-1].actor == "cli:tester" and history[-1].reason == "alerts after release"
    assert history[0].actor == "promotion gate" and history[0].item_id == first.item_id
    with pytest.raises(NoRollbackTargetError):
        ops.rollback("heart", actor="cli:tester", reason="again")
    by_hand = ops.promote("heart", 2, actor="cli:tester", reason="try the challenger")
    assert (by_hand.from_version, by_hand.to_version, by_hand.action) == (1, 2, "promote")
    assert ops.tracking.aliases("heart")["champion"] == 2
    assert ops.rollback("heart", actor="cli:tester", reason="back").to_version == 1
    with pytest.raises(ModelNotFoundError):
        ops.promote("heart", 9, actor="cli:tester", reason="no such version")
