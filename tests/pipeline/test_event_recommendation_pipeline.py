"""The event recommendation group end to end on a small simulation, on your own files, and with bad data."""

import dagster as dg
import polars as pl
import pytest

from expectations import event_recommendation as suites
from expectations.runner import run_suite
from models.event_recommendation.features import leaky_end_of_sale, point_in_time_audit
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
def events_run(case_runs):
    return case_runs.get("event_recommendation")


def test_the_models_beat_popularity_distance_and_chance_and_the_oracle_beats_them(events_run):
    evaluation = {row["approach"]: row for row in lake_table(events_run.settings, "event_recommendation_evaluation").iter_rows(named=True)}
    assert set(evaluation) == {"random", "popularity", "distance", "logistic", "xgboost", "mlp", "oracle"}
    for model in ("xgboost", "mlp"):
        for baseline in ("random", "popularity", "distance"):
            assert evaluation[model]["map_at_10"] > evaluation[baseline]["map_at_10"], (model, baseline)
        assert evaluation["oracle"]["map_at_10"] > evaluation[model]["map_at_10"]
        assert evaluation[model]["nce"] < 1  # the probabilities beat always predicting the training rate
    metadata = latest_metadata(events_run.instance, "event_recommendation_evaluation")
    served = metadata["served_kind"].value
    assert metadata["model_value"].value == pytest.approx(evaluation[served]["map_at_10"])
    assert "minus popularity" in metadata["margins"].value


def test_the_point_in_time_check_passed_and_fails_on_counts_taken_at_the_end_of_the_sale(events_run):
    key = dg.AssetCheckKey(dg.AssetKey("event_recommendation_features"), "event_recommendation_features_as_of_impression")
    check = events_run.instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    assert check.event.dagster_event.event_specific_data.passed
    features = lake_table(events_run.settings, "event_recommendation_features")
    interactions = lake_table(events_run.settings, "event_recommendation_interactions")
    friendships = lake_table(events_run.settings, "event_recommendation_friendships")
    events = lake_table(events_run.settings, "event_recommendation_events")
    leaky = point_in_time_audit(leaky_end_of_sale(features, interactions), interactions, friendships, events)
    result = run_suite(leaky, suites.point_in_time_suite())
    assert not result.success and "registrations_so_far" in str(result.failures[0].examples)


def test_the_online_features_hold_every_user_and_the_live_events(events_run):
    metadata = latest_metadata(events_run.instance, "event_recommendation_online_features")
    assert metadata["user_records"].value == lake_table(events_run.settings, "event_recommendation_users").height
    assert metadata["live_events"].value > 0 and metadata["catalogue_records"].value == 1


def test_bad_data_stops_at_a_blocking_check_and_the_champion_keeps_serving(events_run, tmp_path):
    copy = copy_run(events_run, tmp_path / "state")
    settings = copy.settings
    raw = tmp_path / "raw"
    raw.mkdir()
    for table in ("users", "events", "friendships"):
        lake_table(settings, f"event_recommendation_{table}").write_parquet(raw / f"{table}.parquet")
    interactions = lake_table(settings, "event_recommendation_interactions")
    # 5% of the interactions of an unknown kind: far above the 1% a quarantine may take.
    interactions.with_columns(kind=pl.when(pl.int_range(pl.len()) % 20 == 0).then(pl.lit("bookmark")).otherwise("kind")
                              ).write_parquet(raw / "interactions.parquet")
    assert_bad_raw_data_stops_the_run(copy, raw, "kind")


@pytest.mark.slow
def test_your_own_months_of_data_run_end_to_end_without_an_oracle(tmp_path):
    """Bring your own data not shaped like the simulator: four months instead of two weeks, ids of another form,
    extra columns, events without a description, users without a gender, a few interactions with unknown events."""
    from models.event_recommendation.simulator import SimulationConfig, simulate

    world = simulate(SimulationConfig(seed=5, n_days=14, n_users=1_000, events_per_day=18, sessions_per_day=260))
    start = world.interactions["ts"].min()
    stretch = lambda column: stretched(column, start, 9)  # noqa: E731 - 14 days: 4 months
    user_id = lambda column: renamed(column, "member-")  # noqa: E731
    event_id = lambda column: renamed(column, "evt_", "_x")  # noqa: E731
    users = world.users.with_columns(user_id("user_id"), signup_channel=pl.lit("web"),
                                     gender=pl.when(pl.int_range(pl.len()) % 7 == 0).then(None).otherwise("gender"))
    events = world.events.with_columns(stretch("start_ts"), stretch("created_ts"), event_id("event_id"), user_id("host_id"),
                                       description=pl.when(pl.int_range(pl.len()) % 9 == 0).then(None).otherwise("description"))
    friendships = world.friendships.with_columns(user_id("user_id"), user_id("friend_id"))
    interactions = world.interactions.with_columns(stretch("ts"), user_id("user_id"), event_id("event_id"),
                                                   user_id("invitee_id"), source=pl.lit("app"))
    interactions = interactions.with_columns(event_id=pl.when(pl.int_range(pl.len()) % 4_000 == 1).then(pl.lit("evt_unknown"))
                                             .otherwise("event_id"))
    raw = tmp_path / "raw"
    (raw / "interactions").mkdir(parents=True)
    users.write_parquet(raw / "users.parquet")
    events.write_parquet(raw / "events.parquet")
    friendships.write_parquet(raw / "friendships.parquet")
    for i, part in enumerate(interactions.with_columns(month=pl.col("ts").dt.month()).partition_by("month", maintain_order=True)):
        part.drop("month").write_parquet(raw / "interactions" / f"{i:02d}.parquet")
    case = case_named("event_recommendation")
    settings = small_settings_for(case, tmp_path / "state", {"MLSD_EVENT_RECOMMENDATION_RAW_DIR": str(raw)},
                                  label_window="3d", validation_window="10% 60users", test_window="15% 80users")
    run = run_case(case, settings)
    assert latest_metadata(run.instance, "event_recommendation_champion")["champion_version"].value == "1"
    evaluation = {row["approach"]: row for row in lake_table(settings, "event_recommendation_evaluation").iter_rows(named=True)}
    assert "oracle" not in evaluation
    assert latest_metadata(run.instance, "event_recommendation_evaluation")["oracle"].value.startswith("none")
    served = latest_metadata(run.instance, "event_recommendation_evaluation")["served_kind"].value
    assert evaluation[served]["map_at_10"] > evaluation["random"]["map_at_10"]
    assert latest_metadata(run.instance, "event_recommendation_interactions")["quarantined_rows"].value > 0
    assert "signup_channel" not in lake_table(settings, "event_recommendation_users").columns


def test_the_daily_fine_tune_learns_the_new_days_and_is_judged_on_the_newest(events_run, tmp_path):
    champion, tuned, made = assert_daily_fine_tune(events_run, "event_recommendation_features", tmp_path / "state")
    assert tuned.tags["model_kind"] == champion.tags["model_kind"]
    assert made["holdout_users"].value > 0
