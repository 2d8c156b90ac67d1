"""The movies scenario: a recommender that beats the popularity baseline offline, registered
through the same registry and gate as any model, retrained from new ratings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conveyor.models.schema import DatasetError, parse_table
from conveyor.models.service import ModelOps
from conveyor.pipelines.movies import recommender
from conveyor.pipelines.movies.data import RATINGS_SCHEMA, synthetic_ratings
from conveyor.store import queries


def _table():  # type: ignore[no-untyped-def]
    return parse_table(RATINGS_SCHEMA, synthetic_ratings(seed=1), "synthetic")


def test_newest_ratings_of_each_user_are_held_out() -> None:
    table = _table()
    train, heldout = recommender.newest_per_user(table, 0.2)
    assert len(train) + len(heldout) <= len(table) and len(heldout) > 0.15 * len(table)
    newest_train = train.groupby("userId")["timestamp"].max()
    oldest_heldout = heldout.groupby("userId")["timestamp"].min()
    assert (oldest_heldout > newest_train[oldest_heldout.index]).all()
    assert heldout["movieId"].isin(train["movieId"]).all()


def test_svd_beats_popularity_and_round_trips_without_pickles(tmp_path: Path) -> None:
    train, heldout = recommender.newest_per_user(_table(), 0.2)
    svd = recommender.fit(train, "svd", 8, seed=0)
    popular = recommender.fit(train, "popularity", 8, seed=0)
    svd_scores = recommender.evaluate(svd, train, heldout)
    popular_scores = recommender.evaluate(popular, train, heldout)
    assert svd_scores["precision_at_20"]["mean"] > popular_scores["precision_at_20"]["mean"]
    assert svd_scores["recall_at_20"]["mean"] > popular_scores["recall_at_20"]["mean"]
    svd.save(tmp_path / "model.npz")
    loaded = recommender.Recommender.load(tmp_path / "model.npz")
    seen = train[train["userId"] == 5]["movieId"].to_numpy()
    assert np.array_equal(loaded.recommend(5, seen, 20), svd.recommend(5, seen, 20))
    assert not set(loaded.recommend(5, seen, 20)) & set(seen)


def test_bad_rating_is_named() -> None:
    with pytest.raises(DatasetError, match=r"row 2, column 'rating': 7 is not one of"):
        parse_table(RATINGS_SCHEMA, b"1,10,4.5,100\n1,11,7,101\n", "ratings.csv")


def test_movies_training_registers_and_a_baseline_only_run_is_not_promoted(
    installation, tmp_path: Path
) -> None:
    dataset = tmp_path / "ratings.csv"
    dataset.write_bytes(synthetic_ratings(seed=2))
    ops = ModelOps(installation)
    first = ops.train("movies", {"dataset": str(dataset), "factors": 8})
    installation.controller().run_until_idle(timeout=180)
    with installation.sessions() as session:
        item = queries.get_item(session, first.item_id)
        outcome = queries.result_of(session, first.item_id).result
    assert item.status == "succeeded", item.error
    assert outcome["chosen"] == "svd"
    assert outcome["heldout"]["precision_at_20"] > outcome["baseline"]["precision_at_20"]
    assert outcome["heldout"]["rmse"] < outcome["baseline"]["rmse"]
    [registered] = ops.register_pending()
    assert registered.decision.alias == "champion"
    run = ops.tracking.client.get_run(ops.versions("movies")[0].run_id)
    assert (
        run.data.metrics["baseline_precision_at_20"] < run.data.metrics["heldout_precision_at_20"]
    )
    assert "pyfunc" in str(ops.tracking.model_info("movies", 1).flavors)
    ops.train("movies", {"dataset": str(dataset), "candidates": "popularity"})
    installation.controller().run_until_idle(timeout=180)
    [second] = ops.register_pending()
    assert second.decision.alias == "challenger" and "precision_at_20" in second.decision.reason


def test_new_ratings_start_a_retraining_on_the_grown_dataset(installation, tmp_path) -> None:
    from conveyor.settings import ModelSettings

    dataset = tmp_path / "ratings.csv"
    dataset.write_bytes(synthetic_ratings(users=30, seed=3))
    installation.settings.models = {
        "movies": ModelSettings(dataset=str(dataset), retrain_after_rows=3)
    }
    ops = ModelOps(installation)
    assert ops.triggers.add_rows("movies", b"7,3,4.5,1700000000\n7,4,2,1700000001\n", "app") == 2
    assert ops.triggers.fire_row_triggers() == []
    ops.triggers.add_rows("movies", b"8,3,5,1700000002\n", "app")
    [item_id] = ops.triggers.fire_row_triggers()
    with installation.sessions() as session:
        record = queries.get_item(session, item_id).record
    snapshot = installation.storage.local_path("", record["dataset"]).read_bytes()
    assert snapshot.startswith(dataset.read_bytes()) and snapshot.endswith(b"8,3,5,1700000002\n")
    assert record["dataset_source"].endswith("+ 3 new rows")
