"""The people-you-may-know group end to end on a small simulation, on your own files, and with bad data."""

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from expectations import people_you_may_know as suites
from expectations.runner import run_suite
from tests.conftest import (
    assert_bad_raw_data_stops_the_run,
    case_named,
    copy_run,
    lake_table,
    latest_metadata,
    run_case,
    small_settings_for,
)
from tests.pipeline.reshape import every, renamed, stretched


def _suggestions(settings) -> pl.DataFrame:
    """Every batch day's suggestions (a partitioned asset: a file per day)."""
    return pl.read_parquet(settings.lake_dir / "assets" / "people_you_may_know_suggestions")


@pytest.fixture(scope="module")
def pymk_run(case_runs):
    return case_runs.get("people_you_may_know")


def test_the_models_beat_mutual_friends_and_adamic_adar_and_the_oracle_beats_them(pymk_run):
    evaluation = {r["approach"]: r for r in lake_table(pymk_run.settings, "people_you_may_know_evaluation").iter_rows(named=True)}
    assert set(evaluation) == {"mutual_friends", "adamic_adar", "xgboost", "graphsage", "oracle"}
    for model in ("xgboost", "graphsage"):
        for baseline in ("mutual_friends", "adamic_adar"):
            assert evaluation[model]["roc_auc"] > evaluation[baseline]["roc_auc"], (model, baseline)
            assert evaluation[model]["map_at_10"] > evaluation[baseline]["map_at_10"], (model, baseline)
    metadata = latest_metadata(pymk_run.instance, "people_you_may_know_evaluation")
    served = lake_table(pymk_run.settings, "people_you_may_know_model")["kind"][0]
    assert metadata["model_value"].value == pytest.approx(evaluation[served]["map_at_10"])
    assert metadata["oracle_value"].value > metadata["model_value"].value
    assert "Adamic-Adar" in metadata["margins"].value or "mutual friends" in metadata["margins"].value


def test_standardization_finds_the_pairs_spellings_hide(pymk_run):
    metadata = latest_metadata(pymk_run.instance, "people_you_may_know_attributes")
    for attribute in ("school", "company", "city"):
        assert metadata[f"{attribute}_pair_recall"].value > 0.99
        assert metadata[f"{attribute}_pair_recall_as_written"].value < 0.8


def test_the_leakage_check_fails_when_label_edges_enter_the_input_graph(pymk_run):
    audit = lake_table(pymk_run.settings, "people_you_may_know_model").select("input", "last_ts", "must_end_before")
    assert audit.height == 6  # three snapshots for each of the two models
    assert run_suite(audit, suites.leakage_suite()).success
    leaky = audit.with_columns(last_ts=pl.when(pl.col("input").str.contains("test")).then(
        pl.col("must_end_before") + timedelta(days=3)).otherwise("last_ts"))
    result = run_suite(leaky, suites.leakage_suite())
    assert not result.success and "test snapshot" in str(result.failures[0].examples)


def test_the_batch_suggests_for_every_active_member_and_publishes_one_snapshot(pymk_run):
    from models.online_store import open_store

    metadata = latest_metadata(pymk_run.instance, "people_you_may_know_suggestions")
    suggestions = _suggestions(pymk_run.settings)
    assert suggestions["user_id"].n_unique() == metadata["active_members"].value > 0
    assert suggestions.group_by("user_id").len()["len"].max() <= 20
    assert (suggestions.filter(pl.col("source") == "friends of friends")["mutual_friends"] >= 1).all()
    assert metadata["members_without_friends"].value > 0 and "shared school" in metadata["by_source"].value
    store = open_store(pymk_run.settings.platform.online_store_url, "people_you_may_know")
    info = store.current()
    assert info.as_of == metadata["as_of"].value
    member = suggestions["user_id"][0]
    record = store.get("suggestions", [member])[0]
    assert [i[0] for i in record["items"]] == suggestions.filter(pl.col("user_id") == member).sort("rank")["suggested_id"].to_list()


