import polars as pl

from assets.ad_click.streaming import ad_click_stream_consumer_job
from models.ad_click.stream import publish
from assets.resources import EventStream


def test_the_dagster_consumer_job_drains_the_stream_into_the_lake(small_world, redis_url, tmp_path):
    events = small_world.impressions.head(500)
    publish(redis_url, events)
    result = ad_click_stream_consumer_job.execute_in_process(
        resources={"ad_click_stream": EventStream(url=redis_url, lake_dir=str(tmp_path / "lake"))},
        run_config={"ops": {"consume_ad_events": {"config": {"until_idle_seconds": 0.5}}}},
    )
    assert result.success
    assert result.output_for_node("consume_ad_events") == 500
    landed = pl.read_parquet(tmp_path / "lake" / "*.parquet")
    assert set(landed["impression_id"]) == set(events["impression_id"])
