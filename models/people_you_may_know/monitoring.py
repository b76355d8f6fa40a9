"""One day of people-you-may-know monitoring (shared by the assets and the tests).

A day is described by the connections made in it (their mutual friends and shared attributes in the graph before the
day), the requests sent (volume, the share accepted, how connected their senders are), the champion's best score for
a sample of 300 members active in the 28 days before (its confidence, on a population that does not move with the
day's volume), and the live metric: the share of the day's new connections
that the champion, run on the graph as of the day's start, had put in one of the two members' top 20. The reference
is the same description of the champion's held-out days.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from models.drift import Described, Distribution, Level, LiveMetric, Monitors
from models.people_you_may_know.recommend import FRIENDS_OF_FRIENDS, Recommender, active_members, recommend

DAY = timedelta(days=1)
LIVE_K = 20
ACTIVE_DAYS = 28
SAMPLE = 300  # active members whose best suggestion's score describes the champion's confidence that day

MONITORS = Monitors(
    distributions=(
        Distribution("mutual_friends"),
        Distribution("shared_attributes"),
        Distribution("sender_connections"),
        Distribution("top_score", label="prediction"),
    ),
    levels=(
        Level("requests", relative=True, max_rise=0.5, max_fall=0.5),
        Level("acceptance_rate", relative=False, max_rise=0.15, max_fall=0.15),
        Level("new_connections", relative=True, max_rise=0.5, max_fall=0.5),
    ),
    # On the default world's held-out week (23 February to 1 March) the champion's daily hit rate ranged 0.41 to 0.54
    # around 0.50, over 110 to 144 new connections a day: 35% below the reference is beyond that day-to-day noise.
    live=(LiveMetric(f"hit_rate_at_{LIVE_K}", higher_is_better=True, tolerance=0.35),),
)


def _describe(recommender: Recommender, users: pl.DataFrame, connections: pl.DataFrame, requests: pl.DataFrame,
              profile_views: pl.DataFrame, start: datetime) -> tuple[Described, int]:
    snapshot = recommender.snapshot(users, connections, requests, profile_views, start)
    in_day = lambda frame: frame.filter((pl.col("ts") >= start) & (pl.col("ts") < start + DAY))
    made = snapshot.new_edges(connections, 1)
    sent = in_day(requests)
    lo, hi = made["lo"].to_numpy().astype(np.int64), made["hi"].to_numpy().astype(np.int64)
    A = snapshot.adjacency
    mutual = np.asarray(A[lo].multiply(A[hi]).sum(axis=1)).ravel() if len(lo) else np.zeros(0)
    shared = (((snapshot.categories[lo] == snapshot.categories[hi]) & (snapshot.categories[lo] > 0))[:, :3].sum(axis=1)
              if len(lo) else np.zeros(0))
    senders = np.array([snapshot.index[s] for s in sent["from_user"].to_list() if s in snapshot.index], dtype=np.int64)
    active = active_members(snapshot, connections, requests, profile_views, users, ACTIVE_DAYS)
    sample = np.random.default_rng(int(start.timestamp()) // 86_400).permutation(active)[:SAMPLE]
    members = np.unique(np.concatenate([lo, hi, sample]))
    suggestions, _ = recommend(recommender, snapshot, members, LIVE_K)
    suggested = {(u, v) for u, v in suggestions.select("user_id", "suggested_id").iter_rows()}
    ids = snapshot.ids
    hits = [float((ids[a], ids[b]) in suggested or (ids[b], ids[a]) in suggested) for a, b in zip(lo, hi)]
    sampled = set(ids[sample].tolist())
    top = suggestions.filter(pl.col("rank") == 1, pl.col("source") == FRIENDS_OF_FRIENDS,
                             pl.col("user_id").is_in(sampled))["score"].to_list()
    described = Described(
        distributions={
            "mutual_friends": mutual.astype(float).tolist(),
            "shared_attributes": shared.astype(float).tolist(),
            "sender_connections": np.log1p(snapshot.degree[senders]).tolist(),
            "top_score": [float(s) for s in top],
        },
        levels={
            "requests": [float(sent.height)],
            "acceptance_rate": [float(sent["accepted"].fill_null(False).mean()) if sent.height else 0.0],
            "new_connections": [float(len(lo))],
        },
        live={f"hit_rate_at_{LIVE_K}": float(np.mean(hits)) if hits else None},
        days=[f"{start:%Y-%m-%d}"],
    )
    return described, len(hits)


def describe_day(recommender: Recommender, users, connections, requests, profile_views, start: datetime) -> Described:
    """The day [start, start + 1 day) as the monitors read it."""
    return _describe(recommender, users, connections, requests, profile_views, start)[0]


def describe_days(recommender: Recommender, users, connections, requests, profile_views, start: datetime,
                  end: datetime) -> Described:
    """The days of [start, end) pooled (the reference); the live metric weighs each day by its new connections."""
    parts = [_describe(recommender, users, connections, requests, profile_views, start + DAY * i)
             for i in range(max(1, (end - start).days))]
    return Described.pooled([d for d, _ in parts], weights=[n for _, n in parts])
