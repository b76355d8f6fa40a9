"""Similar listings' ML code without Dagster: the simulator, the time split, the skip-gram's contexts and negatives,
cold start, the book's metric, and the served model's rules."""

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
import torch

from models.similar_listings import skipgram as sg
from models.similar_listings.data import Catalogue, Cutoffs, evaluation_cases, sentences, sessions_between
from models.similar_listings.evaluation import booked_ranks, embeddings_of, report
from models.similar_listings.service_model import SimilarListings, UnknownListing
from models.similar_listings.similarity import Cooccurrence, Embeddings, Scorer
from models.similar_listings.simulator import SimulationConfig, simulate

CONFIG = SimulationConfig(n_days=10, n_listings=600, new_listings_per_day=6, n_users=1_200, sessions_per_day=220)
FAST = sg.SkipGramConfig(dim=16, epochs=5, batch_size=1024, learning_rate=0.02)


@pytest.fixture(scope="module")
def world():
    return simulate(CONFIG)


@pytest.fixture(scope="module")
def split(world):
    cutoffs = Cutoffs.from_sessions(world.sessions, "2d", "2d")
    return cutoffs, sessions_between(world.sessions, None, cutoffs.test_start)


@pytest.fixture(scope="module")
def trained(world, split):
    _, before_test = split
    return sg.train(sentences(before_test), world.listings, FAST, epochs=5)


def test_the_simulator_repeats_itself_and_keeps_its_own_rules(world):
    again = simulate(CONFIG)
    assert again.sessions.equals(world.sessions) and again.listings.equals(world.listings)
    events = world.sessions.join(world.listings.select("listing_id", "created_ts"), on="listing_id")
    assert events.filter(pl.col("ts") < pl.col("created_ts")).is_empty()  # nobody sees a listing before it exists
    booked = world.sessions.filter(pl.col("event") == "book").select("session_id", "listing_id")
    clicked = world.sessions.filter(pl.col("event") == "click").select("session_id", "listing_id")
    assert booked.join(clicked, on=["session_id", "listing_id"], how="anti").is_empty()  # a booking follows a click
    cities = world.sessions.join(world.listings.select("listing_id", "city"), on="listing_id").group_by("session_id").agg(
        pl.col("city").n_unique())
    assert cities["city"].max() == 1  # a search session is in one city
    assert set(world.listing_truth.columns) >= {"style", "quality"}  # the latent truth stays out of the raw tables
    assert "style" not in world.listings.columns


def test_the_windows_follow_each_other_and_too_little_data_names_the_setting(world, split):
    cutoffs, before_test = split
    assert cutoffs.start < cutoffs.validation_start < cutoffs.test_start < cutoffs.end
    assert before_test["ts"].max() < cutoffs.test_start
    windows = cutoffs.windows(world.sessions)
    assert windows["sessions"].min() > 0 and windows["bookings"].min() > 0
    three_days = world.sessions.filter(pl.col("ts") < world.sessions["ts"].min() + timedelta(days=3))
    with pytest.raises(ValueError, match="MLSD_SIMILAR_LISTINGS_(VALIDATION|TEST)_WINDOW="):
        Cutoffs.from_sessions(three_days, "2d", "2d", settings=("MLSD_SIMILAR_LISTINGS_VALIDATION_WINDOW",
                                                                "MLSD_SIMILAR_LISTINGS_TEST_WINDOW"))


def test_a_session_open_at_the_cutoff_is_read_only_up_to_it(world):
    cut = world.sessions["ts"].min() + timedelta(days=2)
    part = sessions_between(world.sessions, None, cut)
    assert part["ts"].max() < cut


def _sentences(*rows):
    return pl.DataFrame({"clicks": [list(r[0]) for r in rows], "booked": [r[1] for r in rows]},
                        schema={"clicks": pl.List(pl.String), "booked": pl.String})


