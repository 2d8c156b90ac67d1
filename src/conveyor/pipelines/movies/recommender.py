"""Top-N movie recommendations: a popularity baseline and a truncated-SVD model, with offline
metrics (precision@N, recall@N over each user's newest ratings, RMSE of rating predictions).

A :class:`Recommender` is plain arrays, saved as ``.npz`` without pickles. The baseline ranks
movies by how often they were rated and predicts a movie's damped mean rating; the model ranks
by a user's position in the latent space of the user x movie matrix and adds the user's damped
bias to the rating prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

LIKED = 4.0  # a held-out rating at least this good is a relevant recommendation
BIAS_DAMPING = 10.0
MIN_RATINGS = 5


@dataclass
class Recommender:
    kind: str  # "popularity" or "svd"
    users: np.ndarray  # user ids, sorted
    items: np.ndarray  # movie ids, sorted
    popularity: np.ndarray  # ratings per movie
    mean: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    user_factors: np.ndarray  # users x k (empty for popularity)
    item_factors: np.ndarray  # k x items

    def scores(self, user: int) -> np.ndarray:
        """Ranking scores over ``items`` for one user (popularity for a stranger)."""
        row = int(np.searchsorted(self.users, user))
        known = row < len(self.users) and self.users[row] == user
        if self.kind == "popularity" or not known:
            return self.popularity.astype(float)
        return self.user_factors[row] @ self.item_factors

    def recommend(self, user: int, seen: np.ndarray, count: int) -> np.ndarray:
        scores = self.scores(user).copy()
        scores[np.searchsorted(self.items, seen[np.isin(seen, self.items)])] = -np.inf
        top = np.argpartition(-scores, min(count, len(scores) - 1))[:count]
        return self.items[top[np.argsort(-scores[top])]]

    def predict_ratings(self, users: np.ndarray, movies: np.ndarray) -> np.ndarray:
        """The baseline predicts a movie's damped mean rating; the model adds the user's bias."""
        predicted = self.mean + _lookup(self.items, self.item_bias, movies)
        if self.kind == "svd":
            predicted += _lookup(self.users, self.user_bias, users)
        return predicted

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        arrays |= {"kind": np.array(self.kind), "mean": np.array(self.mean)}
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> Recommender:
        with np.load(path, allow_pickle=False) as data:
            values: dict[str, Any] = {name: data[name] for name in data.files}
        return cls(**(values | {"kind": str(values["kind"]), "mean": float(values["mean"])}))


def _lookup(ids: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    position = np.clip(np.searchsorted(ids, wanted), 0, max(len(ids) - 1, 0))
    found = (len(ids) > 0) & (ids[position] == wanted)
    return np.where(found, values[position], 0.0)


def newest_per_user(table: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(older, newest): each user's newest ``fraction`` of ratings is held out; users with fewer
    than MIN_RATINGS ratings, and movies nobody rated before, stay out of the held-out part."""
    ordered = table.sort_values(["userId", "timestamp", "movieId"], kind="stable")
    position = ordered.groupby("userId").cumcount(ascending=False)
    count = ordered.groupby("userId")["rating"].transform("size")
    newest = (position < (count * fraction).round()) & (count >= MIN_RATINGS)
    older, held = ordered[~newest], ordered[newest]
    held = held[held["movieId"].isin(older["movieId"])]
    return older.reset_index(drop=True), held.reset_index(drop=True)


def fit(train: pd.DataFrame, kind: str, factors: int, seed: int) -> Recommender:
    users = np.sort(train["userId"].unique())
    items = np.sort(train["movieId"].unique())
    rows, columns = (
        np.searchsorted(users, train["userId"]),
        np.searchsorted(items, train["movieId"]),
    )
    mean = float(train["rating"].mean())
    item_bias = _damped_means(columns, train["rating"].to_numpy() - mean, len(items))
    user_bias = _damped_means(
        rows, train["rating"].to_numpy() - mean - item_bias[columns], len(users)
    )
    popularity = np.bincount(columns, minlength=len(items)).astype(float)
    user_factors, item_factors = np.zeros((len(users), 0)), np.zeros((0, len(items)))
    if kind == "svd":
        user_factors, item_factors = _latent(rows, columns, (len(users), len(items)), factors, seed)
    elif kind != "popularity":
        raise ValueError(f"unknown recommender {kind!r}; use popularity or svd")
    return Recommender(
        kind, users, items, popularity, mean, user_bias, item_bias, user_factors, item_factors
    )


def _damped_means(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    sums = np.bincount(index, weights=values, minlength=size)
    counts = np.bincount(index, minlength=size)
    return sums / (counts + BIAS_DAMPING)


def _latent(
    rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int], factors: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import TruncatedSVD

    rated = sparse.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=shape)
    rank = max(1, min(factors, min(shape) - 1))
    svd = TruncatedSVD(rank, random_state=seed)
    return svd.fit_transform(rated), svd.components_


def evaluate(
    model: Recommender, train: pd.DataFrame, heldout: pd.DataFrame, count: int = 20
) -> dict[str, dict[str, float]]:
    """{metric: {"mean", "std"}} over users: precision@count and recall@count against held-out
    ratings >= LIKED, and RMSE of the predicted ratings (std 0: one number over all ratings)."""
    seen = train.groupby("userId")["movieId"].apply(np.asarray)
    precision, recall = [], []
    for user, liked in heldout[heldout["rating"] >= LIKED].groupby("userId")["movieId"]:
        already = seen.get(user, np.array([], dtype=float))
        hits = len(set(model.recommend(user, already, count)) & set(liked))
        precision.append(hits / count)
        recall.append(hits / len(liked))
    predicted = model.predict_ratings(heldout["userId"].to_numpy(), heldout["movieId"].to_numpy())
    rmse = float(np.sqrt(np.mean((heldout["rating"].to_numpy() - predicted) ** 2)))
    return {
        f"precision_at_{count}": _summary(precision),
        f"recall_at_{count}": _summary(recall),
        "rmse": {"mean": round(rmse, 6), "std": 0.0},
    }


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "std": 0.0}
    return {"mean": round(float(np.mean(values)), 6), "std": round(float(np.std(values)), 6)}


def global_mean_rmse(train: pd.DataFrame, heldout: pd.DataFrame) -> float:
    error = heldout["rating"].to_numpy() - float(train["rating"].mean())
    return round(float(np.sqrt(np.mean(error**2))), 6)
