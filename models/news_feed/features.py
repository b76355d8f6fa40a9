"""Point-in-time features of (user, post, time) rows, in two stages that training and serving share.

Stage one, `aggregates_as_of`, counts what happened strictly before each row's time: the user's impressions,
reactions and dwell so far; the post's impressions and reactions so far; the author's audience and engagement; the
user-author affinity (impressions, reactions, engagement over all time and the last seven days, dwell), the tie
(kind and age) and mutual friends as of the row; the user's engagement with the post's topic; and the similarity of
the post's text to the posts the user engaged with. Serving reads the same aggregates from the online store's
snapshot instead (`online.py`). Stage two, `compose`, turns aggregates into the model's FEATURES and is the one
function both paths call.

Counts that grow after a post is published are this case's leakage trap: a post's like count taken at the end of
the data carries the label. Every count here is an as-of join that excludes the row's own time, a reaction counts
from its own time and a dwell from the end of the view, and `point_in_time_audit` recounts a sample from the raw
tables to prove it (a blocking check).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from models.news_feed.data import DWELL_CAP, POSITIVE, REACTIONS
from models.tabular import count_before, gender_codes, similarity_to_history

AFFINITY_RECENT = timedelta(days=7)
MUTUAL_KINDS = ("family", "close_friend", "friend")
TIE_ORDER = ("family", "close_friend", "friend", "follow")  # strongest first: a pair listed twice keeps the strongest
MEDIA_CODES = ("image", "video")  # text (or anything else) is neither
DEVICE_CODES = ("mobile", "desktop")
RATE_PRIOR = 5.0  # impressions: a rate of few impressions is pulled towards 0, not 0/0
FEATURES = (
    # post
    "post_age_hours", "media_image", "media_video", "hashtag_count", "text_words", "post_impressions",
    "post_click_rate", "post_like_rate", "post_comment_rate", "post_share_rate", "post_hide_rate",
    "author_audience", "author_engaged_rate",
    # user
    "age", "gender_code", "account_age_days", "user_impressions", "user_click_rate", "user_like_rate",
    "user_comment_rate", "user_share_rate", "user_hide_rate", "user_block_rate", "user_mean_dwell", "user_skip_rate",
    # user-author affinity, and the user's topic and text affinity
    "tie_family", "tie_close_friend", "tie_friend", "tie_follow", "tie_days", "mutual_friends",
    "affinity_impressions", "affinity_engaged_rate", "affinity_like_rate", "affinity_comment_rate",
    "affinity_hide_rate", "affinity_engaged_7d", "affinity_mean_dwell", "topic_impressions", "topic_engaged_rate",
    "text_similarity",
    # context
    "position", "hour", "weekday", "device_mobile", "device_desktop",
)
# Long-tailed counts and durations: the network and the scaler read them as log1p.
LOGGED = ("post_age_hours", "text_words", "post_impressions", "author_audience", "account_age_days", "user_impressions",
          "tie_days", "mutual_friends", "affinity_impressions", "affinity_engaged_7d", "topic_impressions")
USER_REACTIONS = REACTIONS  # rates of the user's own reactions
POST_REACTIONS = ("click", "like", "comment", "share", "hide")
AFFINITY_REACTIONS = ("click", "like", "comment", "share", "hide")


def user_table(users: pl.DataFrame) -> pl.DataFrame:
    codes = gender_codes(users)
    return users.select(
        "user_id", age=pl.col("age").cast(pl.Float64), joined_ts="joined_ts",
        gender_code=pl.col("gender").replace_strict(codes, default=len(codes), return_dtype=pl.Int64).fill_null(len(codes)),
    )


def post_table(posts: pl.DataFrame) -> pl.DataFrame:
    words = lambda column: pl.col(column).str.split(" ").list.eval(pl.element().filter(pl.element() != "")).list.len()  # noqa: E731
    return posts.with_row_index("post_row").select(
        "post_id", "post_row", "author_id", "topic", "media", "created_ts",
        hashtag_count=words("hashtags").fill_null(0).cast(pl.Float64),
        text_words=words("text").fill_null(0).cast(pl.Float64),
    )


def directed_ties(friendships: pl.DataFrame) -> pl.DataFrame:
    """viewer (user_id) -> author_id with the tie's kind and since_ts: mutual kinds both ways, a follow one way; a pair
    listed more than once keeps its strongest kind and its earliest start."""
    ties = friendships.filter(pl.col("user_id") != pl.col("friend_id"))
    mutual = ties.filter(pl.col("kind").is_in(MUTUAL_KINDS))
    both = pl.concat([
        ties.select("user_id", author_id="friend_id", kind="kind", since_ts="since_ts"),
        mutual.select(user_id="friend_id", author_id="user_id", kind="kind", since_ts="since_ts"),
    ])
    rank = pl.col("kind").replace_strict({k: i for i, k in enumerate(TIE_ORDER)}, default=len(TIE_ORDER), return_dtype=pl.Int32)
    return (both.with_columns(_rank=rank).sort("_rank", "since_ts")
            .group_by("user_id", "author_id", maintain_order=True).agg(pl.col("kind").first(), pl.col("since_ts").min()))


def mutual_edges(friendships: pl.DataFrame) -> pl.DataFrame:
    """user_id, friend_id, since_ts of mutual ties (not follows), both ways, once each."""
    ties = friendships.filter(pl.col("kind").is_in(MUTUAL_KINDS) & (pl.col("user_id") != pl.col("friend_id")))
    both = pl.concat([ties.select("user_id", "friend_id", "since_ts"),
                      ties.select(user_id="friend_id", friend_id="user_id", since_ts="since_ts")])
    return both.group_by("user_id", "friend_id").agg(pl.col("since_ts").min())


def mutual_friend_times(pairs: pl.DataFrame, friendships: pl.DataFrame) -> pl.DataFrame:
    """For (user_id, author_id) pairs: one row per mutual friend with `ts`, when both ties to them existed."""
    edges = mutual_edges(friendships)
    return (pairs.join(edges.rename({"since_ts": "_a"}), on="user_id")
            .join(edges.rename({"user_id": "author_id", "since_ts": "_b"}), on=["author_id", "friend_id"])
            .filter(pl.col("friend_id") != pl.col("author_id"))
            .select("user_id", "author_id", ts=pl.max_horizontal("_a", "_b")))


def histories(impressions: pl.DataFrame, reactions: pl.DataFrame, dwell: pl.DataFrame, posts_t: pl.DataFrame,
              skip_seconds: float) -> dict[str, pl.DataFrame]:
    """The raw tables as timed events: `shown` (an impression at its time), `reacted` (a reaction at its time, with
    one indicator column per reaction), `engaged` (an impression's first click, like, comment or share, at its time)
    and `viewed` (an impression's capped dwell and skip, known when the view ended)."""
    shown = impressions.select("impression_id", "user_id", "post_id", "ts").join(
        posts_t.select("post_id", "post_row", "author_id", "topic", "media"), on="post_id", how="inner")
    reacted = (reactions.filter(pl.col("reaction").is_in(REACTIONS))
               .join(shown.rename({"ts": "shown_ts"}), on="impression_id", how="inner")
               .filter(pl.col("ts") >= pl.col("shown_ts"))
               .with_columns(*[(pl.col("reaction") == r).cast(pl.Int64).alias(f"r_{r}") for r in REACTIONS]))
    engaged = (reacted.filter(pl.col("reaction").is_in(POSITIVE))
               .group_by("impression_id").agg(pl.col("ts").min(), *[pl.col(c).first() for c in
                                                                   ("user_id", "post_id", "post_row", "author_id", "topic", "media")]))
    viewed = (shown.join(dwell.group_by("impression_id").agg(pl.col("seconds").sum()), on="impression_id", how="inner")
              .with_columns(seconds=pl.col("seconds").clip(0, None))
              .with_columns(done_ts=pl.col("ts") + pl.duration(microseconds=(pl.col("seconds") * 1e6).cast(pl.Int64)),
                            dwell=pl.col("seconds").clip(0, DWELL_CAP), skip=(pl.col("seconds") < skip_seconds).cast(pl.Int64)))
    return {"shown": shown, "reacted": reacted, "engaged": engaged, "viewed": viewed}


def aggregates_as_of(targets: pl.DataFrame, impressions: pl.DataFrame, reactions: pl.DataFrame, dwell: pl.DataFrame,
                     users: pl.DataFrame, friendships: pl.DataFrame, posts: pl.DataFrame, post_vectors: np.ndarray,
                     skip_seconds: float) -> pl.DataFrame:
    """Stage one for `targets` (user_id, post_id, ts, position, device, any other columns kept): every count from
    events strictly before the row's ts. `post_vectors` are the text vectors in the order of `posts`' rows."""
    users_t, posts_t = user_table(users), post_table(posts)
    h = histories(impressions, reactions, dwell, posts_t, skip_seconds)
    shown, reacted, engaged, viewed = h["shown"], h["reacted"], h["engaged"], h["viewed"]
    rows = (targets.with_row_index("_row").join(users_t, on="user_id", how="left")
            .join(posts_t, on="post_id", how="left"))

    user_sums = {f"u_{r}": f"r_{r}" for r in USER_REACTIONS}
    rows = count_before(rows, shown, ["user_id"], "u_imps")
    rows = count_before(rows, reacted, ["user_id"], "_u_reactions", user_sums).drop("_u_reactions")
    rows = count_before(rows, viewed, ["user_id"], "u_dwell_n", {"u_dwell_sum": "dwell", "u_skip_sum": "skip"}, on="done_ts")
    rows = count_before(rows, shown, ["post_id"], "p_imps")
    rows = count_before(rows, reacted, ["post_id"], "_p_reactions", {f"p_{r}": f"r_{r}" for r in POST_REACTIONS}).drop("_p_reactions")
    rows = count_before(rows, shown, ["author_id"], "a_imps")
    rows = count_before(rows, engaged, ["author_id"], "a_engaged")
    audience = directed_ties(friendships).select("author_id", ts="since_ts")
    rows = count_before(rows, audience, ["author_id"], "a_audience")
    pair = ["user_id", "author_id"]
    rows = count_before(rows, shown, pair, "f_imps")
    rows = count_before(rows, reacted, pair, "_f_reactions", {f"f_{r}": f"r_{r}" for r in AFFINITY_REACTIONS}).drop("_f_reactions")
    rows = count_before(rows, engaged, pair, "f_engaged")
    rows = count_before(rows.with_columns(_recent=pl.col("ts") - AFFINITY_RECENT), engaged, pair, "f_engaged_old",
                        at="_recent").drop("_recent")
    rows = count_before(rows, viewed, pair, "f_dwell_n", {"f_dwell_sum": "dwell"}, on="done_ts")
    rows = count_before(rows, shown, ["user_id", "topic"], "t_imps")
    rows = count_before(rows, engaged, ["user_id", "topic"], "t_engaged")
    rows = count_before(rows, shown, ["user_id", "media"], "m_imps")
    rows = count_before(rows, engaged, ["user_id", "media"], "m_engaged")
    mutual = mutual_friend_times(rows.select(pair).unique(), friendships)
    rows = count_before(rows, mutual, pair, "mutual_friends")
    ties = directed_ties(friendships).rename({"kind": "tie_kind", "since_ts": "tie_since"})
    rows = rows.join(ties, on=pair, how="left").with_columns(
        tie_kind=pl.when(pl.col("tie_since") < pl.col("ts")).then(pl.col("tie_kind")),
        tie_since=pl.when(pl.col("tie_since") < pl.col("ts")).then(pl.col("tie_since")))
    rows = similarity_to_history(rows, engaged, post_vectors, "text_similarity", "post_row")
    return rows.sort("_row").drop("_row", "post_row", strict=False)


def _rate(count: str, impressions: str) -> pl.Expr:
    return pl.col(count).cast(pl.Float64) / (pl.col(impressions).cast(pl.Float64) + RATE_PRIOR)


def _mean(total: str, n: str) -> pl.Expr:
    return pl.when(pl.col(n) > 0).then(pl.col(total) / pl.col(n))


def compose(aggregates: pl.DataFrame) -> pl.DataFrame:
    """Stage two: the model's FEATURES from stage one's aggregates (null where there is no history to average)."""
    hours = lambda a, b: (pl.col(a) - pl.col(b)).dt.total_seconds() / 3600  # noqa: E731
    return aggregates.with_columns(
        post_age_hours=hours("ts", "created_ts").clip(0, None),
        media_image=(pl.col("media") == "image").fill_null(False).cast(pl.Float64),
        media_video=(pl.col("media") == "video").fill_null(False).cast(pl.Float64),
        hashtag_count=pl.col("hashtag_count").cast(pl.Float64),
        text_words=pl.col("text_words").cast(pl.Float64),
        post_impressions=pl.col("p_imps").cast(pl.Float64),
        **{f"post_{r}_rate": _rate(f"p_{r}", "p_imps") for r in POST_REACTIONS},
        author_audience=pl.col("a_audience").cast(pl.Float64),
        author_engaged_rate=_rate("a_engaged", "a_imps"),
        age=pl.col("age").cast(pl.Float64),
        gender_code=pl.col("gender_code").cast(pl.Float64),
        account_age_days=(hours("ts", "joined_ts") / 24).clip(0, None),
        user_impressions=pl.col("u_imps").cast(pl.Float64),
        **{f"user_{r}_rate": _rate(f"u_{r}", "u_imps") for r in USER_REACTIONS},
        user_mean_dwell=_mean("u_dwell_sum", "u_dwell_n"),
        user_skip_rate=_mean("u_skip_sum", "u_dwell_n"),
        **{f"tie_{k}": (pl.col("tie_kind") == k).fill_null(False).cast(pl.Float64) for k in TIE_ORDER},
        tie_days=hours("ts", "tie_since") / 24,
        mutual_friends=pl.col("mutual_friends").cast(pl.Float64),
        affinity_impressions=pl.col("f_imps").cast(pl.Float64),
        affinity_engaged_rate=_rate("f_engaged", "f_imps"),
        affinity_like_rate=_rate("f_like", "f_imps"),
        affinity_comment_rate=_rate("f_comment", "f_imps"),
        affinity_hide_rate=_rate("f_hide", "f_imps"),
        affinity_engaged_7d=(pl.col("f_engaged") - pl.col("f_engaged_old")).cast(pl.Float64),
        affinity_mean_dwell=_mean("f_dwell_sum", "f_dwell_n"),
        topic_impressions=pl.col("t_imps").cast(pl.Float64),
        topic_engaged_rate=_rate("t_engaged", "t_imps"),
        media_engaged_rate=_rate("m_engaged", "m_imps"),
        text_similarity=pl.col("text_similarity").cast(pl.Float64),
        position=pl.col("position").cast(pl.Float64),
        hour=pl.col("ts").dt.hour().cast(pl.Float64),
        weekday=pl.col("ts").dt.weekday().cast(pl.Float64),
        **{f"device_{d}": (pl.col("device") == d).fill_null(False).cast(pl.Float64) for d in DEVICE_CODES},
    )


def point_in_time_features(targets: pl.DataFrame, impressions: pl.DataFrame, reactions: pl.DataFrame, dwell: pl.DataFrame,
                           users: pl.DataFrame, friendships: pl.DataFrame, posts: pl.DataFrame, post_vectors: np.ndarray,
                           skip_seconds: float) -> pl.DataFrame:
    """`targets`' columns plus the author and FEATURES, each computed from events strictly before the row's ts."""
    composed = compose(aggregates_as_of(targets, impressions, reactions, dwell, users, friendships, posts, post_vectors,
                                        skip_seconds))
    kept = [c for c in targets.columns if c not in FEATURES and c not in ("author_id", "topic", "created_ts")]
    return composed.select(*kept, "author_id", "topic", "created_ts", *FEATURES)


def feature_matrix(frame: pl.DataFrame, position: float | None = None) -> np.ndarray:
    """FEATURES as float32 with NaN for a missing value; with `position`, every row as if shown there (the feed is
    ranked as if each post were at the top, so the logged position's bias does not carry into the ranking)."""
    matrix = frame.select([pl.col(f).cast(pl.Float32) for f in FEATURES]).to_numpy().astype(np.float32)
    if position is not None:
        matrix[:, FEATURES.index("position")] = position
    return matrix


# --- the leakage audit -------------------------------------------------------------------------------------------------

AUDITED = ("user_impressions", "user_like_rate", "user_mean_dwell", "post_impressions", "post_like_rate",
           "post_click_rate", "affinity_impressions", "affinity_engaged_rate", "affinity_engaged_7d", "topic_engaged_rate")


def point_in_time_audit(features: pl.DataFrame, impressions: pl.DataFrame, reactions: pl.DataFrame, dwell: pl.DataFrame,
                        posts: pl.DataFrame, skip_seconds: float, sample: int = 300, seed: int = 0) -> pl.DataFrame:
    """Recounts, for a sample of rows, the growing counts from the raw tables strictly before the row's time, the slow
    obvious way; one row per feature with the rows that disagree (the leakage check wants zero)."""
    rows = features.sample(min(sample, features.height), seed=seed) if features.height else features
    h = histories(impressions, reactions, dwell, post_table(posts), skip_seconds)
    shown, reacted, engaged, viewed = h["shown"], h["reacted"], h["engaged"], h["viewed"]
    wrong = {f: 0 for f in AUDITED}
    for row in rows.iter_rows(named=True):
        ts, user, post, author = row["ts"], row["user_id"], row["post_id"], row["author_id"]
        before = lambda frame, at="ts": frame.filter(pl.col(at) < ts)  # noqa: E731
        mine = before(shown.filter(pl.col("user_id") == user))
        my_reactions = before(reacted.filter(pl.col("user_id") == user))
        my_views = before(viewed.filter(pl.col("user_id") == user), "done_ts")
        post_shown = before(shown.filter(pl.col("post_id") == post))
        post_reactions = before(reacted.filter(pl.col("post_id") == post))
        pair_shown = mine.filter(pl.col("author_id") == author)
        pair_engaged = before(engaged.filter((pl.col("user_id") == user) & (pl.col("author_id") == author)))
        # A post without a topic has no topic history (a null key matches nothing, in the features too).
        topic = row["topic"]
        same_topic = pl.col("topic") == topic if topic is not None else pl.lit(False)
        topic_shown = mine.filter(same_topic)
        topic_engaged = before(engaged.filter((pl.col("user_id") == user) & same_topic))
        rate = lambda n, imps: n / (imps + RATE_PRIOR)  # noqa: E731
        expected = {
            "user_impressions": mine.height,
            "user_like_rate": rate(int(my_reactions["r_like"].sum()), mine.height),
            "user_mean_dwell": float(my_views["dwell"].mean()) if my_views.height else None,
            "post_impressions": post_shown.height,
            "post_like_rate": rate(int(post_reactions["r_like"].sum()), post_shown.height),
            "post_click_rate": rate(int(post_reactions["r_click"].sum()), post_shown.height),
            "affinity_impressions": pair_shown.height,
            "affinity_engaged_rate": rate(pair_engaged.height, pair_shown.height),
            "affinity_engaged_7d": pair_engaged.filter(pl.col("ts") >= ts - AFFINITY_RECENT).height,
            "topic_engaged_rate": rate(topic_engaged.height, topic_shown.height),
        }
        for name, value in expected.items():
            got = row[name]
            if (value is None) != (got is None) or (value is not None and abs(float(got) - float(value)) > 1e-6):
                wrong[name] += 1
    return pl.DataFrame({"feature": list(wrong), "rows_checked": [rows.height] * len(wrong),
                         "rows_not_as_of_impression": list(wrong.values())})


def leaky_end_of_data(features: pl.DataFrame, impressions: pl.DataFrame, reactions: pl.DataFrame) -> pl.DataFrame:
    """The mistake the audit is there to catch: each post's like rate counted over all the data, later likes
    included (for the tests)."""
    likes = (reactions.filter(pl.col("reaction") == "like").join(impressions.select("impression_id", "post_id"), on="impression_id")
             .group_by("post_id").len("likes"))
    shown = impressions.group_by("post_id").len("shown")
    return (features.join(likes, on="post_id", how="left").join(shown, on="post_id", how="left")
            .with_columns(post_like_rate=pl.col("likes").fill_null(0) / (pl.col("shown") + RATE_PRIOR)).drop("likes", "shown"))
