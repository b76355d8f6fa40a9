"""The video recommendation group end to end on a small simulation, on your own files, and with bad data."""

import dagster as dg
import polars as pl
import pytest

from expectations import video_rec as suites
from expectations.runner import run_suite
from models.video_rec.features import Cutoffs, leakage_audit
from tests.conftest import (
    assert_bad_raw_data_stops_the_run,
    case_named,
    copy_run,
    lake_table,
    latest_metadata,
    run_case,
    small_settings_for,
)


def test_the_bento_is_the_recommendation_service(video_pipeline):
    _, _, instance, _ = video_pipeline
    bento = latest_metadata(instance, "video_rec_bento")
    assert bento["bento_tag"].value.startswith("video_recommender:")


def test_the_two_stage_chain_beats_popularity_and_retrieval_alone(video_pipeline):
    settings, _, instance, _ = video_pipeline
    evaluation = {row["approach"]: row for row in lake_table(settings, "video_rec_evaluation").iter_rows(named=True)}
    assert set(evaluation) == {"popularity", "ease", "mf", "two_tower", "two_stage", "oracle"}
    chain = evaluation["two_stage"]
    for metric in ("precision_at_10", "recall_at_10", "map_at_10", "ndcg_at_10"):
        assert chain[metric] > evaluation["popularity"][metric], metric
        assert chain[metric] > evaluation["two_tower"][metric], metric
        assert evaluation["oracle"][metric] > chain[metric], metric  # the generator's truth is the ceiling
    assert "two-stage + re-ranking" in latest_metadata(instance, "video_rec_evaluation")["comparison"].value


def test_the_item_item_model_is_a_candidate_source_and_a_ranker_feature(video_pipeline):
    settings, _, instance, _ = video_pipeline
    item_item = latest_metadata(instance, "video_rec_item_item")
    assert item_item["l2"].value in {float(k) for k in item_item["validation_ndcg_at_10_by_l2"].value}
    examples = lake_table(settings, "video_rec_ranker_training_data")
    only_item_item = examples.filter((pl.col("from_ease") == 1) & (pl.col("from_ann") == 0) & (pl.col("from_popular") == 0)
                                     & (pl.col("from_trending") == 0))
    assert only_item_item.height > 0 and (only_item_item["tt_rank"] == 1_000.0).all()
    assert (examples.filter(pl.col("from_ease") == 1)["ease_rank"] < 100).all()
    assert (examples.filter(pl.col("from_ease") == 0)["ease_rank"] == 1_000.0).all()
    # The item-item candidates are the positives more often than the rest: the source earns its place.
    rates = examples.group_by("from_ease").agg(pl.col("label").mean()).sort("from_ease")["label"].to_list()
    assert rates[1] > rates[0]


def test_batch_recommendations_are_top_k_unseen_and_distinct(video_pipeline):
    settings, _, _, _ = video_pipeline
    recommendations = lake_table(settings, "video_rec_batch_recommendations")
    users = lake_table(settings, "video_rec_users")
    assert recommendations["user_id"].n_unique() == users.height
    per_user = recommendations.group_by("user_id").agg(n=pl.len(), distinct=pl.col("video_id").n_unique(),
                                                       ranks=pl.col("rank").sort())
    assert (per_user["n"] == settings.of("video_rec").top_k).all() and (per_user["distinct"] == per_user["n"]).all()
    assert per_user["ranks"].to_list()[0] == list(range(1, settings.of("video_rec").top_k + 1))
    seen = lake_table(settings, "video_rec_interactions").select("user_id", "video_id").unique()
    assert recommendations.join(seen, on=["user_id", "video_id"], how="semi").height == 0


def test_leakage_audit_catches_features_from_the_label_window(video_pipeline):
    settings, _, _, _ = video_pipeline
    labeled = lake_table(settings, "video_rec_labeled_interactions")
    ranker_data = lake_table(settings, "video_rec_ranker_training_data")
    cutoffs = Cutoffs.from_interactions(labeled, settings.of("video_rec").ranker_window, settings.of("video_rec").test_window)
    assert run_suite(leakage_audit(cutoffs, labeled, ranker_data), suites.leakage_audit_suite()).success
    leaky = ranker_data.with_columns(features_as_of=pl.col("labels_until"))
    result = run_suite(leakage_audit(cutoffs, labeled, leaky), suites.leakage_audit_suite())
    assert not result.success and "ranker features" in str(result.failures[0].examples)


def test_bad_data_stops_at_a_blocking_check_and_the_champion_keeps_serving(case_runs, tmp_path):
    copy = copy_run(case_runs.get("video_rec"), tmp_path / "state")
    settings = copy.settings
    raw = tmp_path / "raw"
    raw.mkdir()
    lake_table(settings, "video_rec_users").write_parquet(raw / "users.parquet")
    lake_table(settings, "video_rec_videos").write_parquet(raw / "videos.parquet")
    interactions = lake_table(settings, "video_rec_interactions")
    # 5% of the views out of range: far above the 1% a quarantine may take.
    interactions.with_columns(
        watch_fraction=pl.when(pl.int_range(pl.len()) % 20 == 0).then(1.7).otherwise(pl.col("watch_fraction"))
    ).write_parquet(raw / "interactions.parquet")
    assert_bad_raw_data_stops_the_run(copy, raw, "watch_fraction")


