"""Streaming ingestion: impression events on a Redis stream, a consumer group that keeps real-time aggregates.

Effects are idempotent, so delivery can be at-least-once without double counting: each event is added to sorted
sets keyed by its impression_id (adding it again changes nothing), and a batch is acknowledged only after its
effects and its lake file are written. A consumer that dies re-reads its unacknowledged events when it restarts.

    python -m models.ad_click.stream replay --events FILE.parquet [--speed 3600]   (publish, optionally paced)
    python -m models.ad_click.stream consume [--until-idle 5]                        (the consumer)
    python -m models.ad_click.stream watch --ad ad000001                             (live counts of one ad)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

STREAM = "ad_click:events"
GROUP = "online-features"
WINDOW_US = 3_600_000_000  # the real-time window: 1 hour, as the *_1h features
RETAIN_US = 2 * WINDOW_US  # members older than this are trimmed
FIELDS = ("impression_id", "ts_us", "user_id", "ad_id", "position", "device", "clicked")
REALTIME_ENTITIES = {"user": "user_id", "ad": "ad_id"}


def _client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, decode_responses=True)


def publish(url: str, impressions: pl.DataFrame, speed: float | None = None, stream: str = STREAM) -> int:
    """Publish impressions in time order. With `speed`, pace them: 3600 replays an hour of traffic per second."""
    client = _client(url)
    events = impressions.sort("ts").with_columns(ts_us=pl.col("ts").dt.epoch("us"))
    fields = FIELDS
    if "click_ts" in impressions.columns:  # delayed feedback: the click's own time ("" when none)
        events = events.with_columns(click_ts_us=pl.col("click_ts").dt.epoch("us").cast(pl.String).fill_null(""))
        fields = (*FIELDS, "click_ts_us")
    events = events.select(fields)
    started, first_ts = time.monotonic(), None
    pipe = client.pipeline(transaction=False)
    for i, row in enumerate(events.iter_rows(named=True), 1):
        if speed:
            first_ts = first_ts or row["ts_us"]
            wait = (row["ts_us"] - first_ts) / 1e6 / speed - (time.monotonic() - started)
            if wait > 0:
                pipe.execute()
                time.sleep(wait)
        pipe.xadd(stream, {k: str(v) for k, v in row.items()})
        if i % 1000 == 0:
            pipe.execute()
    pipe.execute()
    client.close()
    return events.height


@dataclass
class RealtimeAggregates:
    """Counts of impressions and clicks in [t - 1h, t) per user and per ad, from the consumer's sorted sets."""

    url: str
    namespace: str = "ad_click:rt"

    def __post_init__(self):
        self.client = _client(self.url)

    def key(self, entity: str, entity_id: str, stat: str) -> str:
        return f"{self.namespace}:{entity}:{entity_id}:{stat}"

    def counts(self, entity: str, ids: list[str], ts_us: list[int]) -> list[tuple[int, int]]:
        """(impressions, clicks) of each entity id in the hour before its time: one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for entity_id, ts in zip(ids, ts_us):
            for stat in ("impressions", "clicks"):
                pipe.zcount(self.key(entity, entity_id, stat), ts - WINDOW_US, f"({ts}")
        values = pipe.execute()
        return [(values[2 * i], values[2 * i + 1]) for i in range(len(ids))]

    def close(self) -> None:
        self.client.close()


def consume(
    url: str,
    consumer: str = "consumer-1",
    lake_dir: str | None = None,
    until_idle: float | None = None,
    batch_size: int = 500,
    stream: str = STREAM,
    namespace: str = "ad_click:rt",
    on_batch=None,
) -> int:
    """Consume until the stream has been idle for `until_idle` seconds (forever when None). Returns events handled."""
    import redis

    client = _client(url)
    try:
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise
    aggregates = RealtimeAggregates(url, namespace)
    handled, idle_since, backlog = 0, time.monotonic(), "0"  # "0": this consumer's unacknowledged events first
    while True:
        reply = client.xreadgroup(GROUP, consumer, {stream: backlog}, count=batch_size, block=None if backlog == "0" else 1000)
        messages = reply[0][1] if reply else []
        if backlog == "0" and not messages:
            backlog = ">"
            continue
        if not messages:
            if until_idle is not None and time.monotonic() - idle_since >= until_idle:
                break
            continue
        idle_since = time.monotonic()
        if lake_dir:
            # The same events land in the lake: one file per batch, named by its first message id (a re-delivered
            # batch overwrites its own file), written then renamed, before the acknowledgement.
            write_events([fields for _, fields in messages], Path(lake_dir) / f"{messages[0][0]}.parquet")
        if on_batch:
            on_batch(handled + len(messages))  # a crash from here to the acknowledgement leaves the batch pending
        _apply(client, aggregates, messages, stream)
        handled += len(messages)
    aggregates.close()
    client.close()
    return handled


def _apply(client, aggregates: RealtimeAggregates, messages, stream: str) -> None:
    """The batch's effects and its acknowledgement in one transaction; re-applying them changes nothing."""
    events = [fields for _, fields in messages]
    pipe = client.pipeline(transaction=True)
    newest = 0
    for event in events:
        ts = int(event["ts_us"])
        newest = max(newest, ts)
        # A click counts from its own time when the event carries it (delayed feedback), else from its impression's;
        # a window ending before that time does not see it (the scores are times).
        click_at = int(event["click_ts_us"]) if event.get("click_ts_us") else ts if event["clicked"] == "1" else None
        for entity, field in REALTIME_ENTITIES.items():
            pipe.zadd(aggregates.key(entity, event[field], "impressions"), {event["impression_id"]: ts})
            if click_at is not None:
                pipe.zadd(aggregates.key(entity, event[field], "clicks"), {event["impression_id"]: click_at})
    for entity, field in REALTIME_ENTITIES.items():
        for entity_id in {event[field] for event in events}:
            for stat in ("impressions", "clicks"):
                key = aggregates.key(entity, entity_id, stat)
                pipe.zremrangebyscore(key, "-inf", f"({newest - RETAIN_US}")
    pipe.xack(stream, GROUP, *[message_id for message_id, _ in messages])
    pipe.execute()


