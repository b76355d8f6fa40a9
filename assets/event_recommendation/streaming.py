"""Event recommendation's stream consumer job (the shared kit, assets/streaming.py): registrations into each
event's live count, which the service adds to the snapshot's (MLSD_REALTIME_URL)."""

from assets.streaming import stream_consumer


def _consume(stream, consumer: str, until_idle: float, on_batch) -> int:
    from models.event_recommendation.stream import consume

    return consume(stream.url, consumer, until_idle, on_batch=on_batch)


event_recommendation_stream_consumer_job, event_recommendation_stream_consumer_schedule = stream_consumer(
    "event_recommendation", "consume_event_interactions", "registrations into each event's live count", _consume)
