"""``movies``: a movie recommender trained on MovieLens ratings, compared offline with a
popularity baseline; retrained from ratings that arrive later. See docs/models.md."""

from conveyor.pipelines.movies.steps import movies

__all__ = ["movies"]
