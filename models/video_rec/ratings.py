"""A second simulated world in the video contract, shaped like public movie-ratings data rather than like the
video simulator: explicit 1-5 ratings of fully watched movies, months of bursty sessions (a user rates many movies
within the same minutes), a long-tailed catalogue that is mostly old, users who join early and thin out, and dirt:
release dates given to the day, some views dated before them, one mistyped age.

Why a second world: a recommender tuned on one generator learns that generator. Issue 13 measured the chain losing
to popularity and to EASE on real ratings data while beating both on the video simulator; this world lets the tests
and the evaluation see that shape with a known truth (`expected_relevant`), without external data.

The truth: users and movies have latent factors (movies' from their genres plus their own); a session's ratings are
drawn without replacement from the movies released by then with P proportional to popularity x exp(taste . movie);
a rating is round(N(mean, 0.9)) around a mean that grows with the same taste; 3 and above is relevant (4-5 liked,
1-2 disliked, 3 neither), so P(relevant | rated) is known in closed form.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
from scipy.stats import norm

GENRES = ("drama", "comedy", "action", "thriller", "romance", "horror", "sci-fi", "animation", "documentary", "crime")
LANGUAGES = ("en", "fr", "de", "es", "ja")
COUNTRIES = ("us", "gb", "de", "fr", "ca", "jp")
RATING_NOISE = 0.9
TASTE_WEIGHT = 1.4  # how strongly taste, against popularity, decides what a user rates


@dataclass(frozen=True)
class RatingsSimulationConfig:
    seed: int = 11
    start_date: date = date(2026, 1, 1)
    n_days: int = 210
    n_users: int = 1_000
    n_movies: int = 1_700
    n_factors: int = 12
    released_during: float = 0.1  # share of the catalogue released during the data
    early_views: float = 0.002  # share of the views dated before their movie's release (dirty rows)

    def __post_init__(self):
        if self.n_days < 14:
            raise ValueError(f"n_days must be at least 14 for months of sessions, not {self.n_days}")

    def fingerprint(self) -> str:
        payload = json.dumps({"world": "ratings", **{k: str(v) for k, v in asdict(self).items()}}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass
class RatingsWorld:
    config: RatingsSimulationConfig
    users: pl.DataFrame
    videos: pl.DataFrame
    interactions: pl.DataFrame
    user_factors: np.ndarray  # (users, factors); latent truth, kept out of every table
    movie_factors: np.ndarray  # (movies, factors)
    log_popularity: np.ndarray
    quality: np.ndarray
    release_day: np.ndarray  # days since the start (negative: released before the data)

    def affinity(self, user_rows: np.ndarray) -> np.ndarray:
        return self.user_factors[user_rows] @ self.movie_factors.T

    def relevance_probability(self, user_rows: np.ndarray) -> np.ndarray:
        """P(rating >= 3 | the user rates the movie): round(N(mean, noise)) >= 3 when the draw is >= 2.5."""
        return norm.sf((2.5 - _rating_mean(self.affinity(user_rows), self.quality)) / RATING_NOISE)

    def expected_relevant(self, user_ids: list[str], day: float) -> np.ndarray:
        """The generator's truth: P(the user's next rating is of the movie and relevant), users x movies."""
        order = {u: i for i, u in enumerate(self.users["user_id"].to_list())}
        rows = np.array([order[u] for u in user_ids], dtype=np.int64)
        logits = np.where(self.release_day <= day, TASTE_WEIGHT * self.affinity(rows) + self.log_popularity, -np.inf)
        choice = np.exp(logits - logits.max(axis=1, keepdims=True))
        return choice / choice.sum(axis=1, keepdims=True) * self.relevance_probability(rows)


def _rating_mean(affinity: np.ndarray, quality: np.ndarray) -> np.ndarray:
    return 3.1 + 0.9 * affinity + 0.5 * quality


def simulate_ratings(config: RatingsSimulationConfig) -> RatingsWorld:
    rng = np.random.default_rng([config.seed, 13])
    start = datetime.combine(config.start_date, datetime.min.time(), tzinfo=timezone.utc)
    n_users, n_movies, k = config.n_users, config.n_movies, config.n_factors
    genre_factors = rng.normal(0, 1, (len(GENRES), k)) / np.sqrt(k)
    genres = [rng.choice(len(GENRES), size=rng.integers(1, 4), replace=False) for _ in range(n_movies)]
    movie_factors = np.stack([genre_factors[g].mean(axis=0) for g in genres]) + rng.normal(0, 0.5, (n_movies, k)) / np.sqrt(k)
    # Users like a couple of genres, and have tastes of their own beyond them.
    favourite = np.stack([rng.choice(len(GENRES), 2, replace=False) for _ in range(n_users)])
    user_factors = 1.5 * genre_factors[favourite].mean(axis=1) + rng.normal(0, 0.6, (n_users, k)) / np.sqrt(k)
    log_popularity = rng.normal(0.0, 1.3, n_movies)
    quality = rng.normal(0, 1, n_movies)
    release_day = -rng.integers(30, 4_000, n_movies).astype(np.float64)
    during = rng.choice(n_movies, int(config.released_during * n_movies), replace=False)
    release_day[during] = rng.integers(0, max(config.n_days - 30, 1), len(during))

    world = RatingsWorld(config, pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), user_factors, movie_factors,
                         log_popularity, quality, release_day)
    affinity_rows = world.affinity(np.arange(n_users))
    rows: dict[str, list] = {"user": [], "movie": [], "second": [], "rating": []}
    # Users join early and their sessions thin out: the last weeks hold few of them.
    joined = config.n_days * rng.beta(1.0, 2.5, n_users)
    for u in range(n_users):
        rated = np.zeros(n_movies, dtype=bool)
        day = joined[u]
        for _ in range(1 + rng.geometric(0.3)):
            if day >= config.n_days:
                break
            available = (release_day <= np.floor(day)) & ~rated
            n = int(min(rng.integers(3, 40), available.sum()))
            logits = TASTE_WEIGHT * affinity_rows[u] + log_popularity + rng.gumbel(size=n_movies)
            picked = np.argsort(np.where(available, -logits, np.inf))[:n]  # without replacement, by Gumbel top-n
            rated[picked] = True
            mean = _rating_mean(affinity_rows[u, picked], quality[picked])
            rows["user"].append(np.full(n, u))
            rows["movie"].append(picked)
            # Ratings typed in one go: whole minutes of one session, so many share a timestamp.
            rows["second"].append(np.floor(day * 86_400 / 60) * 60 + 60 * rng.integers(0, 3, n))
            rows["rating"].append(np.clip(np.round(rng.normal(mean, RATING_NOISE)), 1, 5).astype(np.int64))
            day += rng.exponential(config.n_days / 10)  # a tenth of the span: a shorter world keeps the shape
    user, movie = np.concatenate(rows["user"]), np.concatenate(rows["movie"])
    second, rating = np.concatenate(rows["second"]), np.concatenate(rows["rating"])
    # Dirt: some views dated three days before their movie's release (a coarse or wrong release date).
    recent = np.flatnonzero(release_day[movie] > 10)
    early = rng.choice(recent, min(len(recent), round(config.early_views * len(user))), replace=False)
    second[early] = (release_day[movie[early]] - 3) * 86_400

    movie_ids = [f"m{i:05d}" for i in range(n_movies)]
    user_ids = [f"u{i:05d}" for i in range(n_users)]
    world.interactions = pl.DataFrame({
        "user_id": pl.Series(user_ids)[user], "video_id": pl.Series(movie_ids)[movie],
        "ts": pl.Series([start + timedelta(seconds=float(s)) for s in second], dtype=pl.Datetime("us", "UTC")),
        "watch_fraction": np.ones(len(user)),
        "liked": pl.Series(np.where(rating >= 4, 1, np.where(rating <= 2, 0, -1))).replace_strict(
            {1: True, 0: False, -1: None}, return_dtype=pl.Boolean),
    }).sort("ts", "user_id", "video_id")
    world.videos = pl.DataFrame({
        "video_id": movie_ids,
        "title": [f"Movie {i}" for i in range(n_movies)],
        "tags": pl.Series([[GENRES[g] for g in gs] for gs in genres], dtype=pl.List(pl.String)),
        "duration_s": np.round(rng.uniform(4_800, 9_000, n_movies), 0),
        "language": rng.choice(LANGUAGES, n_movies, p=[0.8, 0.06, 0.05, 0.05, 0.04]),
        "upload_ts": pl.Series([start + timedelta(days=float(d)) for d in release_day], dtype=pl.Datetime("us", "UTC")),
    })
    ages = rng.integers(16, 70, n_users)
    ages[rng.integers(n_users)] = 150  # a mistyped age: a warning, not a reason to drop the user
    world.users = pl.DataFrame({"user_id": user_ids, "age": pl.Series(ages, dtype=pl.Int64),
                                "gender": rng.choice(["f", "m"], n_users), "country": rng.choice(COUNTRIES, n_users)})
    return world
