"""Ad click's stream consumer job (the shared kit, assets/streaming.py): impressions into the real-time aggregates
of users and ads, and into the lake."""

from assets.streaming import stream_consumer


def _consume(stream, consumer: str, until_idle: float, on_batch) -> int:
    from models.ad_click.stream import consume

    return consume(stream.url, consumer, stream.lake_dir, until_idle, on_batch=on_batch)


ad_click_stream_consumer_job, ad_click_stream_consumer_schedule = stream_consumer(
    "ad_click", "consume_ad_events", "ad events into the real-time aggregates and the lake", _consume)
