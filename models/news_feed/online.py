"""The news feed's online features: what the service reads instead of recounting history per request.

A snapshot as of a time holds, per user, their profile and running counts (impressions, reactions, dwell), their
ties (kind and start), their affinity with each author they know or have seen (impressions, reactions, engagement
before and within the last seven days, dwell), mutual friends with the authors they follow, their engagement per
topic and media kind, the sum of the text vectors of the posts they engaged with, the recent posts they have seen
and the authors they blocked; per recent post (created in the candidate window before the snapshot), its attributes,
text vector and counts so far with its author's audience and engagement; per author, their recent posts; and the
platform's recent posts, newest first (the chronological feed). Every count is strictly before the snapshot's time,
as the training features are strictly before each impression, and the service turns them into features with the
same `features.compose` (the training-serving skew test holds the two paths equal).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from models.news_feed.data import REACTIONS
from models.news_feed.features import (
    AFFINITY_RECENT,
    AFFINITY_REACTIONS,
    POST_REACTIONS,
    USER_REACTIONS,
    directed_ties,
    histories,
    mutual_friend_times,
    post_table,
    user_table,
)
from models.tabular import cosine_rows

NAMESPACE = "news_feed"
FEATURE_VERSION = "news_feed/v1"
AFFINITY_FIELDS = ("f_imps", *(f"f_{r}" for r in AFFINITY_REACTIONS), "f_engaged", "f_engaged_old", "f_dwell_n", "f_dwell_sum")


def encode_vector(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, np.float32).tobytes()).decode()


def decode_vector(value: str | np.ndarray | None, dim: int) -> np.ndarray:
    """A vector as the snapshot stores it (base64 of float32), or one already decoded."""
    if isinstance(value, np.ndarray):
        return value
    return np.frombuffer(base64.b64decode(value), np.float32) if value else np.zeros(dim, np.float32)


def _nested(frame: pl.DataFrame, key: str, inner: str, values: list[str]) -> dict[str, dict[str, list]]:
    """{key: {inner: [values...]}}."""
    out: dict[str, dict[str, list]] = {}
    for row in frame.iter_rows(named=True):
        out.setdefault(row[key], {})[str(row[inner])] = [row[v] for v in values]
    return out


def _counts(frame: pl.DataFrame, by: list[str], name: str, sums: dict[str, str] | None = None) -> pl.DataFrame:
    return frame.group_by(by).agg(pl.len().alias(name), *[pl.col(s).sum().alias(t) for t, s in (sums or {}).items()])


def snapshot_records(users: pl.DataFrame, friendships: pl.DataFrame, posts: pl.DataFrame, impressions: pl.DataFrame,
                     reactions: pl.DataFrame, dwell: pl.DataFrame, post_vectors: np.ndarray, as_of: datetime,
                     candidate_days: int, skip_seconds: float) -> Iterator[tuple[str, str, dict]]:
    """(entity, key, record) of the snapshot as of `as_of`: entities `user`, `post`, `author` and `catalogue` (key
    `recent`)."""
    users_t, posts_t = user_table(users), post_table(posts)
    h = histories(impressions.filter(pl.col("ts") < as_of), reactions.filter(pl.col("ts") < as_of), dwell, posts_t, skip_seconds)
    shown, reacted, engaged = h["shown"], h["reacted"], h["engaged"]
    viewed = h["viewed"].filter(pl.col("done_ts") < as_of)
    ties = directed_ties(friendships).filter(pl.col("since_ts") < as_of)

    # Posts of the candidate window, with their counts so far and their author's.
    window_start = as_of - timedelta(days=candidate_days)
    recent = posts_t.filter((pl.col("created_ts") < as_of) & (pl.col("created_ts") >= window_start))
    post_counts = _counts(shown, ["post_id"], "p_imps").join(
        _counts(reacted, ["post_id"], "_n", {f"p_{r}": f"r_{r}" for r in POST_REACTIONS}).drop("_n"), on="post_id", how="full", coalesce=True)
    author_counts = (_counts(shown, ["author_id"], "a_imps")
                     .join(_counts(engaged, ["author_id"], "a_engaged"), on="author_id", how="full", coalesce=True)
                     .join(_counts(ties.rename({"author_id": "_a"}).select(author_id="_a"), ["author_id"], "a_audience"),
                           on="author_id", how="full", coalesce=True))
    recent = (recent.join(post_counts, on="post_id", how="left").join(author_counts, on="author_id", how="left")
              .with_columns(pl.col("^p_.*$", "^a_.*$").fill_null(0)))
    for row in recent.iter_rows(named=True):
        yield "post", row["post_id"], {
            "author_id": row["author_id"], "topic": row["topic"], "media": row["media"],
            "hashtag_count": row["hashtag_count"], "text_words": row["text_words"], "created_ts": row["created_ts"].isoformat(),
            **{c: int(row[c]) for c in ("p_imps", *(f"p_{r}" for r in POST_REACTIONS), "a_imps", "a_engaged", "a_audience")},
            "vector": encode_vector(post_vectors[row["post_row"]]),
        }
    by_author = recent.sort("created_ts", descending=True).group_by("author_id", maintain_order=True).agg("post_id")
    for author, ids in by_author.iter_rows():
        yield "author", author, {"recent": ids}
    newest = recent.sort("created_ts", descending=True)
    yield "catalogue", "recent", {"post_ids": newest["post_id"].to_list(), "as_of": as_of.isoformat(),
                                  "window_start": window_start.isoformat()}

    # Users.
    user_counts = (_counts(shown, ["user_id"], "u_imps")
                   .join(_counts(reacted, ["user_id"], "_n", {f"u_{r}": f"r_{r}" for r in USER_REACTIONS}).drop("_n"),
                         on="user_id", how="full", coalesce=True)
                   .join(_counts(viewed, ["user_id"], "u_dwell_n", {"u_dwell_sum": "dwell", "u_skip_sum": "skip"}),
                         on="user_id", how="full", coalesce=True)).fill_null(0)
    pair = ["user_id", "author_id"]
    old = engaged.filter(pl.col("ts") < as_of - AFFINITY_RECENT)
    affinity = (_counts(shown, pair, "f_imps")
                .join(_counts(reacted, pair, "_n", {f"f_{r}": f"r_{r}" for r in AFFINITY_REACTIONS}).drop("_n"), on=pair, how="full", coalesce=True)
                .join(_counts(engaged, pair, "f_engaged"), on=pair, how="full", coalesce=True)
                .join(_counts(old, pair, "f_engaged_old"), on=pair, how="full", coalesce=True)
                .join(_counts(viewed, pair, "f_dwell_n", {"f_dwell_sum": "dwell"}), on=pair, how="full", coalesce=True)
                .fill_null(0))
    mutual = (mutual_friend_times(ties.select(pair).unique(), friendships).filter(pl.col("ts") < as_of)
              .group_by(pair).len("mutual"))
    topics = _counts(shown, ["user_id", "topic"], "t_imps").join(_counts(engaged, ["user_id", "topic"], "t_engaged"),
                                                                 on=["user_id", "topic"], how="left").fill_null(0)
    media = _counts(shown, ["user_id", "media"], "m_imps").join(_counts(engaged, ["user_id", "media"], "m_engaged"),
                                                                on=["user_id", "media"], how="left").fill_null(0)
    seen = shown.join(recent.select("post_id"), on="post_id").group_by("user_id").agg(pl.col("post_id").unique())
    blocked = reacted.filter(pl.col("reaction") == "block").group_by("user_id").agg(pl.col("author_id").unique())
    text = {}
    if engaged.height:
        ordered = engaged.sort("user_id")
        users_in_order = ordered["user_id"].to_numpy()
        vectors = post_vectors[ordered["post_row"].to_numpy()]
        starts = np.flatnonzero(np.r_[True, users_in_order[1:] != users_in_order[:-1]])
        for user, total in zip(users_in_order[starts], np.add.reduceat(vectors, starts, axis=0)):
            text[user] = total
    counts = {row["user_id"]: row for row in user_counts.iter_rows(named=True)}
    tie_of = {u: {a: [k, s.isoformat()] for a, k, s in zip(authors, kinds, since)}
              for u, authors, kinds, since in ties.group_by("user_id").agg("author_id", "kind", "since_ts").iter_rows()}
    affinity_of = _nested(affinity, "user_id", "author_id", list(AFFINITY_FIELDS))
    mutual_of = {u: dict(zip(a, n)) for u, a, n in mutual.group_by("user_id").agg("author_id", "mutual").iter_rows()}
    topic_of = _nested(topics, "user_id", "topic", ["t_imps", "t_engaged"])
    media_of = _nested(media, "user_id", "media", ["m_imps", "m_engaged"])
    seen_of, blocked_of = dict(seen.iter_rows()), dict(blocked.iter_rows())
    for row in users_t.iter_rows(named=True):
        user = row["user_id"]
        mine = counts.get(user, {})
        yield "user", user, {
            "age": row["age"], "gender_code": row["gender_code"],
            "joined_ts": row["joined_ts"].isoformat() if row["joined_ts"] is not None else None,
            "u_imps": int(mine.get("u_imps", 0)), **{f"u_{r}": int(mine.get(f"u_{r}", 0)) for r in USER_REACTIONS},
            "u_dwell_n": int(mine.get("u_dwell_n", 0)), "u_dwell_sum": float(mine.get("u_dwell_sum", 0.0)),
            "u_skip_sum": int(mine.get("u_skip_sum", 0)),
            "ties": tie_of.get(user, {}), "affinity": affinity_of.get(user, {}), "mutual": mutual_of.get(user, {}),
            "topics": topic_of.get(user, {}), "media": media_of.get(user, {}),
            "text_sum": encode_vector(text[user]) if user in text else None,
            "seen": seen_of.get(user, []), "blocked_authors": blocked_of.get(user, []),
        }


_POST_SCHEMA = {"post_id": pl.String, "author_id": pl.String, "topic": pl.String, "media": pl.String,
                "hashtag_count": pl.Float64, "text_words": pl.Float64, "created_ts": pl.String,
                **{c: pl.Int64 for c in ("p_imps", *(f"p_{r}" for r in POST_REACTIONS), "a_imps", "a_engaged", "a_audience")}}


def candidate_frame(posts: dict[str, dict]) -> pl.DataFrame:
    """The candidates' post records as a frame (no vectors)."""
    records = list(posts.values())
    columns = {"post_id": list(posts), **{c: [r.get(c) for r in records] for c in _POST_SCHEMA if c != "post_id"}}
    return pl.DataFrame(columns, schema=_POST_SCHEMA).with_columns(
        pl.col("created_ts").str.to_datetime(time_zone="UTC", time_unit="us"))