def write_events(events: list[dict], path: Path) -> None:
    """Stream events as raw impressions (the raw-input contract) in one parquet file."""
    from models.storage import write_parquet_atomically

    frame = pl.DataFrame(events)
    click_ts = []
    if "click_ts_us" in frame.columns:
        click_ts = [pl.col("click_ts_us").replace("", None).cast(pl.Int64).cast(pl.Datetime("us", "UTC")).alias("click_ts")]
    frame = frame.select(
        pl.col("impression_id"),
        pl.col("ts_us").cast(pl.Int64).cast(pl.Datetime("us", "UTC")).alias("ts"),
        pl.col("user_id"),
        pl.col("ad_id"),
        pl.col("position").cast(pl.Int64),
        pl.col("device"),
        pl.col("clicked").cast(pl.Int64),
        *click_ts,
    )
    write_parquet_atomically(frame, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["replay", "consume", "watch"])
    parser.add_argument("--ad", help="watch: the ad whose last hour to print every second")
    parser.add_argument("--url", default=os.environ.get("MLSD_STREAM_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--events", help="replay: parquet of impressions (the raw-input contract)")
    parser.add_argument("--speed", type=float, default=None, help="replay: seconds of traffic per second")
    parser.add_argument("--consumer", default="consumer-1")
    parser.add_argument("--lake-dir", default=None)
    parser.add_argument("--until-idle", type=float, default=None)
    args = parser.parse_args(argv)
    if args.command == "replay":
        count = publish(args.url, pl.read_parquet(args.events), args.speed)
        print(f"published {count} events to {STREAM}")
    elif args.command == "consume":
        count = consume(args.url, args.consumer, args.lake_dir, args.until_idle)
        print(f"consumed {count} events")
    else:
        watch(args.url, args.ad)
    return 0


def watch(url: str, ad_id: str) -> None:
    """Print an ad's impressions and clicks in the hour before its latest event, every second (Ctrl-C stops)."""
    live = RealtimeAggregates(url)
    while True:
        newest = live.client.zrange(live.key("ad", ad_id, "impressions"), -1, -1, withscores=True)
        if newest:
            now = int(newest[0][1]) + 1
            (n, c), = live.counts("ad", [ad_id], [now])
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now / 1e6))
            print(f"{ad_id} at {stamp} UTC: {n} impressions, {c} clicks in the last hour", flush=True)
        else:
            print(f"{ad_id}: no event yet", flush=True)
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
