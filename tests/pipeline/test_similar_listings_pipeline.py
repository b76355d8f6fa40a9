"""The similar listings group end to end on a small simulation, on your own files, and with bad data."""

from datetime import timedelta

import polars as pl
import pytest

from expectations import similar_listings as suites
from expectations.runner import run_suite
from models.similar_listings.data import leakage_audit
from tests.conftest import (
    assert_bad_raw_data_stops_the_run,
    assert_daily_fine_tune,
    case_named,
    copy_run,
    lake_table,
    latest_metadata,
    run_case,
    small_settings_for,
)
from tests.pipeline.reshape import renamed, stretched


@pytest.fixture(scope="module")
def listings_run(case_runs):
    return case_runs.get("similar_listings")


def test_the_served_model_beats_chance_and_popularity_and_the_ceiling_beats_it(listings_run):
    evaluation = {row["approach"]: row for row in lake_table(listings_run.settings, "similar_listings_evaluation").iter_rows(named=True)}
    assert set(evaluation) == {"random", "popularity", "cooccurrence", "plain_cosine", "plain_likelihood", "booked_cosine",
                               "booked_likelihood", "oracle_similarity", "ceiling"}
    served = evaluation["booked_likelihood"]["mean_booked_rank"]
    assert served < evaluation["popularity"]["mean_booked_rank"] < evaluation["random"]["mean_booked_rank"]
    assert evaluation["ceiling"]["mean_booked_rank"] < served  # knowing the guest is the most any similarity can do
    metadata = latest_metadata(listings_run.instance, "similar_listings_evaluation")
    assert metadata["model_value"].value == pytest.approx(served)
    assert "served model minus popularity" in metadata["margins"].value


def test_the_leakage_check_fails_when_the_refit_reads_the_test_window(listings_run):
    row = lake_table(listings_run.settings, "similar_listings_skipgram").row(0, named=True)
    honest = leakage_audit(row["fit_last_ts"], row["refit_last_ts"], row["validation_start"], row["test_start"])
    assert run_suite(honest, suites.leakage_suite()).success
    leaky = leakage_audit(row["fit_last_ts"], row["test_start"] + timedelta(hours=1), row["validation_start"], row["test_start"])
    result = run_suite(leaky, suites.leakage_suite())
    assert not result.success and "refit" in str(result.failures[0].examples)


def test_the_index_holds_every_listing_and_new_ones_have_cold_start_embeddings(listings_run):
    index = latest_metadata(listings_run.instance, "similar_listings_ann_index")
    listings = lake_table(listings_run.settings, "similar_listings_listings")
    assert index["listings"].value == listings.height
    assert index["cold_start_listings"].value > 0
    assert index["recall_at_20_vs_exact"].value >= 0.95


def test_bad_data_stops_at_a_blocking_check_and_the_champion_keeps_serving(listings_run, tmp_path):
    copy = copy_run(listings_run, tmp_path / "state")
    settings = copy.settings
    raw = tmp_path / "raw"
    raw.mkdir()
    lake_table(settings, "similar_listings_listings").write_parquet(raw / "listings.parquet")
    sessions = lake_table(settings, "similar_listings_sessions")
    # 5% of the events with an impossible page position: far above the 1% a quarantine may take.
    sessions.with_columns(position=pl.when(pl.int_range(pl.len()) % 20 == 0).then(0).otherwise("position")
                          ).write_parquet(raw / "sessions.parquet")
    assert_bad_raw_data_stops_the_run(copy, raw, "position")


@pytest.mark.slow
def test_your_own_months_of_data_run_end_to_end_without_an_oracle(tmp_path):
    """Bring your own data not shaped like the simulator: five months instead of two weeks, ids of another form,
    an extra column, guests without an id, a few events on listings nobody listed."""
    from models.similar_listings.simulator import SimulationConfig, simulate

    world = simulate(SimulationConfig(seed=4, n_days=12, n_listings=700, new_listings_per_day=6, n_users=1_200,
                                      sessions_per_day=220))
    start = world.sessions["ts"].min()
    stretch = lambda column: stretched(column, start, 12)  # noqa: E731 - 12 days: 5 months
    rename = lambda column: renamed(column, "listing-", "-eu")  # noqa: E731
    listings = world.listings.with_columns(stretch("created_ts"), rename("listing_id"), host_since=pl.lit(2019))
    sessions = world.sessions.with_columns(stretch("ts"), rename("listing_id"),
                                           user_id=pl.when(pl.int_range(pl.len()) % 50 == 0).then(None).otherwise("user_id"))
    sessions = sessions.with_columns(listing_id=pl.when(pl.int_range(pl.len()) % 5_000 == 1).then(pl.lit("never-listed"))
                                     .otherwise("listing_id"))
    raw = tmp_path / "raw"
    (raw / "sessions").mkdir(parents=True)
    listings.write_parquet(raw / "listings.parquet")
    for i, part in enumerate(sessions.with_columns(month=pl.col("ts").dt.month()).partition_by("month", maintain_order=True)):
        part.drop("month").write_parquet(raw / "sessions" / f"{i:02d}.parquet")
    case = case_named("similar_listings")
    settings = small_settings_for(case, tmp_path / "state", {"MLSD_SIMILAR_LISTINGS_RAW_DIR": str(raw)},
                                  validation_window="10% 60users", test_window="15% 80users")
    run = run_case(case, settings)
    assert latest_metadata(run.instance, "similar_listings_champion")["champion_version"].value == "1"
    evaluation = {row["approach"]: row for row in lake_table(settings, "similar_listings_evaluation").iter_rows(named=True)}
    assert "ceiling" not in evaluation and "oracle_similarity" not in evaluation
    assert latest_metadata(run.instance, "similar_listings_evaluation")["oracle"].value.startswith("none")
    assert evaluation["booked_likelihood"]["mean_booked_rank"] < evaluation["random"]["mean_booked_rank"]
    assert latest_metadata(run.instance, "similar_listings_sessions")["quarantined_rows"].value > 0
    assert "host_since" not in lake_table(settings, "similar_listings_listings").columns


def test_the_daily_fine_tune_learns_the_new_days_and_is_judged_on_the_newest(listings_run, tmp_path):
    _, tuned, made = assert_daily_fine_tune(listings_run, "similar_listings_sessions", tmp_path / "state")
    assert tuned.tags["model_kind"] == "skipgram"
    assert made["new_listings_learned"].value > 0  # listings the champion knew only by their cold start