def serving_aggregates(user: dict, posts: dict[str, dict], ts: datetime, dim: int, position: int = 1,
                       device: str | None = None) -> pl.DataFrame:
    """Stage one for a user and candidate posts (post_id -> snapshot record) from the snapshot: the same columns as
    `features.aggregates_as_of`, counted before the snapshot's time, every post at `position`."""
    rows = candidate_frame(posts)
    authors = rows["author_id"].to_list()
    affinity = user.get("affinity", {})
    ties = user.get("ties", {})
    zero = [0] * len(AFFINITY_FIELDS)
    pairs = [affinity.get(a, zero) for a in authors]
    topics = [user.get("topics", {}).get(t, [0, 0]) for t in rows["topic"].to_list()]
    media = [user.get("media", {}).get(m, [0, 0]) for m in rows["media"].to_list()]
    text_sum = decode_vector(user.get("text_sum"), dim)
    vectors = np.stack([decode_vector(r.get("vector"), dim) for r in posts.values()]) if posts else np.zeros((0, dim), np.float32)
    similarity = cosine_rows(np.broadcast_to(text_sum, (len(posts), dim)), vectors) if posts else np.zeros(0)
    tie = [ties.get(a) for a in authors]
    joined = user.get("joined_ts")
    return rows.with_columns(
        user_id=pl.lit(user.get("user_id"), dtype=pl.String), ts=pl.lit(ts, dtype=pl.Datetime("us", "UTC")),
        position=pl.lit(position, dtype=pl.Int64), device=pl.lit(device, dtype=pl.String),
        age=pl.lit(user.get("age"), dtype=pl.Float64), gender_code=pl.lit(user.get("gender_code", 3), dtype=pl.Int64),
        joined_ts=pl.lit(datetime.fromisoformat(joined) if joined else None, dtype=pl.Datetime("us", "UTC")),
        u_imps=pl.lit(user.get("u_imps", 0), dtype=pl.Int64),
        **{f"u_{r}": pl.lit(user.get(f"u_{r}", 0), dtype=pl.Int64) for r in REACTIONS},
        u_dwell_n=pl.lit(user.get("u_dwell_n", 0), dtype=pl.Int64),
        u_dwell_sum=pl.lit(user.get("u_dwell_sum", 0.0), dtype=pl.Float64),
        u_skip_sum=pl.lit(user.get("u_skip_sum", 0), dtype=pl.Int64),
        **{name: pl.Series([p[i] for p in pairs], dtype=pl.Float64 if name == "f_dwell_sum" else pl.Int64)
           for i, name in enumerate(AFFINITY_FIELDS)},
        t_imps=pl.Series([t[0] for t in topics], dtype=pl.Int64), t_engaged=pl.Series([t[1] for t in topics], dtype=pl.Int64),
        m_imps=pl.Series([m[0] for m in media], dtype=pl.Int64), m_engaged=pl.Series([m[1] for m in media], dtype=pl.Int64),
        mutual_friends=pl.Series([user.get("mutual", {}).get(a, 0) for a in authors], dtype=pl.Int64),
        tie_kind=pl.Series([t[0] if t else None for t in tie], dtype=pl.String),
        tie_since=pl.Series([datetime.fromisoformat(t[1]) if t else None for t in tie], dtype=pl.Datetime("us", "UTC")),
        text_similarity=pl.Series(similarity, dtype=pl.Float64),
    )
