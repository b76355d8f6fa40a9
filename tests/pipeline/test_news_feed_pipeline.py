"""The news feed group end to end on a small simulation, on your own files, and with bad data."""

import dagster as dg
import polars as pl
import pytest

from expectations import news_feed as suites
from expectations.runner import run_suite
from models.news_feed.features import leaky_end_of_data, point_in_time_audit
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
from tests.pipeline.reshape import every, renamed, stretched

HEADS = ("click", "like", "comment", "share", "hide", "block", "skip")


@pytest.fixture(scope="module")
def feed_run(case_runs):
    return case_runs.get("news_feed")


def test_both_models_beat_chronological_order_and_chance_and_the_oracle_beats_them(feed_run):
    evaluation = {row["approach"]: row for row in lake_table(feed_run.settings, "news_feed_evaluation").iter_rows(named=True)}
    assert set(evaluation) == {"random", "chronological", "affinity", "xgboost", "multitask", "oracle"}
    for model in ("xgboost", "multitask"):
        for baseline in ("random", "chronological"):
            assert evaluation[model]["ndcg_at_10"] > evaluation[baseline]["ndcg_at_10"], (model, baseline)
        assert evaluation["oracle"]["ndcg_at_10"] > evaluation[model]["ndcg_at_10"]
        for head in ("click", "like", "skip"):  # every head learns something (the rare ones are few in a small run)
            assert evaluation[model][f"{head}_roc_auc"] > 0.55, (model, head)
            assert evaluation["oracle"][f"{head}_pr_auc"] > evaluation[model][f"{head}_pr_auc"], (model, head)
    metadata = latest_metadata(feed_run.instance, "news_feed_evaluation")
    served = metadata["served_kind"].value
    assert metadata["model_value"].value == pytest.approx(evaluation[served]["ndcg_at_10"])
    assert "minus reverse chronological" in metadata["margins"].value
    assert "passive users" in metadata["passive_users"].value and "weights" in metadata


def test_the_point_in_time_check_passed_and_fails_on_counts_taken_at_the_end(feed_run):
    key = dg.AssetCheckKey(dg.AssetKey("news_feed_features"), "news_feed_features_as_of_impression")
    check = feed_run.instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    assert check.event.dagster_event.event_specific_data.passed
    tables = {t: lake_table(feed_run.settings, f"news_feed_{t}") for t in ("features", "impressions", "reactions", "dwell", "posts")}
    leaky = leaky_end_of_data(tables["features"], tables["impressions"], tables["reactions"])
    audit = point_in_time_audit(leaky, tables["impressions"], tables["reactions"], tables["dwell"], tables["posts"], 2.0)
    result = run_suite(audit, suites.point_in_time_suite())
    assert not result.success and "post_like_rate" in str(result.failures[0].examples)


def test_the_online_features_hold_every_user_and_the_recent_posts(feed_run):
    metadata = latest_metadata(feed_run.instance, "news_feed_online_features")
    assert metadata["user_records"].value == lake_table(feed_run.settings, "news_feed_users").height
    assert metadata["post_records"].value > 0 and metadata["catalogue_records"].value == 1


def test_bad_data_stops_at_a_blocking_check_and_the_champion_keeps_serving(feed_run, tmp_path):
    copy = copy_run(feed_run, tmp_path / "state")
    raw = tmp_path / "raw"
    raw.mkdir()
    for table in ("users", "friendships", "posts", "impressions", "dwell"):
        lake_table(copy.settings, f"news_feed_{table}").write_parquet(raw / f"{table}.parquet")
    reactions = lake_table(copy.settings, "news_feed_reactions")
    # 5% of the reactions of an unknown kind: far above the 1% a quarantine may take.
    reactions.with_columns(reaction=pl.when(pl.int_range(pl.len()) % 20 == 0).then(pl.lit("wow")).otherwise("reaction")
                           ).write_parquet(raw / "reactions.parquet")
    assert_bad_raw_data_stops_the_run(copy, raw, "reaction")


