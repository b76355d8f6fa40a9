"""Serving-time features for ad click: publish snapshots to the online store, assemble request features."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import polars as pl

from models.ad_click.features import ENTITIES, entity_key, entity_keys, online_features
from models.online_store import OnlineStore

NAMESPACE = "ad_click"
FEATURE_VERSION = "ad_click_features_v1"


def snapshot_records(frames: dict[str, pl.DataFrame]) -> Iterator[tuple[str, str, dict]]:
    """(entity, key, record) of every entity of an `online_snapshot`; times become epoch microseconds."""
    for entity, frame in frames.items():
        keys = ENTITIES[entity][0]
        times = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
        frame = frame.with_columns(pl.col(c).dt.epoch("us") for c in times)
        for row in frame.iter_rows(named=True):
            key = entity_key([row.pop(k) for k in keys])
            recent = row.pop("recent_ads", None)
            if recent:
                row["recent_ads"] = {r["ad_id"]: [r["n"], r["last_us"]] for r in recent}
            yield entity, key, {k: v for k, v in row.items() if v is not None}


def publish_snapshot(store: OnlineStore, frames: dict[str, pl.DataFrame], as_of: datetime):
    return store.publish(snapshot_records(frames), FEATURE_VERSION, as_of.isoformat())


def fetch_features(store: OnlineStore, requests: pl.DataFrame, realtime=None) -> tuple[pl.DataFrame, list[str]]:
    """Model features for request rows (user_id, ad_id, ts, position, device), and the fallbacks taken.

    Unknown users get no demographics and no history; unknown ads no attributes and no history: the model
    then scores from the request context alone, and each fallback is reported. With `realtime` (the stream
    consumer's RealtimeAggregates), the user and ad 1-hour counts are the live ones at each request's time
    instead of the snapshot's.
    """
    info = store.current()
    snapshot = info.snapshot_id if info else None
    user_ids = requests["user_id"].unique(maintain_order=True).to_list()
    ad_ids = requests["ad_id"].unique(maintain_order=True).to_list()
    users = dict(zip(user_ids, store.get_in(snapshot, "user", user_ids) if snapshot else [None] * len(user_ids)))
    ads = dict(zip(ad_ids, store.get_in(snapshot, "ad", ad_ids) if snapshot else [None] * len(ad_ids)))
    records: dict[str, list] = {
        "user": [users[u] for u in requests["user_id"]],
        "ad": [ads[a] for a in requests["ad_id"]],
    }
    for entity, keys in entity_keys(requests, users, ads).items():
        records[entity] = store.get_in(snapshot, entity, keys) if snapshot else [None] * len(keys)
    if realtime is not None:
        ts_us = requests["ts"].dt.epoch("us").to_list()
        for entity, column in (("user", "user_id"), ("ad", "ad_id")):
            live = realtime.counts(entity, requests[column].to_list(), ts_us)
            records[entity] = [
                {**(record or {}), f"{entity}_impressions_1h": n, f"{entity}_clicks_1h": c} if record is not None else None
                for record, (n, c) in zip(records[entity], live)
            ]
    fallbacks = []
    if snapshot is None:
        fallbacks.append("online store has no snapshot: every entity uses cold-start defaults")
    fallbacks += [f"unknown user {u}: cold-start defaults (no demographics, no history)" for u in user_ids if users[u] is None]
    fallbacks += [f"unknown ad {a}: no attributes, no history" for a in ad_ids if ads[a] is None]
    return online_features(requests, records), fallbacks
