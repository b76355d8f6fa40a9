"""Event recommendation's online features: what the service reads instead of recounting history per request.

A snapshot as of a time holds, per user, their home and profile and the running counts of their past registrations
(by category, weekday and hour block, with price, distance and description sums), the live events their friends
registered for or invited them to; per live event (on sale, not started), its attributes, description vector,
registrations and impressions so far and its host's past attendance; and the list of live events. Every count is
strictly before the snapshot's time, as the training features are strictly before each impression, and the service
turns them into features with the same `features.compose` (the training-serving skew test holds the two paths
equal).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import polars as pl

from models.event_recommendation.features import (
    HOUR_BLOCK,
    event_table,
    registrations_with_attributes,
    symmetric_edges,
    user_table,
)
from models.tabular import cosine_rows

NAMESPACE = "event_recommendation"
FEATURE_VERSION = "event_recommendation/v1"


def encode_vector(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, np.float32).tobytes()).decode()


def decode_vector(text: str | None, dim: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.float32) if text else np.zeros(dim, np.float32)


def _counts(frame: pl.DataFrame, key: str, column: str) -> dict[str, dict]:
    """{key: {column value as str: count}}."""
    grouped = frame.group_by(key, column).len().group_by(key).agg(pl.col(column).cast(pl.String), "len")
    return {row[0]: dict(zip(row[1], row[2])) for row in grouped.iter_rows()}


def snapshot_records(users: pl.DataFrame, events: pl.DataFrame, friendships: pl.DataFrame, interactions: pl.DataFrame,
                     event_vectors: np.ndarray, as_of: datetime) -> Iterator[tuple[str, str, dict]]:
    """(entity, key, record) of the snapshot as of `as_of`: entities `user`, `event` and `catalogue` (key `live`)."""
    before = interactions.filter(pl.col("ts") < as_of)
    users_t, events_t = user_table(users), event_table(events)
    regs = registrations_with_attributes(before, users_t, events_t)
    live = events_t.filter((pl.col("created_ts") <= as_of) & (pl.col("start_ts") > as_of))
    live_ids = set(live["event_id"].to_list())
    edges = symmetric_edges(friendships)

    # Events: counts so far, and the host's events that started before the snapshot.
    e_regs = dict(regs.group_by("event_id").len().iter_rows())
    e_imps = dict(before.filter(pl.col("kind") == "impression").group_by("event_id").len().iter_rows())
    finished = (regs.filter(pl.col("ts") < pl.col("start_ts")).group_by("event_id").len("final")
                .join(events_t.select("event_id", "host_id", "start_ts"), on="event_id", how="right").fill_null(0)
                .filter(pl.col("start_ts") < as_of).group_by("host_id").agg(pl.len().alias("events"), pl.col("final").sum()))
    hosts = {h: (n, float(total)) for h, n, total in finished.iter_rows()}
    for row in live.iter_rows(named=True):
        events_run, host_regs = hosts.get(row["host_id"], (0, 0.0))
        yield "event", row["event_id"], {
            "host_id": row["host_id"], "category": row["category"], "e_lat": row["e_lat"], "e_lon": row["e_lon"],
            "e_city": row["e_city"], "price": row["price"], "capacity": row["capacity"],
            "start_ts": row["start_ts"].isoformat(), "created_ts": row["created_ts"].isoformat(),
            "e_regs": int(e_regs.get(row["event_id"], 0)), "e_imps": int(e_imps.get(row["event_id"], 0)),
            "host_past_events": int(events_run), "host_past_regs": host_regs,
            "vector": encode_vector(event_vectors[row["event_row"]]),
        }
    yield "catalogue", "live", {"event_ids": sorted(live_ids), "as_of": as_of.isoformat()}

    # Users: running history of registrations, and what concerns the live events.
    by_category = _counts(regs, "user_id", "category")
    by_weekday = _counts(regs, "user_id", "weekday")
    by_block = _counts(regs, "user_id", "hour_block")
    sums = {u: (n, lp, ld) for u, n, lp, ld in regs.group_by("user_id").agg(
        pl.len(), pl.col("log_price").sum(), pl.col("log_dist").sum()).iter_rows()}
    text = {}
    if regs.height:
        order = regs.sort("user_id")
        users_in_order = order["user_id"].to_numpy()
        vectors = event_vectors[order["event_row"].to_numpy()]
        starts = np.flatnonzero(np.r_[True, users_in_order[1:] != users_in_order[:-1]])
        for user, total in zip(users_in_order[starts], np.add.reduceat(vectors, starts, axis=0)):
            text[user] = total
    live_regs = regs.filter(pl.col("event_id").is_in(list(live_ids)))
    registered = dict(live_regs.group_by("user_id").agg("event_id").iter_rows())
    friend_regs = (live_regs.select(friend_id="user_id", event_id="event_id").join(edges, on="friend_id")
                   .group_by("user_id", "event_id").len())
    friends_registered = {u: dict(zip(e, n)) for u, e, n in friend_regs.group_by("user_id").agg("event_id", "len").iter_rows()}
    invites = (before.filter((pl.col("kind") == "invite") & pl.col("invitee_id").is_not_null() & pl.col("event_id").is_in(list(live_ids)))
               .group_by("invitee_id", "event_id").len())
    invited = {u: dict(zip(e, n)) for u, e, n in invites.group_by("invitee_id").agg("event_id", "len").iter_rows()}
    friends = dict(edges.group_by("user_id").agg("friend_id").iter_rows())
    for row in users_t.iter_rows(named=True):
        user = row["user_id"]
        n, log_price, log_dist = sums.get(user, (0, 0.0, 0.0))
        yield "user", user, {
            "u_lat": row["u_lat"], "u_lon": row["u_lon"], "u_city": row["u_city"], "age": row["age"],
            "gender_code": row["gender_code"], "u_regs": int(n), "u_logprice_sum": float(log_price),
            "u_logdist_sum": float(log_dist), "by_category": by_category.get(user, {}),
            "by_weekday": by_weekday.get(user, {}), "by_hour_block": by_block.get(user, {}),
            "text_sum": encode_vector(text[user]) if user in text else None,
            "registered": registered.get(user, []), "friends_registered": friends_registered.get(user, {}),
            "invited": invited.get(user, {}), "friends": friends.get(user, []),
        }


class LiveEvents:
    """The live events of a snapshot as arrays, for filtering a request's candidates and building their rows."""

    def __init__(self, records: dict[str, dict], as_of: datetime, dim: int):
        self.as_of = as_of
        self.ids = np.array(sorted(records), dtype=object)
        ordered = [records[i] for i in self.ids]
        self.frame = pl.DataFrame(
            [{k: v for k, v in r.items() if k != "vector"} for r in ordered],
            schema={"host_id": pl.String, "category": pl.String, "e_lat": pl.Float64, "e_lon": pl.Float64,
                    "e_city": pl.String, "price": pl.Float64, "capacity": pl.Float64, "start_ts": pl.String,
                    "created_ts": pl.String, "e_regs": pl.Int64, "e_imps": pl.Int64, "host_past_events": pl.Int64,
                    "host_past_regs": pl.Float64},
        ).with_columns(pl.col("start_ts", "created_ts").str.to_datetime(time_zone="UTC", time_unit="us"),
                       event_id=pl.Series(self.ids.tolist(), dtype=pl.String))
        self.lat = self.frame["e_lat"].to_numpy()
        self.lon = self.frame["e_lon"].to_numpy()
        self.start = self.frame["start_ts"].dt.epoch("s").to_numpy().astype(np.float64)
        self.created = self.frame["created_ts"].dt.epoch("s").to_numpy().astype(np.float64)
        self.capacity = self.frame["capacity"].fill_null(float("inf")).to_numpy()  # no capacity given: no limit
        self.regs = self.frame["e_regs"].to_numpy()
        self.vectors = np.stack([decode_vector(r.get("vector"), dim) for r in ordered]) if ordered else np.zeros((0, dim), np.float32)
        self.weekday = self.frame["start_ts"].dt.weekday().cast(pl.String).to_list()
        self.hour_block = (self.frame["start_ts"].dt.hour() // HOUR_BLOCK).cast(pl.String).to_list()
        self.position = {e: i for i, e in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)


def serving_aggregates(user: dict, live: LiveEvents, candidates: np.ndarray, ts: datetime,
                       registrations: np.ndarray | None = None) -> pl.DataFrame:
    """Stage one for a user and candidate events (positions in `live`) from the snapshot: the same columns as
    `features.aggregates_as_of`, counted before the snapshot's time; `ts` is the request's. `registrations`, when
    given, are the candidates' registrations so far from a fresher source (the stream) than the snapshot."""
    rows = live.frame[candidates.tolist()] if len(candidates) else live.frame.clear()
    if registrations is not None:
        rows = rows.with_columns(e_regs=pl.Series(np.asarray(registrations), dtype=pl.Int64))
    ids = rows["event_id"].to_list()
    categories, weekdays, blocks = rows["category"].to_list(), [live.weekday[i] for i in candidates], [live.hour_block[i] for i in candidates]
    friends_of_host = set(user.get("friends", []))
    text_sum = decode_vector(user.get("text_sum"), live.vectors.shape[1])
    similarity = cosine_rows(np.broadcast_to(text_sum, (len(candidates), len(text_sum))), live.vectors[candidates]) \
        if len(candidates) else np.zeros(0)
    return rows.with_columns(
        user_id=pl.lit(user.get("user_id"), dtype=pl.String), ts=pl.lit(ts, dtype=pl.Datetime("us", "UTC")),
        u_lat=pl.lit(user["u_lat"], dtype=pl.Float64), u_lon=pl.lit(user["u_lon"], dtype=pl.Float64),
        u_city=pl.lit(user.get("u_city"), dtype=pl.String), age=pl.lit(user.get("age"), dtype=pl.Float64),
        gender_code=pl.lit(user.get("gender_code", 3), dtype=pl.Int64), u_regs=pl.lit(user.get("u_regs", 0), dtype=pl.Int64),
        u_cat_regs=pl.Series([user.get("by_category", {}).get(c, 0) for c in categories], dtype=pl.Int64),
        u_weekday_regs=pl.Series([user.get("by_weekday", {}).get(w, 0) for w in weekdays], dtype=pl.Int64),
        u_hour_regs=pl.Series([user.get("by_hour_block", {}).get(b, 0) for b in blocks], dtype=pl.Int64),
        u_logprice_sum=pl.lit(user.get("u_logprice_sum", 0.0), dtype=pl.Float64),
        u_logdist_sum=pl.lit(user.get("u_logdist_sum", 0.0), dtype=pl.Float64),
        friends_registered=pl.Series([user.get("friends_registered", {}).get(e, 0) for e in ids], dtype=pl.Int64),
        friends_inviting=pl.Series([user.get("invited", {}).get(e, 0) for e in ids], dtype=pl.Int64),
        host_is_friend=pl.Series([int(h in friends_of_host) for h in rows["host_id"].to_list()], dtype=pl.Int32),
        description_similarity=pl.Series(similarity, dtype=pl.Float64),
    )
