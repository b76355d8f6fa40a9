"""Raw social-network data (users, friendships, posts, impressions, reactions, dwell) as the source gives it,
validated."""

import polars as pl

from assets.raw import build_raw_table
from expectations import news_feed as suites

GROUP = "news_feed"


def _impressions_summary(impressions: pl.DataFrame) -> dict:
    if "ts" not in impressions.columns or impressions.is_empty():
        return {}
    return {"first_ts": str(impressions["ts"].min()), "last_ts": str(impressions["ts"].max()),
            "users": impressions["user_id"].n_unique() if "user_id" in impressions.columns else 0}


def _reactions_summary(reactions: pl.DataFrame) -> dict:
    if "reaction" not in reactions.columns:
        return {}
    counts = dict(reactions["reaction"].value_counts().iter_rows())
    return {f"{reaction}s": int(counts.get(reaction, 0)) for reaction in suites.REACTIONS}


def _impressions_suite(frame: pl.DataFrame, window, users: pl.DataFrame, posts: pl.DataFrame):
    suite = suites.impressions_suite(users["user_id"], posts["post_id"])
    if "post_id" in frame.columns and "created_ts" in posts.columns:
        frame = frame.join(posts.select("post_id", "created_ts"), on="post_id", how="left", maintain_order="left")
    return frame, suite


def _reactions_suite(frame: pl.DataFrame, window, impressions: pl.DataFrame):
    suite = suites.reactions_suite(impressions["impression_id"])
    if "impression_id" in frame.columns:
        frame = frame.join(impressions.select("impression_id", shown_ts="ts"), on="impression_id", how="left",
                           maintain_order="left")
    return frame, suite


def build_raw_assets() -> list:
    users = {"users": "news_feed_users"}
    return [
        *build_raw_table(GROUP, "users", suites.USERS_SCHEMA, "Users with age, gender and when they joined.",
                         lambda frame, window: (frame, suites.users_suite()),
                         "Schema, unique non-null ids, ages in range."),
        *build_raw_table(GROUP, "friendships", suites.FRIENDSHIPS_SCHEMA,
                         "Ties: family, close friends and friends (mutual), follows (one way), with when each began.",
                         lambda frame, window, users: (frame, suites.friendships_suite(users["user_id"])),
                         "Schema, known kinds, both ends known users.", references=users),
        *build_raw_table(GROUP, "posts", suites.POSTS_SCHEMA,
                         "Every post: author, text, topic, hashtags, media kind and when it was written.",
                         lambda frame, window, users: (frame, suites.posts_suite(users["user_id"])),
                         "Schema, unique non-null ids, known media kinds and authors.", references=users),
        *build_raw_table(GROUP, "impressions", suites.IMPRESSIONS_SCHEMA,
                         "Posts shown in feeds: who saw which post, when, at which position, on which device.",
                         _impressions_suite,
                         "Schema, unique ids, known users and posts, positions from 1, nothing before its post.",
                         references={**users, "posts": "news_feed_posts"}, summary=_impressions_summary),
        *build_raw_table(GROUP, "reactions", suites.REACTIONS_SCHEMA,
                         "Reactions to impressions: click, like, comment, share, hide, block, with their times.",
                         _reactions_suite,
                         "Schema, known reactions and impressions, nothing before its impression, no duplicates.",
                         references={"impressions": "news_feed_impressions"}, summary=_reactions_summary),
        *build_raw_table(GROUP, "dwell", suites.DWELL_SCHEMA, "Seconds each impression stayed on screen.",
                         lambda frame, window, impressions: (frame, suites.dwell_suite(impressions["impression_id"])),
                         "Schema, known impressions, seconds in range.",
                         references={"impressions": "news_feed_impressions"}),
    ]