def test_the_booked_listing_is_a_context_of_every_click_beyond_the_window():
    index = {name: i for i, name in enumerate("abcdefg")}
    frame = _sentences(("abcdef", "f"))
    booked = {tuple(p) for p in sg.training_pairs(frame, index, sg.SkipGramConfig(window=1))}
    plain = {tuple(p) for p in sg.training_pairs(frame, index, sg.SkipGramConfig(window=1).plain)}
    assert (index["a"], index["f"]) in booked and (index["a"], index["f"]) not in plain  # five clicks apart
    assert (index["a"], index["b"]) in plain and (index["b"], index["a"]) in plain
    assert (index["f"], index["f"]) not in booked  # never a listing with itself


def test_hard_negatives_come_from_the_centre_listings_city():
    city_of = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])  # the vocabulary is ordered by city
    start = torch.from_numpy(np.searchsorted(city_of, city_of, side="left"))
    size = torch.from_numpy(np.searchsorted(city_of, city_of, side="right")) - start
    centres = torch.tensor([0, 4, 6, 8])
    drawn = sg.same_city_negatives(centres, start, size, 200)
    for centre, row in zip(centres.tolist(), drawn.numpy()):
        assert set(city_of[row]) == {city_of[centre]}
    assert set(drawn[2].tolist()) == {5, 6, 7, 8}  # every listing of the city can be drawn


def test_learned_neighbours_share_the_city(world, trained):
    """Sessions are in one city, so what a listing is clicked with is in its city: its nearest learned listings
    are too (chance would be about a quarter, with four cities)."""
    catalogue = Catalogue.from_listings(world.listings)
    for embeddings in (Embeddings.cosine(catalogue, trained.ids, trained.vectors), embeddings_of(trained, catalogue)):
        learned = np.flatnonzero(embeddings.learned)[:200]
        scores = embeddings.queries[learned] @ embeddings.items.T
        scores[np.arange(len(learned)), learned] = -np.inf
        top = np.argsort(-scores, axis=1)[:, :10]
        purity = (catalogue.city[top] == catalogue.city[learned, None]).mean()
        assert purity > 0.6


def test_a_listing_no_session_taught_gets_its_neighbours_mean(world, trained):
    catalogue = Catalogue.from_listings(world.listings)
    embeddings = Embeddings.cosine(catalogue, trained.ids, trained.vectors)
    cold = np.flatnonzero(~embeddings.learned)
    assert len(cold) > 0 and embeddings.learned.sum() == len(set(trained.ids) & set(catalogue.ids))
    assert np.isfinite(embeddings.items).all()
    # Its nearest learned listings are in its city, of its type.
    position = cold[0]
    scores = embeddings.items @ embeddings.queries[position]
    scores[~embeddings.learned] = -np.inf
    nearest = np.argsort(-scores)[:5]
    assert (catalogue.city[nearest] == catalogue.city[position]).all()


class _Fixed(Scorer):
    def __init__(self, values):
        self.values = values

    def scores(self, query, candidates):
        return self.values[candidates]


def test_the_booked_rank_counts_better_candidates_and_shares_ties():
    from models.similar_listings.data import Cases

    cases = Cases(booked=[("s1", 0, np.array([1, 2, 3, 4]), 3), ("s2", 0, np.array([1, 2, 3]), 2)],
                  next_clicks=np.zeros((0, 2), dtype=np.int64))
    values = np.array([0.0, 0.9, 0.5, 0.5, 0.1])
    ranks = booked_ranks(_Fixed(values), cases)
    assert ranks.tolist() == [2.5, 2.5]  # one better, one tied: ranks 2 and 3 shared


def test_the_served_score_ranks_the_booked_listing_far_above_chance(world, split, trained):
    """Not the product's claim (the evaluation asset measures that against the baselines on the test window) but a
    guard against a silent regression of the training code on a small world."""
    cutoffs, before_test = split
    catalogue = Catalogue.from_listings(world.listings, cutoffs.end)
    cases = evaluation_cases(sessions_between(world.sessions, cutoffs.test_start, None), catalogue)
    new = np.zeros(len(catalogue), dtype=bool)
    model, _ = report(embeddings_of(trained, catalogue), cases, catalogue, new)
    random = np.mean([(len(c) + 1) / 2 for _, _, c, _ in cases.booked])
    assert model["mean_booked_rank"] < 0.75 * random
    counts, _ = report(Cooccurrence.fit(before_test, catalogue), cases, catalogue, new)
    assert counts["mean_booked_rank"] < random


