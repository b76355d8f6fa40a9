"""Raw event-platform data (users, events, friendships, interactions) as the source gives it, validated."""

import polars as pl

from assets.raw import build_raw_table
from expectations import event_recommendation as suites

GROUP = "event_recommendation"


def _interactions_summary(interactions: pl.DataFrame) -> dict:
    if not {"ts", "kind"} <= set(interactions.columns):
        return {}
    counts = dict(interactions["kind"].value_counts().iter_rows())
    return {"first_ts": str(interactions["ts"].min()), "last_ts": str(interactions["ts"].max()),
            **{f"{kind}s": int(counts.get(kind, 0)) for kind in ("impression", "register", "invite")}}


def _interactions_suite(frame: pl.DataFrame, window, users: pl.DataFrame, events: pl.DataFrame):
    suite = suites.interactions_suite(users["user_id"], events["event_id"])
    if "event_id" in frame.columns and "created_ts" in events.columns:
        frame = frame.join(events.select("event_id", "created_ts"), on="event_id", how="left", maintain_order="left")
    return frame, suite


def build_raw_assets() -> list:
    return [
        *build_raw_table(GROUP, "users", suites.USERS_SCHEMA,
                         "Users with a home (city and coordinates), age and gender.",
                         lambda frame, window: (frame, suites.users_suite()),
                         "Schema, unique non-null ids, coordinates in range."),
        *build_raw_table(GROUP, "events", suites.EVENTS_SCHEMA,
                         "Every event: host, category, description, price, venue, start, when it went on sale, capacity.",
                         lambda frame, window: (frame, suites.events_suite()),
                         "Schema, unique non-null ids, venue, price and capacity in range, on sale before it starts."),
        *build_raw_table(GROUP, "friendships", suites.FRIENDSHIPS_SCHEMA,
                         "Who is friends with whom (each pair once or both ways: the features read it as symmetric).",
                         lambda frame, window, users: (frame, suites.friendships_suite(users["user_id"])),
                         "Schema, both ends known users.", references={"users": "event_recommendation_users"}),
        *build_raw_table(GROUP, "interactions", suites.INTERACTIONS_SCHEMA,
                         "Impressions, registrations and invitations (invitee_id: the friend invited), with their times.",
                         _interactions_suite,
                         "Schema, known kinds, users and events, nothing before the event went on sale, no duplicates.",
                         references={"users": "event_recommendation_users", "events": "event_recommendation_events"},
                         summary=_interactions_summary),
    ]