@pytest.mark.slow
def test_your_own_files_run_end_to_end_without_an_oracle(tmp_path):
    """Bring-your-own-data: parquet files in the contract's shape (no channel_id, an extra column) replace the simulator."""
    from models.video_rec.simulator import VideoSimulationConfig, simulate

    world = simulate(VideoSimulationConfig(seed=3, n_days=12, n_users=500, n_videos=500, new_videos_per_day=15))
    raw = tmp_path / "raw"
    (raw / "interactions").mkdir(parents=True)
    world.users.write_parquet(raw / "users.parquet")
    world.videos.drop("channel_id").with_columns(views_lifetime=pl.lit(0)).write_parquet(raw / "videos.parquet")
    days = world.interactions.with_columns(day=pl.col("ts").dt.date())
    for i, part in enumerate(days.partition_by("day", maintain_order=True)):
        part.drop("day").write_parquet(raw / "interactions" / f"{i:02d}.parquet")
    case = case_named("video_rec")
    settings = small_settings_for(case, tmp_path / "state", {"MLSD_VIDEO_REC_RAW_DIR": str(raw)}, ranker_window="2d", test_window="2d")
    run = run_case(case, settings)
    instance = run.instance
    assert latest_metadata(instance, "video_rec_champion")["champion_version"].value == "1"
    evaluation = lake_table(settings, "video_rec_evaluation")
    assert "oracle" not in evaluation["approach"].to_list()
    assert latest_metadata(instance, "video_rec_evaluation")["oracle"].value.startswith("none")
    videos = lake_table(settings, "video_rec_videos")
    assert "views_lifetime" not in videos.columns and videos["channel_id"].null_count() == videos.height


def _ratings_shaped_world(seed: int = 5, users: int = 700, movies: int = 900, days: int = 210):
    """Data shaped like a public movie-ratings set, not like the simulator (models.video_rec.ratings): every view a
    full watch, 4-5 liked, 1-2 disliked, coarse release dates as upload times, genres as tags; months of bursty
    sessions, most users active early, activity tailing off; some views dated before their movie's release."""
    from models.video_rec.ratings import RatingsSimulationConfig, simulate_ratings

    world = simulate_ratings(RatingsSimulationConfig(seed=seed, n_users=users, n_movies=movies, n_days=days))
    early = world.interactions.join(world.videos.select("video_id", "upload_ts"), on="video_id").filter(
        pl.col("ts") < pl.col("upload_ts")).height
    return world.users, world.videos, world.interactions, early


@pytest.mark.slow
def test_months_of_ratings_shaped_data_quarantine_the_early_views_and_size_the_windows(tmp_path):
    """Bring-your-own-data of another shape: the 0.2% of views before their video's release are quarantined and
    counted, a mistyped age only warns, the windows grow until they hold enough, and a challenger is trained."""
    users, videos, interactions, early = _ratings_shaped_world()
    raw = tmp_path / "raw"
    raw.mkdir()
    users.write_parquet(raw / "users.parquet")
    videos.write_parquet(raw / "videos.parquet")
    interactions.write_parquet(raw / "interactions.parquet")
    # Fixed 4-day windows would judge on the thin tail.
    tail = Cutoffs.from_interactions(interactions, "4d", "4d")
    thin = interactions.filter(pl.col("ts") >= tail.test_start)["user_id"].n_unique()

    case = case_named("video_rec")
    settings = small_settings_for(case, tmp_path / "state", {"MLSD_VIDEO_REC_RAW_DIR": str(raw)},
                                  ranker_window="12% 300users", test_window="12% 300users")
    run = run_case(case, settings)
    instance = run.instance
    assert latest_metadata(instance, "video_rec_champion")["champion_version"].value == "1"
    evaluation = lake_table(settings, "video_rec_evaluation")
    assert {"popularity", "ease", "mf", "two_tower", "two_stage"} <= set(evaluation["approach"].to_list())
    assert "two-stage minus ease: ndcg_at_10 difference" in latest_metadata(instance, "video_rec_evaluation")["margins"].value

    quarantined = lake_table(settings, "video_rec_interactions_quarantine")
    assert quarantined.height == early > 0
    assert quarantined["failed_expectations"].str.contains("upload_ts").all()
    assert latest_metadata(instance, "video_rec_interactions")["quarantined_rows"].value == early
    assert latest_metadata(instance, "video_rec_interactions_quarantine")["dagster/row_count"].value == early
    assert lake_table(settings, "video_rec_interactions").height == interactions.height - early

    records = instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION))
    checks = {r.event_log_entry.dagster_event.event_specific_data.check_name: r.event_log_entry.dagster_event.event_specific_data
              for r in records}
    users_check = checks["video_rec_users_valid"]  # the mistyped age warns and blocks nothing
    assert not users_check.passed and users_check.severity == dg.AssetCheckSeverity.WARN
    assert "age" in users_check.metadata["warnings"].value
    assert checks["video_rec_interactions_valid"].passed
    assert checks["video_rec_interactions_valid"].metadata["quarantined_rows"].value == early

    labeled = lake_table(settings, "video_rec_labeled_interactions")
    test_users = labeled.filter(pl.col("window") == "test")["user_id"].n_unique()
    assert test_users >= 300 > thin, (test_users, thin)
    assert labeled.filter(pl.col("window") == "ranker_train")["user_id"].n_unique() >= 300
