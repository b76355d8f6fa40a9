"""Streaming ingestion: impression events on a Redis stream, a consumer group that keeps real-time aggregates.

The stream, the consumer group and at-least-once delivery are the shared kit's (models/event_stream.py); here are ad
click's effects: each impression is added to sorted sets of its user and ad keyed by its impression_id (adding it
again changes nothing), and each batch lands in the lake before it is acknowledged.

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

from models import event_stream

STREAM = "ad_click:events"
GROUP = "online-features"
WINDOW_US = 3_600_000_000  # the real-time window: 1 hour, as the *_1h features
RETAIN_US = 2 * WINDOW_US  # members older than this are trimmed
FIELDS = ("impression_id", "ts_us", "user_id", "ad_id", "position", "device", "clicked")
REALTIME_ENTITIES = {"user": "user_id", "ad": "ad_id"}


def publish(url: str, impressions: pl.DataFrame, speed: float | None = None, stream: str = STREAM) -> int:
    """Publish impressions in time order. With `speed`, pace them: 3600 replays an hour of traffic per second."""
    fields = FIELDS
    if "click_ts" in impressions.columns:  # delayed feedback: the click's own time ("" when none)
        impressions = impressions.with_columns(click_ts_us=pl.col("click_ts").dt.epoch("us").cast(pl.String).fill_null(""))
        fields = (*FIELDS, "click_ts_us")
    return event_stream.publish(url, stream, impressions, fields, speed)


@dataclass
class RealtimeAggregates:
    """Counts of impressions and clicks in [t - 1h, t) per user and per ad, from the consumer's sorted sets."""

    url: str
    namespace: str = "ad_click:rt"

    def __post_init__(self):
        self.client = event_stream.client(self.url)

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
    aggregates = RealtimeAggregates(url, namespace)

    def land(events: list[dict], first_id: str) -> None:
        # The same events land in the lake: one file per batch, named by its first message id (a re-delivered batch
        # overwrites its own file), written then renamed, before the acknowledgement.
        write_events(events, Path(lake_dir) / f"{first_id}.parquet")

    try:
        return event_stream.consume(url, stream, GROUP, consumer, lambda pipe, events: _apply(pipe, aggregates, events),
                                    land if lake_dir else None, until_idle, batch_size, on_batch)
    finally:
        aggregates.close()


def _apply(pipe, aggregates: RealtimeAggregates, events: list[dict]) -> None:
    """The batch's effects, queued on the consumer's transaction; re-applying them changes nothing."""
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