def test_later_sessions_do_not_move_the_embeddings(world, split, trained):
    """Leakage: what the model learns from sessions before the test window does not change when the test window's
    sessions change."""
    cutoffs, _ = split
    later = world.sessions.filter(pl.col("ts") >= cutoffs.test_start).with_columns(
        listing_id=pl.col("listing_id").shuffle(seed=1))
    changed = pl.concat([world.sessions.filter(pl.col("ts") < cutoffs.test_start), later])
    again = sg.train(sentences(sessions_between(changed, None, cutoffs.test_start)), world.listings, FAST, epochs=5)
    assert again.ids == trained.ids
    np.testing.assert_array_equal(again.vectors, trained.vectors)


def test_the_served_model_keeps_to_the_city_the_filters_and_says_what_it_did(world, trained, tmp_path):
    as_of = world.sessions["ts"].max() + timedelta(seconds=1)
    model = SimilarListings.build(world.listings, trained, as_of)
    listing = trained.ids[0]
    position = model.catalogue.position[listing]
    answer = model.similar(listing, 10)
    assert answer.strategy == "learned" and answer.search == "ann" and len(answer.results) == 10
    ids = [r[0] for r in answer.results]
    assert listing not in ids and len(set(ids)) == 10
    assert set(model.catalogue.city[model.catalogue.positions(ids)]) == {model.catalogue.city[position]}
    scores = [r[1] for r in answer.results]
    assert scores == sorted(scores, reverse=True)
    price = model.catalogue.price[position]
    narrow = model.similar(listing, 5, min_price=price * 0.9, max_price=price * 1.1, types={"entire_home"},
                           exclude={ids[0]})
    for other, _, other_price, kind in narrow.results:
        assert price * 0.9 <= other_price <= price * 1.1 and kind == "entire_home" and other != ids[0]
    cold = next(str(i) for i, learned in zip(model.catalogue.ids, model.embeddings.learned) if not learned)
    assert model.similar(cold, 3).strategy == "cold_start"
    with pytest.raises(UnknownListing):
        model.similar("no-such-listing", 3)
    model.save(tmp_path / "bundle")
    loaded = SimilarListings.load(tmp_path / "bundle")
    assert [r[0] for r in loaded.similar(listing, 10).results] == ids


def test_the_day_description_alarms_on_a_budget_drift_and_not_on_a_stable_day():
    """The drift kit's judgement of a day (models.drift.judge_day) on the case's description: after guests' budgets
    rise, the prices they click move past the PSI threshold; the days before do not."""
    from models.drift import judge_day
    from models.similar_listings.monitoring import MONITORS, describe_day, describe_days

    config = SimulationConfig(n_days=10, n_listings=600, new_listings_per_day=6, n_users=1_200, sessions_per_day=220,
                              drift_kind="budget", drift_day=8)
    world = simulate(config)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    trained = sg.train(sentences(sessions_between(world.sessions, None, start + timedelta(days=5))), world.listings,
                       FAST, epochs=3)
    reference = describe_days(world.sessions, world.listings, trained, start + timedelta(days=5), start + timedelta(days=7))

    def judged(n: int):
        day = describe_day(world.sessions, world.listings, trained, start + timedelta(days=n))
        current = {**day.distributions, **{k: v[0] for k, v in day.levels.items()}}
        return judge_day(day.days[0], MONITORS, reference.distributions, current, reference.levels, day.live,
                         reference.live)

    stable, drifted = judged(7), judged(9)
    assert not stable.alarm, stable.messages
    assert drifted.alarm and drifted.psi["clicked_log_price"] > 0.25, drifted.messages
