"""Expectation suites of the news feed: the raw-input contract, the time split and leakage."""

from __future__ import annotations

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")
REACTIONS = ("click", "like", "comment", "share", "hide", "block")
TIE_KINDS = ("family", "close_friend", "friend", "follow")
MEDIA = ("text", "image", "video")
# The raw-input contract (README "News feed: bring your own data").
USERS_SCHEMA = {"user_id": pl.String, "age": pl.Int64, "gender": pl.String, "joined_ts": UTC_TS}
# `kind` family, close_friend and friend are mutual (listed once or both ways); follow is one way: user_id follows
# friend_id. since_ts: when the tie began.
FRIENDSHIPS_SCHEMA = {"user_id": pl.String, "friend_id": pl.String, "kind": pl.String, "since_ts": UTC_TS}
# hashtags: space-separated, without '#'; null when none.
POSTS_SCHEMA = {"post_id": pl.String, "author_id": pl.String, "text": pl.String, "topic": pl.String,
                "hashtags": pl.String, "media": pl.String, "created_ts": UTC_TS}
IMPRESSIONS_SCHEMA = {"impression_id": pl.String, "user_id": pl.String, "post_id": pl.String, "ts": UTC_TS,
                      "position": pl.Int64, "device": pl.String}
REACTIONS_SCHEMA = {"impression_id": pl.String, "reaction": pl.String, "ts": UTC_TS}
DWELL_SCHEMA = {"impression_id": pl.String, "seconds": pl.Float64}
