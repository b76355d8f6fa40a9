"""The book's offline metric and the next-click hit rate, for any scorer.

- *Mean rank of the booked listing*: for each session that booked a listing other than its first click, rank the
  session's other listings (shown or clicked) by similarity to the first clicked one; the booked listing's rank,
  1 best, ties sharing the mean rank; averaged over sessions (lower is better). The same on the sessions whose
  booked listing no training session had clicked: the cold-start figure.
- *Hit rate@k of the next click*: rank every listing of the clicked listing's city by similarity to it; a hit when
  the next listing clicked in the session is in the first k.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from models.promotion import Interval, paired_bootstrap
from models.similar_listings.data import Cases, Catalogue, Cutoffs, evaluation_cases, sessions_between
from models.similar_listings.similarity import Cooccurrence, Embeddings, Oracle, Popularity, Scorer, click_counts
from models.similar_listings.skipgram import Trained

HIT_KS = (10, 50)


def booked_ranks(scorer: Scorer, cases: Cases) -> np.ndarray:
    ranks = np.empty(len(cases.booked))
    for i, (_, first, candidates, target) in enumerate(cases.booked):
        scores = scorer.scores(first, candidates)
        mine = scores[candidates == target][0]
        ranks[i] = 1 + (scores > mine).sum() + ((scores == mine).sum() - 1) / 2
    return ranks


def next_click_ranks(scorer: Scorer, cases: Cases, catalogue: Catalogue) -> np.ndarray:
    """The next click's rank among the query's city's listings (the query left out); ties share the mean rank."""
    ranks = np.empty(len(cases.next_clicks))
    by_city: dict[str, np.ndarray] = {}
    for i, (query, target) in enumerate(cases.next_clicks):
        city = catalogue.city[query]
        if city not in by_city:
            by_city[city] = catalogue.in_city(city)
        pool = by_city[city][by_city[city] != query]
        scores = scorer.scores(query, pool)
        mine = scores[pool == target][0]
        ranks[i] = 1 + (scores > mine).sum() + ((scores == mine).sum() - 1) / 2
    return ranks


def report(scorer: Scorer, cases: Cases, catalogue: Catalogue, new: np.ndarray) -> tuple[dict[str, float | None], np.ndarray]:
    """The metrics and the per-session booked ranks (the promotion gate's units). `new` marks the catalogue's
    listings no training session clicked."""
    ranks = booked_ranks(scorer, cases)
    targets = np.array([target for *_, target in cases.booked], dtype=np.int64)
    cold = new[targets] if len(targets) else np.zeros(0, dtype=bool)
    sizes = np.array([len(candidates) for _, _, candidates, _ in cases.booked])
    next_ranks = next_click_ranks(scorer, cases, catalogue)
    metrics: dict[str, float | None] = {
        "mean_booked_rank": float(ranks.mean()) if len(ranks) else float("nan"),
        "median_booked_rank": float(np.median(ranks)) if len(ranks) else float("nan"),
        # The rank as a share of the candidates (0 first, 1 last): comparable across sessions of any length.
        "booked_rank_share": float(((ranks - 1) / np.maximum(sizes - 1, 1)).mean()) if len(ranks) else float("nan"),
        "mean_booked_rank_new_listings": float(ranks[cold].mean()) if cold.any() else None,
        "sessions_new_listings": int(cold.sum()),
        **{f"hit_rate_at_{k}": float((next_ranks <= k).mean()) if len(next_ranks) else float("nan") for k in HIT_KS},
    }
    return metrics, ranks


def ceiling_ranks(cases: Cases, catalogue: Catalogue, session_truth) -> np.ndarray:
    """The booked listing's rank when each session's candidates are ranked by the generator's utility for that
    session's guest (listings the session never showed rank last): the most any similarity could hope for."""
    wanted = pl.DataFrame({"session_id": [session for session, *_ in cases.booked]})
    utility = session_truth.join(wanted, on="session_id", how="semi")
    by_session: dict[str, dict[str, float]] = {}
    for session, listing, value in utility.select("session_id", "listing_id", "utility").iter_rows():
        by_session.setdefault(session, {})[listing] = value
    ranks = np.empty(len(cases.booked))
    for i, (session, _, candidates, target) in enumerate(cases.booked):
        known = by_session.get(session, {})
        scores = np.array([known.get(catalogue.ids[c], -np.inf) for c in candidates])
        mine = scores[candidates == target][0]
        ranks[i] = 1 + (scores > mine).sum() + ((scores == mine).sum() - 1) / 2
    return ranks


