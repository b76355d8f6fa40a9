"""Similar listings' raw-input contract: each kind of defect in listings and sessions, and what its policy does."""

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from expectations import similar_listings as suites
from expectations.runner import policy_markdown, run_suite
from models.similar_listings.simulator import SimulationConfig, simulate


@pytest.fixture(scope="module")
def world():
    return simulate(SimulationConfig(n_days=5, n_listings=300, new_listings_per_day=5, n_users=400, sessions_per_day=80))


def _sessions_frame(world, sessions=None):
    sessions = world.sessions if sessions is None else sessions
    return sessions.join(world.listings.select("listing_id", "created_ts"), on="listing_id", how="left", maintain_order="left")


def _first(n: int):
    """n rows spread over the table (rows of one session share a timestamp: changing them together would make
    duplicates)."""
    row = pl.int_range(pl.len())
    return (row % 97 == 0) & (row < 97 * n)


SESSION_DEFECTS = {
    # defect: (inject, column named by the failure, quarantined rather than failing)
    "missing column": (lambda f: f.drop("position"), "position", False),
    "wrong type": (lambda f: f.with_columns(pl.col("position").cast(pl.Float64)), "position", False),
    "null id": (lambda f: f.with_columns(session_id=pl.when(_first(2)).then(None).otherwise("session_id")), "session_id", False),
    "duplicate event": (lambda f: pl.concat([f, f.head(3)]), "compound_columns_to_be_unique", False),
    "unknown event": (lambda f: f.with_columns(event=pl.when(_first(4)).then(pl.lit("purchase")).otherwise("event")), "event", True),
    "position out of range": (lambda f: f.with_columns(position=pl.when(_first(3)).then(0).otherwise("position")), "position", True),
    "unknown listing": (lambda f: f.with_columns(listing_id=pl.when(_first(5)).then(pl.lit("ghost")).otherwise("listing_id")), "listing_id", True),
    "event before its listing existed": (
        lambda f: f.with_columns(ts=pl.when(_first(2)).then(pl.col("created_ts") - timedelta(days=1)).otherwise("ts")), "ts", True),
}


@pytest.mark.parametrize("defect", SESSION_DEFECTS)
def test_the_sessions_suite_catches(defect, world):
    inject, column, quarantined = SESSION_DEFECTS[defect]
    broken = inject(_sessions_frame(world))
    result = run_suite(broken, suites.sessions_suite(world.listings["listing_id"]))
    caught = result.quarantined if quarantined else result.failures
    assert [f for f in caught if column in (f.column or f.expectation)], result.summary()
    if quarantined:  # a handful of rows: well under the 1% a quarantine may take, so the run goes on without them
        assert result.success, result.summary()
        kept, set_aside = result.split(broken)
        assert 0 < set_aside.height < 10 and kept.height + set_aside.height == broken.height
    else:
        assert not result.success


LISTING_DEFECTS = {
    "duplicate id": (lambda f: pl.concat([f, f.head(1)]), "listing_id", False),
    "null id": (lambda f: f.with_columns(listing_id=pl.when(_first(1)).then(None).otherwise("listing_id")), "listing_id", False),
    "latitude out of range": (lambda f: f.with_columns(lat=pl.when(_first(1)).then(123.0).otherwise("lat")), "lat", True),
    "price not positive": (lambda f: f.with_columns(price=pl.when(_first(2)).then(0.0).otherwise("price")), "price", True),
    "missing city": (lambda f: f.with_columns(city=pl.when(_first(1)).then(None).otherwise("city")), "city", True),
}


@pytest.mark.parametrize("defect", LISTING_DEFECTS)
def test_the_listings_suite_catches(defect, world):
    inject, column, quarantined = LISTING_DEFECTS[defect]
    broken = inject(world.listings)
    result = run_suite(broken, suites.listings_suite())
    caught = result.quarantined if quarantined else result.failures
    assert [f for f in caught if column in (f.column or f.expectation)], result.summary()
    assert result.success is quarantined


def test_many_bad_rows_are_more_than_a_quarantine_may_take(world):
    broken = _sessions_frame(world).with_columns(position=pl.when(pl.int_range(pl.len()) % 20 == 0).then(0).otherwise("position"))
    result = run_suite(broken, suites.sessions_suite(world.listings["listing_id"]))
    assert not result.success and "position" in result.summary()


def test_the_readme_states_every_raw_expectation_with_its_policy():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    ids = pl.Series([], dtype=pl.String)
    table = policy_markdown([("sessions", suites.sessions_suite(ids)), ("listings", suites.listings_suite())])
    assert table in readme, f"the README's policy table of similar_listings is not the suites':\n{table}"