@pytest.mark.slow
def test_your_own_months_of_data_run_end_to_end_without_an_oracle(tmp_path):
    """Bring your own data not shaped like the simulator: five months instead of two weeks, ids of another form,
    extra columns, posts without text or topic, impressions without a dwell row or a device, users without an age,
    ties listed both ways, and a few reactions of unknown impressions."""
    from models.news_feed.simulator import SimulationConfig, simulate

    world = simulate(SimulationConfig(seed=5, n_days=14, n_users=1_000, sessions_per_day=320))
    start = world.impressions["ts"].min()
    stretch = lambda column: stretched(column, start, 11)  # noqa: E731 - 14 days: 5 months
    user_id = lambda column: renamed(column, "member-")  # noqa: E731
    post_id = lambda column: renamed(column, "post/")  # noqa: E731
    impression_id = lambda column: renamed(column, "imp-", "-x")  # noqa: E731
    users = world.users.with_columns(user_id("user_id"), signup_channel=pl.lit("web"),
                                     age=pl.when(every(7)).then(None).otherwise("age"))
    friendships = world.friendships.with_columns(user_id("user_id"), user_id("friend_id"))
    mutual = friendships.filter(pl.col("kind") != "follow").head(200)
    friendships = pl.concat([friendships, mutual.select(user_id="friend_id", friend_id="user_id", kind="kind", since_ts="since_ts")])
    posts = world.posts.with_columns(post_id("post_id"), user_id("author_id"), stretch("created_ts"),
                                     text=pl.when(every(9)).then(None).otherwise("text"),
                                     topic=pl.when(every(11)).then(None).otherwise("topic"))
    impressions = world.impressions.with_columns(impression_id("impression_id"), user_id("user_id"), post_id("post_id"),
                                                 stretch("ts"), device=pl.when(every(5)).then(None).otherwise("device"),
                                                 app_version=pl.lit("9.1"))
    # Reactions keep their delay after the impression: the label window of an hour still holds them.
    shown = world.impressions.select("impression_id", shown="ts")
    reactions = (world.reactions.join(shown, on="impression_id")
                 .with_columns(ts=start + (pl.col("shown") - start) * 11 + (pl.col("ts") - pl.col("shown"))).drop("shown")
                 .with_columns(impression_id("impression_id")))
    reactions = reactions.with_columns(impression_id=pl.when(every(3_000)).then(pl.lit("imp-unknown")).otherwise("impression_id"))
    dwell = world.dwell.with_columns(impression_id("impression_id")).filter(~every(13))
    raw = tmp_path / "raw"
    (raw / "impressions").mkdir(parents=True)
    users.write_parquet(raw / "users.parquet")
    friendships.write_parquet(raw / "friendships.parquet")
    posts.write_parquet(raw / "posts.parquet")
    reactions.write_parquet(raw / "reactions.parquet")
    dwell.write_parquet(raw / "dwell.parquet")
    for i, part in enumerate(impressions.with_columns(month=pl.col("ts").dt.month()).partition_by("month", maintain_order=True)):
        part.drop("month").write_parquet(raw / "impressions" / f"{i:02d}.parquet")
    case = case_named("news_feed")
    settings = small_settings_for(case, tmp_path / "state", {"MLSD_NEWS_FEED_RAW_DIR": str(raw)},
                                  validation_window="10% 60users", test_window="15% 80users", candidate_days=30)
    run = run_case(case, settings)
    assert latest_metadata(run.instance, "news_feed_champion")["champion_version"].value == "1"
    evaluation = {row["approach"]: row for row in lake_table(settings, "news_feed_evaluation").iter_rows(named=True)}
    assert "oracle" not in evaluation
    assert latest_metadata(run.instance, "news_feed_evaluation")["oracle"].value.startswith("none")
    served = latest_metadata(run.instance, "news_feed_evaluation")["served_kind"].value
    assert evaluation[served]["ndcg_at_10"] > evaluation["random"]["ndcg_at_10"]
    assert latest_metadata(run.instance, "news_feed_reactions")["quarantined_rows"].value > 0
    assert latest_metadata(run.instance, "news_feed_features")["impressions_without_dwell"].value > 0
    assert "signup_channel" not in lake_table(settings, "news_feed_users").columns


def test_the_daily_fine_tune_learns_the_new_days_and_is_judged_on_the_newest(feed_run, tmp_path):
    champion, tuned, made = assert_daily_fine_tune(feed_run, "news_feed_features", tmp_path / "state")
    assert tuned.tags["model_kind"] == champion.tags["model_kind"]
    assert made["holdout_sessions"].value > 0