def random_rank(cases: Cases) -> float:
    """The mean booked rank of a scorer that knows nothing: the middle of each session's candidates."""
    return float(np.mean([(len(candidates) + 1) / 2 for _, _, candidates, _ in cases.booked])) if cases.booked else float("nan")


@dataclass(frozen=True)
class TestSetup:
    """The test window's cases over the catalogue at its end, and which listings no session before it clicked."""

    catalogue: Catalogue
    cases: Cases
    before_test: pl.DataFrame  # every session event before the test window (what baselines count)
    new: np.ndarray


def test_setup(listings: pl.DataFrame, sessions: pl.DataFrame, cutoffs: Cutoffs) -> TestSetup:
    catalogue = Catalogue.from_listings(listings, cutoffs.end)
    before_test = sessions_between(sessions, None, cutoffs.test_start)
    cases = evaluation_cases(sessions_between(sessions, cutoffs.test_start, None), catalogue)
    return TestSetup(catalogue, cases, before_test, click_counts(before_test, catalogue) == 0)


@dataclass
class Result:
    reports: dict[str, dict[str, float]]
    ranks: dict[str, np.ndarray]  # per booking session, the same sessions for every approach
    margins: dict[str, Interval] = field(default_factory=dict)  # the served model minus each baseline

    def margin_lines(self) -> list[str]:
        return [f"served model minus {baseline}: {interval.describe('mean_booked_rank')}"
                for baseline, interval in self.margins.items()]


def embeddings_of(trained: Trained, catalogue: Catalogue, score: str = "likelihood") -> Embeddings:
    if score == "cosine":
        return Embeddings.cosine(catalogue, trained.ids, trained.vectors)
    return Embeddings.likelihood(catalogue, trained.ids, trained.vectors, trained.context_vectors)


def evaluate_approaches(setup: TestSetup, served: Trained, plain: Trained | None,
                        truth: tuple[pl.DataFrame, pl.DataFrame] | None) -> Result:
    """Every approach on the same test sessions (the served model is `booked_likelihood`)."""
    catalogue, cases = setup.catalogue, setup.cases
    if not cases.booked:
        raise ValueError("the test window holds no session that booked a listing other than its first click: "
                         "nothing to judge (set a longer MLSD_SIMILAR_LISTINGS_TEST_WINDOW)")
    clicks = click_counts(setup.before_test, catalogue)
    scorers = {"popularity": Popularity(catalogue, clicks),
               "cooccurrence": Cooccurrence.fit(setup.before_test, catalogue)}
    if plain is not None:
        scorers["plain_cosine"] = embeddings_of(plain, catalogue, "cosine")
        scorers["plain_likelihood"] = embeddings_of(plain, catalogue)
    scorers["booked_cosine"] = embeddings_of(served, catalogue, "cosine")
    scorers["booked_likelihood"] = embeddings_of(served, catalogue)
    if truth is not None:
        scorers["oracle_similarity"] = Oracle.from_truth(catalogue, truth[0])
    reports, ranks = {}, {}
    random = random_rank(cases)
    sizes = np.array([len(candidates) for _, _, candidates, _ in cases.booked])
    reports["random"] = {"mean_booked_rank": random, "median_booked_rank": float(np.median((sizes + 1) / 2)),
                         "booked_rank_share": 0.5}
    ranks["random"] = (sizes + 1) / 2
    for name, scorer in scorers.items():
        reports[name], ranks[name] = report(scorer, cases, catalogue, setup.new)
    if truth is not None:
        ceiling = ceiling_ranks(cases, catalogue, truth[1])
        reports["ceiling"] = {"mean_booked_rank": float(ceiling.mean()), "median_booked_rank": float(np.median(ceiling)),
                              "booked_rank_share": float(((ceiling - 1) / np.maximum(sizes - 1, 1)).mean())}
        ranks["ceiling"] = ceiling
    result = Result(reports, ranks)
    if len(cases.booked) >= 2:
        for baseline in ("popularity", "cooccurrence", "plain_likelihood"):
            if baseline in ranks:
                result.margins[baseline] = paired_bootstrap(ranks["booked_likelihood"], ranks[baseline])
    return result