def test_an_older_day_rerun_does_not_replace_the_served_batch(pymk_run, tmp_path):
    from models.online_store import open_store

    copy = copy_run(pymk_run, tmp_path / "state")
    batch = copy.defs.resolve_job_def("people_you_may_know_batch_job")
    keys = batch.partitions_def.get_partition_keys()
    store = open_store(copy.settings.platform.online_store_url, "people_you_may_know")
    before = store.current()
    assert batch.execute_in_process(partition_key=keys[-3], instance=copy.instance).success
    assert store.current() == before
    older = latest_metadata(copy.instance, "people_you_may_know_suggestions")
    assert older["published"].value is False and older["as_of"].value < before.as_of
    assert batch.execute_in_process(partition_key=keys[-1], instance=copy.instance).success  # the same day again
    again = store.current()
    assert again.as_of == before.as_of and again.records == before.records


def test_bad_data_stops_at_a_blocking_check_and_the_champion_keeps_serving(pymk_run, tmp_path):
    copy = copy_run(pymk_run, tmp_path / "state")
    raw = tmp_path / "raw"
    raw.mkdir()
    for table in ("users", "requests", "profile_views"):
        lake_table(copy.settings, f"people_you_may_know_{table}").write_parquet(raw / f"{table}.parquet")
    connections = lake_table(copy.settings, "people_you_may_know_connections")
    # Each of the first 30 connections listed again the other way round: counted twice, so the run stops.
    pl.concat([connections, connections.head(30).select(user_a="user_b", user_b="user_a", ts="ts")]
              ).write_parquet(raw / "connections.parquet")
    assert_bad_raw_data_stops_the_run(copy, raw, "lo")


@pytest.mark.slow
def test_your_own_months_of_data_run_end_to_end_without_an_oracle(tmp_path):
    """Bring your own data not shaped like the simulator: five months instead of five weeks, ids of another form, an
    extra column, members with only a school (no company, industry, city or sign-up time), requests without an outcome,
    sparse members, and a few connections and views of members nobody knows."""
    from models.people_you_may_know.simulator import SimulationConfig, simulate

    world = simulate(SimulationConfig(seed=8, users=900, n_days=35))
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    stretch = lambda column: stretched(column, start, 4)  # noqa: E731 - 5 weeks: 5 months
    member = lambda column: renamed(column, "acct-")  # noqa: E731
    users = world.users.select(member("user_id"), "school", plan=pl.lit("free"))
    connections = world.connections.with_columns(member("user_a"), member("user_b"), stretch("ts"))
    connections = connections.with_columns(user_b=pl.when(every(1_500)).then(pl.lit("acct-nobody")).otherwise("user_b"))
    requests = world.requests.with_columns(member("from_user"), member("to_user"), stretch("ts"),
                                           accepted=pl.when(every(50)).then(None).otherwise("accepted"))
    views = world.profile_views.with_columns(member("viewer"), member("viewed"), stretch("ts"))
    views = views.with_columns(viewed=pl.when(every(500)).then(pl.lit("acct-nobody")).otherwise("viewed"))
    raw = tmp_path / "raw"
    (raw / "connections").mkdir(parents=True)
    users.write_parquet(raw / "users.parquet")
    requests.write_parquet(raw / "requests.parquet")
    views.write_parquet(raw / "profile_views.parquet")
    for i, part in enumerate(connections.with_columns(month=pl.col("ts").dt.month()).partition_by("month", maintain_order=True)):
        part.drop("month").write_parquet(raw / "connections" / f"{i:02d}.parquet")
    case = case_named("people_you_may_know")
    settings = small_settings_for(case, tmp_path / "state", {"MLSD_PEOPLE_YOU_MAY_KNOW_RAW_DIR": str(raw)}, label_days=21)
    run = run_case(case, settings)
    assert latest_metadata(run.instance, "people_you_may_know_champion")["champion_version"].value == "1"
    evaluation = {r["approach"]: r for r in lake_table(settings, "people_you_may_know_evaluation").iter_rows(named=True)}
    assert "oracle" not in evaluation
    assert latest_metadata(run.instance, "people_you_may_know_evaluation")["oracle"].value.startswith("none")
    served = lake_table(settings, "people_you_may_know_model")["kind"][0]
    assert evaluation[served]["map_at_10"] > evaluation["mutual_friends"]["map_at_10"]
    assert latest_metadata(run.instance, "people_you_may_know_connections")["quarantined_rows"].value > 0
    assert "plan" not in lake_table(settings, "people_you_may_know_users").columns
    assert _suggestions(settings)["user_id"].str.starts_with("acct-").all()
