"""The video search group end to end on a small simulation, on your own files, and with bad data."""

from datetime import timedelta

import polars as pl
import pytest

from expectations import video_search as suites
from expectations.runner import run_suite
from models.video_search.data import leakage_audit
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


@pytest.fixture(scope="module")
def search_run(case_runs):
    return case_runs.get("video_search")


def test_fusion_beats_bm25_and_the_dual_encoder_and_the_oracle_beats_it(search_run):
    evaluation = {row["approach"]: row for row in lake_table(search_run.settings, "video_search_evaluation").iter_rows(named=True)}
    assert set(evaluation) == {"bm25", "minilm", "bm25_popularity", "hybrid_frozen", "dual_encoder", "bm25_auto_tags",
                               "fusion", "oracle"}
    fusion = evaluation["fusion"]["mrr_at_10"]
    assert fusion > evaluation["bm25"]["mrr_at_10"] and fusion > evaluation["dual_encoder"]["mrr_at_10"]
    assert evaluation["oracle"]["mrr_at_10"] > fusion
    # Videos without tags: text search barely finds them, the frames do.
    assert evaluation["dual_encoder"]["mrr_at_10_poor_metadata"] > evaluation["bm25"]["mrr_at_10_poor_metadata"]
    metadata = latest_metadata(search_run.instance, "video_search_evaluation")
    assert metadata["model_value"].value == pytest.approx(fusion)
    assert "fusion - hybrid_frozen" in metadata["margins"].value


def test_the_index_holds_every_video_and_auto_tags_the_untagged(search_run):
    index = latest_metadata(search_run.instance, "video_search_index")
    videos = lake_table(search_run.settings, "video_search_videos")
    assert index["videos"].value == videos.height
    assert 0 < index["auto_tagged_videos"].value <= videos["tags"].is_null().sum()
    tagger = latest_metadata(search_run.instance, "video_search_auto_tagger")
    assert tagger["tagger_precision"].value > 0.5


def test_the_leakage_check_fails_when_training_reads_the_judged_windows(search_run):
    windows = {row["window"]: row["start"] for row in lake_table(search_run.settings, "video_search_windows").iter_rows(named=True)}
    encoder = lake_table(search_run.settings, "video_search_dual_encoder").row(0, named=True)
    tagger = lake_table(search_run.settings, "video_search_auto_tagger").row(0, named=True)
    index = lake_table(search_run.settings, "video_search_index").row(0, named=True)
    honest = leakage_audit(encoder["last_query"], tagger["last_upload"], index["last_counted_click"],
                           windows["validation"], windows["test"])
    assert run_suite(honest, suites.leakage_suite()).success
    leaky = leakage_audit(encoder["last_query"], tagger["last_upload"], windows["test"] + timedelta(hours=3),
                          windows["validation"], windows["test"])
    result = run_suite(leaky, suites.leakage_suite())
    assert not result.success and "popularity" in str(result.failures[0].examples)


def test_bad_data_stops_at_a_blocking_check_and_the_champion_keeps_serving(search_run, tmp_path):
    copy = copy_run(search_run, tmp_path / "state")
    raw = tmp_path / "raw"
    raw.mkdir()
    for table in ("videos", "frames", "queries"):
        lake_table(copy.settings, f"video_search_{table}").write_parquet(raw / f"{table}.parquet")
    clicks = lake_table(copy.settings, "video_search_clicks")
    # 5% of the clicks at position 0: far above the 1% a quarantine may take.
    clicks.with_columns(position=pl.when(pl.int_range(pl.len()) % 20 == 0).then(0).otherwise("position")
                        ).write_parquet(raw / "clicks.parquet")
    assert_bad_raw_data_stops_the_run(copy, raw, "position")


@pytest.mark.slow
def test_your_own_months_of_data_run_end_to_end_without_an_oracle(tmp_path):
    """Bring your own data not shaped like the simulator: five months instead of ten days, ids of another form, an
    extra column, clicks without a time, several clicks on one query, untitled videos, a few clicks on videos nobody
    uploaded, and frames of 48 dimensions."""
    from models.video_search.simulator import SimulationConfig, simulate

    world = simulate(SimulationConfig(seed=6, n_days=10, catalogue=700, uploads_per_day=15, queries_per_day=170))
    start = world.queries["ts"].min()
    stretch = lambda column: stretched(column, start, 15)  # noqa: E731 - 10 days: 5 months
    video_id = lambda column: renamed(column, "yt:")  # noqa: E731
    query_id = lambda column: renamed(column, "search-")  # noqa: E731
    videos = world.videos.with_columns(video_id("video_id"), stretch("upload_ts"), channel=pl.lit("c1"),
                                       title=pl.when(every(17)).then(None).otherwise("title"))
    frames = world.frames.with_columns(video_id("video_id"),
                                       vector=pl.concat_list("vector", pl.col("vector").list.head(16)))
    queries = world.queries.with_columns(query_id("query_id"), stretch("ts"))
    clicks = world.clicks.with_columns(query_id("query_id"), video_id("video_id")).drop("ts")
    second = clicks.filter(every(40)).with_columns(video_id=pl.col("video_id").shift(1).fill_null(pl.col("video_id")),
                                                   position=pl.col("position") + 1)
    clicks = pl.concat([clicks, second]).unique(["query_id", "video_id"], keep="first", maintain_order=True)
    clicks = clicks.with_columns(video_id=pl.when(every(2_000)).then(pl.lit("yt:never")).otherwise("video_id"))
    # A second click must not be on a video uploaded after the query: keep only those the contract allows.
    uploaded = videos.select("video_id", "upload_ts")
    clicks = (clicks.join(queries.select("query_id", "ts"), on="query_id").join(uploaded, on="video_id", how="left")
              .filter(pl.col("upload_ts").is_null() | (pl.col("upload_ts") <= pl.col("ts"))).drop("ts", "upload_ts"))
    raw = tmp_path / "raw"
    (raw / "queries").mkdir(parents=True)
    videos.write_parquet(raw / "videos.parquet")
    frames.write_parquet(raw / "frames.parquet")
    clicks.write_parquet(raw / "clicks.parquet")
    for i, part in enumerate(queries.with_columns(month=pl.col("ts").dt.month()).partition_by("month", maintain_order=True)):
        part.drop("month").write_parquet(raw / "queries" / f"{i:02d}.parquet")
    case = case_named("video_search")
    settings = small_settings_for(case, tmp_path / "state", {"MLSD_VIDEO_SEARCH_RAW_DIR": str(raw)},
                                  validation_window="10% 150users", test_window="15% 200users")
    run = run_case(case, settings)
    assert latest_metadata(run.instance, "video_search_champion")["champion_version"].value == "1"
    evaluation = {row["approach"]: row for row in lake_table(settings, "video_search_evaluation").iter_rows(named=True)}
    assert "oracle" not in evaluation
    assert latest_metadata(run.instance, "video_search_evaluation")["oracle"].value.startswith("none")
    assert evaluation["fusion"]["mrr_at_10"] > evaluation["bm25"]["mrr_at_10"]
    assert latest_metadata(run.instance, "video_search_clicks")["quarantined_rows"].value > 0
    assert "channel" not in lake_table(settings, "video_search_videos").columns
