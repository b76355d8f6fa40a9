"""Event streams on Redis, for every case with real-time features: publish a frame of events to a stream, and consume
it with a consumer group into idempotent effects.

Delivery is at least once and effects must not double count: a case's `apply` writes each event as a member of a
sorted set keyed by the event's own identity (adding it again changes nothing), and a batch is acknowledged in the
same transaction as its effects, after its lake file (if any) is written. A consumer that dies re-reads its
unacknowledged events when it restarts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import polars as pl


def client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, decode_responses=True)


def publish(url: str, stream: str, events: pl.DataFrame, fields: Sequence[str], speed: float | None = None) -> int:
    """Publish `events` (with a UTC `ts`) in time order as string fields `fields` (`ts_us` is the time in
    microseconds; a null is ""). With `speed`, paced: 3600 replays an hour of traffic per second."""
    redis_client = client(url)
    frame = events.sort("ts").with_columns(ts_us=pl.col("ts").dt.epoch("us")).select(fields)
    started, first_ts = time.monotonic(), None
    pipe = redis_client.pipeline(transaction=False)
    for i, row in enumerate(frame.iter_rows(named=True), 1):
        if speed:
            first_ts = first_ts or row["ts_us"]
            wait = (row["ts_us"] - first_ts) / 1e6 / speed - (time.monotonic() - started)
            if wait > 0:
                pipe.execute()
                time.sleep(wait)
        pipe.xadd(stream, {k: "" if v is None else str(v) for k, v in row.items()})
        if i % 1000 == 0:
            pipe.execute()
    pipe.execute()
    redis_client.close()
    return frame.height


def consume(
    url: str,
    stream: str,
    group: str,
    consumer: str,
    apply: Callable[[object, list[dict]], None],
    land: Callable[[list[dict], str], None] | None = None,
    until_idle: float | None = None,
    batch_size: int = 500,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Consume until the stream has been idle for `until_idle` seconds (forever when None); returns events handled.

    For each batch: `land(events, first_message_id)` (a re-delivered batch must overwrite its own output), then
    `apply(pipeline, events)` queues the batch's effects on a transactional pipeline that also acknowledges it.
    """
    import redis

    redis_client = client(url)
    try:
        redis_client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise
    handled, idle_since, backlog = 0, time.monotonic(), "0"  # "0": this consumer's unacknowledged events first
    while True:
        reply = redis_client.xreadgroup(group, consumer, {stream: backlog}, count=batch_size,
                                        block=None if backlog == "0" else 1000)
        messages = reply[0][1] if reply else []
        if backlog == "0" and not messages:
            backlog = ">"
            continue
        if not messages:
            if until_idle is not None and time.monotonic() - idle_since >= until_idle:
                break
            continue
        idle_since = time.monotonic()
        events = [fields for _, fields in messages]
        if land is not None:
            land(events, messages[0][0])
        if on_batch:
            on_batch(handled + len(messages))  # a crash from here to the acknowledgement leaves the batch pending
        pipe = redis_client.pipeline(transaction=True)
        apply(pipe, events)
        pipe.xack(stream, group, *[message_id for message_id, _ in messages])
        pipe.execute()
        handled += len(messages)
    redis_client.close()
    return handled
