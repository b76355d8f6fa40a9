"""Real-time registrations: interactions on a Redis stream (the shared kit, models/event_stream.py), a consumer that
keeps each event's registrations, and the counts the service adds to the snapshot's.

A registration is a member (the user) of its event's sorted set scored by its time: adding it again changes
nothing, so re-delivered batches do not double count, and a count between two times is one ZCOUNT.

    python -m models.event_recommendation.stream replay --events FILE.parquet [--speed 3600]
    python -m models.event_recommendation.stream consume [--until-idle 5]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from models import event_stream

STREAM = "event_recommendation:events"
GROUP = "live-registrations"
NAMESPACE = "event_recommendation:rt"
FIELDS = ("user_id", "event_id", "kind", "ts_us")


def publish(url: str, interactions: pl.DataFrame, speed: float | None = None, stream: str = STREAM) -> int:
    """Publish interactions (the raw-input contract's) in time order."""
    return event_stream.publish(url, stream, interactions, FIELDS, speed)


@dataclass
class LiveRegistrations:
    """Registrations per event from the consumer's sorted sets."""

    url: str
    namespace: str = NAMESPACE

    def __post_init__(self):
        self.client = event_stream.client(self.url)

    def key(self, event_id: str) -> str:
        return f"{self.namespace}:event:{event_id}:registrations"

    def counts(self, event_ids: Sequence[str], since_us: int, before_us: int) -> list[int]:
        """Registrations of each event in [since, before): one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for event_id in event_ids:
            pipe.zcount(self.key(event_id), since_us, f"({before_us}")
        return [int(n) for n in pipe.execute()]

    def close(self) -> None:
        self.client.close()


def consume(url: str, consumer: str = "consumer-1", until_idle: float | None = None, batch_size: int = 500,
            stream: str = STREAM, namespace: str = NAMESPACE, on_batch=None) -> int:
    """Consume until the stream has been idle for `until_idle` seconds (forever when None). Returns events handled."""
    live = LiveRegistrations(url, namespace)

    def apply(pipe, events: list[dict]) -> None:
        for event in events:
            if event["kind"] == "register":
                # nx: a re-delivered registration keeps its first time.
                pipe.zadd(live.key(event["event_id"]), {event["user_id"]: int(event["ts_us"])}, nx=True)

    try:
        return event_stream.consume(url, stream, GROUP, consumer, apply, None, until_idle, batch_size, on_batch)
    finally:
        live.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["replay", "consume"])
    parser.add_argument("--url", default=os.environ.get("MLSD_STREAM_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--events", help="replay: parquet of interactions (the raw-input contract)")
    parser.add_argument("--speed", type=float, default=None, help="replay: seconds of traffic per second")
    parser.add_argument("--consumer", default="consumer-1")
    parser.add_argument("--until-idle", type=float, default=None)
    args = parser.parse_args(argv)
    if args.command == "replay":
        print(f"published {publish(args.url, pl.read_parquet(args.events), args.speed)} events to {STREAM}")
    else:
        print(f"consumed {consume(args.url, args.consumer, args.until_idle)} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
