"""Video search's raw-input contract: each kind of defect in videos, frames, queries and clicks, and what its policy
does."""

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from assets.video_search.raw import _clicks_suite, _frames_suite, _queries_suite
from expectations import video_search as suites
from expectations.runner import policy_markdown, run_suite
from models.video_search.simulator import SimulationConfig, simulate
from tests.data.defects import check_policy, spread


def _check(frame, suite, column: str, quarantined: bool) -> None:
    check_policy(run_suite(frame, suite), frame, column, "quarantine" if quarantined else "fail")


@pytest.fixture(scope="module")
def world():
    return simulate(SimulationConfig(n_days=5, catalogue=400, uploads_per_day=10, queries_per_day=120))


VIDEO_DEFECTS = {
    "missing column": (lambda f: f.drop("upload_ts"), "upload_ts", False),
    "wrong type": (lambda f: f.with_columns(pl.col("upload_ts").cast(pl.String)), "upload_ts", False),
    "duplicate id": (lambda f: pl.concat([f, f.head(1)]), "video_id", False),
    "null id": (lambda f: f.with_columns(video_id=pl.when(spread(1)).then(None).otherwise("video_id")), "video_id", False),
    "no upload time": (lambda f: f.with_columns(upload_ts=pl.when(spread(2)).then(None).otherwise("upload_ts")), "upload_ts", True),
}


@pytest.mark.parametrize("defect", VIDEO_DEFECTS)
def test_the_videos_suite_catches(defect, world):
    inject, column, quarantined = VIDEO_DEFECTS[defect]
    _check(inject(world.videos), suites.videos_suite(), column, quarantined)


FRAME_DEFECTS = {
    "wrong vector type": (lambda f: f.with_columns(pl.col("vector").cast(pl.List(pl.Float64))), "vector", False),
    "duplicate frame": (lambda f: pl.concat([f, f.head(2)]), "compound_columns_to_be_unique", False),
    "vector of another length": (lambda f: f.with_columns(vector=pl.when(spread(3)).then(pl.col("vector").list.head(5))
                                                           .otherwise("vector")), "length", True),
    "unknown video": (lambda f: f.with_columns(video_id=pl.when(spread(4)).then(pl.lit("ghost")).otherwise("video_id")), "video_id", True),
    "NaN in a vector": (lambda f: f.with_columns(vector=pl.when(spread(2)).then(pl.lit([float("nan")] * 32, dtype=pl.List(pl.Float32)))
                                                  .otherwise("vector")), "finite", True),
    "negative frame index": (lambda f: f.with_columns(frame_index=pl.when(spread(2)).then(-1).otherwise("frame_index")), "frame_index", True),
}


@pytest.mark.parametrize("defect", FRAME_DEFECTS)
def test_the_frames_suite_catches(defect, world):
    inject, column, quarantined = FRAME_DEFECTS[defect]
    frame, suite = _frames_suite(inject(world.frames), None, world.videos)
    _check(frame, suite, column, quarantined)


QUERY_DEFECTS = {
    "missing column": (lambda f: f.drop("text"), "text", False),
    "duplicate id": (lambda f: pl.concat([f, f.head(1)]), "query_id", False),
    "null time": (lambda f: f.with_columns(ts=pl.when(spread(1)).then(None).otherwise("ts")), "ts", False),
    "blank query": (lambda f: f.with_columns(text=pl.when(spread(2)).then(pl.lit("   ")).otherwise("text")), "chars", True),
    "oversized query": (lambda f: f.with_columns(text=pl.when(spread(2)).then(pl.lit("x" * 500)).otherwise("text")), "chars", True),
}


@pytest.mark.parametrize("defect", QUERY_DEFECTS)
def test_the_queries_suite_catches(defect, world):
    inject, column, quarantined = QUERY_DEFECTS[defect]
    frame, suite = _queries_suite(inject(world.queries), None)
    _check(frame, suite, column, quarantined)


CLICK_DEFECTS = {
    "wrong type": (lambda f: f.with_columns(pl.col("position").cast(pl.Float64)), "position", False),
    "duplicate click": (lambda f: pl.concat([f, f.head(2)]), "compound_columns_to_be_unique", False),
    "null video": (lambda f: f.with_columns(video_id=pl.when(spread(1)).then(None).otherwise("video_id")), "video_id", False),
    "position out of range": (lambda f: f.with_columns(position=pl.when(spread(3)).then(0).otherwise("position")), "position", True),
    "unknown query": (lambda f: f.with_columns(query_id=pl.when(spread(3)).then(pl.lit("Q-ghost")).otherwise("query_id")), "query_id", True),
    "click before its query": (lambda f: f.with_columns(ts=pl.when(spread(2)).then(pl.col("ts") - timedelta(hours=2)).otherwise("ts")), "ts", True),
}


@pytest.mark.parametrize("defect", CLICK_DEFECTS)
def test_the_clicks_suite_catches(defect, world):
    inject, column, quarantined = CLICK_DEFECTS[defect]
    frame, suite = _clicks_suite(inject(world.clicks), None, world.queries, world.videos)
    _check(frame, suite, column, quarantined)


def test_clicks_without_a_time_are_valid(world):
    frame, suite = _clicks_suite(world.clicks.drop("ts"), None, world.queries, world.videos)
    assert run_suite(frame, suite).success


def test_many_bad_rows_are_more_than_a_quarantine_may_take(world):
    broken = world.clicks.with_columns(position=pl.when(pl.int_range(pl.len()) % 20 == 0).then(0).otherwise("position"))
    frame, suite = _clicks_suite(broken, None, world.queries, world.videos)
    result = run_suite(frame, suite)
    assert not result.success and "position" in result.summary()


def test_the_readme_states_every_raw_expectation_with_its_policy():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    ids = pl.Series([], dtype=pl.String)
    table = policy_markdown([("videos", suites.videos_suite()), ("frames", suites.frames_suite(ids, 32)),
                             ("queries", suites.queries_suite()), ("clicks", suites.clicks_suite(ids, ids))])
    assert table in readme, f"the README's policy table of video_search is not the suites':\n{table}"
