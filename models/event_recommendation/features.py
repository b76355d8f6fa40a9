"""Point-in-time features of (user, event, time) rows, in two stages that training and serving share.

Stage one, `aggregates_as_of`, counts what happened strictly before each row's time: the user's past registrations
(by category, weekday, hour, price, distance and description), the event's registrations and impressions so far,
friends registered or inviting, the host's past attendance. Serving reads the same aggregates from the online
store's snapshot instead (`models/event_rec/service_model.py`). Stage two, `compose`, turns aggregates and the
raw attributes into the model's features, and is the one function both paths call.

Counts that grow while an event is on sale are the leakage trap of this case: a count taken at the end of the sale
carries the label. Every join here is an as-of join that excludes the row's own time, and
`point_in_time_audit` recounts a sample from the raw events to prove it (a blocking check).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from models.tabular import count_before, gender_codes, similarity_to_history


EARTH_KM = 6371.0
HOUR_BLOCK = 4  # hours: a user's habit is judged in blocks of the day
PRICE_BUCKETS = (0.0, 15.0, 40.0, 100.0)  # free, up to 15, up to 40, up to 100, more
FEATURES = (
    "distance_km", "same_city", "distance_vs_user", "hours_to_event", "hours_on_sale", "is_weekend",
    "weekday_match", "hour_match", "registrations_so_far", "impressions_so_far", "registration_rate_so_far",
    "capacity_left_share", "friends_registered", "friends_inviting", "host_is_friend", "host_past_events",
    "host_past_attendance", "age", "gender_code", "price_log", "price_bucket", "price_vs_user", "category_match",
    "user_registrations", "description_similarity",
)
# Columns stage one gives stage two (besides user_id, event_id and ts).
AGGREGATES = (
    "u_lat", "u_lon", "u_city", "age", "gender_code", "u_regs", "u_cat_regs", "u_weekday_regs", "u_hour_regs",
    "u_logprice_sum", "u_logdist_sum", "e_lat", "e_lon", "e_city", "price", "capacity", "start_ts", "created_ts",
    "e_regs", "e_imps", "friends_registered", "friends_inviting", "host_is_friend", "host_past_events",
    "host_past_regs", "description_similarity",
)


def haversine_km(lat1: pl.Expr, lon1: pl.Expr, lat2: pl.Expr, lon2: pl.Expr) -> pl.Expr:
    rad = np.pi / 180
    a = ((lat2 - lat1) * rad / 2).sin() ** 2 + (lat1 * rad).cos() * (lat2 * rad).cos() * ((lon2 - lon1) * rad / 2).sin() ** 2
    return 2 * EARTH_KM * a.sqrt().clip(0, 1).arcsin()


def distance_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle kilometres between arrays of coordinates (numpy; the polars twin is `haversine_km`)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(v, dtype=float)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def user_table(users: pl.DataFrame) -> pl.DataFrame:
    codes = gender_codes(users)
    return users.select(
        "user_id", u_lat="lat", u_lon="lon", u_city="city", age=pl.col("age").cast(pl.Float64),
        gender_code=pl.col("gender").replace_strict(codes, default=len(codes), return_dtype=pl.Int64).fill_null(len(codes)),
    )


def event_table(events: pl.DataFrame) -> pl.DataFrame:
    return events.with_row_index("event_row").select(
        "event_id", "event_row", "host_id", "category", e_lat="lat", e_lon="lon", e_city="city",
        price=pl.col("price").cast(pl.Float64), capacity=pl.col("capacity").cast(pl.Float64), start_ts="start_ts",
        created_ts="created_ts", weekday=pl.col("start_ts").dt.weekday(), hour_block=pl.col("start_ts").dt.hour() // HOUR_BLOCK,
        log_price=pl.col("price").cast(pl.Float64).log1p(),
    )


def symmetric_edges(friendships: pl.DataFrame) -> pl.DataFrame:
    """user_id, friend_id both ways, once each."""
    pairs = friendships.select("user_id", "friend_id").filter(pl.col("user_id") != pl.col("friend_id"))
    return pl.concat([pairs, pairs.select(user_id="friend_id", friend_id="user_id")]).unique()


def registrations_with_attributes(interactions: pl.DataFrame, users_t: pl.DataFrame, events_t: pl.DataFrame) -> pl.DataFrame:
    """Registrations (kind register) with the event's attributes and the distance from the user's home."""
    regs = interactions.filter(pl.col("kind") == "register").select("user_id", "event_id", "ts")
    return (
        regs.join(events_t, on="event_id", how="inner").join(users_t.select("user_id", "u_lat", "u_lon"), on="user_id", how="left")
        .with_columns(log_dist=haversine_km(pl.col("u_lat"), pl.col("u_lon"), pl.col("e_lat"), pl.col("e_lon")).log1p().fill_null(0.0))
        .sort("ts")
    )


def aggregates_as_of(targets: pl.DataFrame, interactions: pl.DataFrame, users: pl.DataFrame, events: pl.DataFrame,
                     friendships: pl.DataFrame, event_vectors: np.ndarray) -> pl.DataFrame:
    """Stage one for `targets` (user_id, event_id, ts, any other columns kept): every count from interactions
    strictly before the row's ts. `event_vectors` are the description vectors in the order of `events`' rows."""
    users_t, events_t = user_table(users), event_table(events)
    regs = registrations_with_attributes(interactions, users_t, events_t)
    edges = symmetric_edges(friendships)
    rows = (targets.with_row_index("_row").join(users_t, on="user_id", how="left")
            .join(events_t, on="event_id", how="left").sort("ts"))

    rows = count_before(rows, regs, ["user_id"], "u_regs", {"u_logprice_sum": "log_price", "u_logdist_sum": "log_dist"})
    rows = count_before(rows, regs, ["user_id", "category"], "u_cat_regs")
    rows = count_before(rows, regs, ["user_id", "weekday"], "u_weekday_regs")
    rows = count_before(rows, regs, ["user_id", "hour_block"], "u_hour_regs")
    rows = count_before(rows, regs, ["event_id"], "e_regs")
    impressions = interactions.filter(pl.col("kind") == "impression").select("event_id", "ts")
    rows = count_before(rows, impressions, ["event_id"], "e_imps")
    friend_regs = regs.select(pl.col("user_id").alias("friend_id"), "event_id", "ts").join(edges, on="friend_id").select("user_id", "event_id", "ts")
    rows = count_before(rows, friend_regs, ["user_id", "event_id"], "friends_registered")
    invites = interactions.filter((pl.col("kind") == "invite") & pl.col("invitee_id").is_not_null()).select(
        pl.col("invitee_id").alias("user_id"), "event_id", "ts")
    rows = count_before(rows, invites, ["user_id", "event_id"], "friends_inviting")
    # The host's events that started before the row: their registrations were all made by then.
    host_events = (regs.filter(pl.col("ts") < pl.col("start_ts")).group_by("event_id").len("final_regs")
                   .join(events_t.select("event_id", "host_id", "start_ts"), on="event_id", how="right").fill_null(0)
                   .select("host_id", ts="start_ts", host_regs="final_regs"))
    rows = count_before(rows, host_events.with_columns(pl.col("host_regs").cast(pl.Float64)), ["host_id"], "host_past_events",
                         {"host_past_regs": "host_regs"})
    rows = rows.join(edges.select("user_id", host_id="friend_id", host_is_friend=pl.lit(1)), on=["user_id", "host_id"], how="left").with_columns(
        pl.col("host_is_friend").fill_null(0))

    # Description similarity to the user's past registrations (as of the row).
    rows = similarity_to_history(rows, regs, event_vectors, "description_similarity", "event_row")
    return rows.sort("_row").drop("_row", "event_row", "weekday", "hour_block", "log_price", "category_right",
                                  strict=False)


def _share(count: str) -> pl.Expr:
    return pl.when(pl.col("u_regs") > 0).then(pl.col(count) / pl.col("u_regs")).otherwise(None)


def compose(aggregates: pl.DataFrame) -> pl.DataFrame:
    """Stage two: the model's FEATURES from stage one's aggregates (nulls where a user has no history)."""
    distance = haversine_km(pl.col("u_lat"), pl.col("u_lon"), pl.col("e_lat"), pl.col("e_lon"))
    hours = lambda a, b: (pl.col(a) - pl.col(b)).dt.total_seconds() / 3600  # noqa: E731
    price_log = pl.col("price").log1p()
    return aggregates.with_columns(
        distance_km=distance,
        same_city=(pl.col("u_city") == pl.col("e_city")).fill_null(False).cast(pl.Float64),
        distance_vs_user=pl.when(pl.col("u_regs") > 0).then(distance.log1p() - pl.col("u_logdist_sum") / pl.col("u_regs")),
        hours_to_event=hours("start_ts", "ts"),
        hours_on_sale=hours("ts", "created_ts"),
        is_weekend=(pl.col("start_ts").dt.weekday() >= 6).cast(pl.Float64),
        weekday_match=_share("u_weekday_regs"),
        hour_match=_share("u_hour_regs"),
        registrations_so_far=pl.col("e_regs").cast(pl.Float64),
        impressions_so_far=pl.col("e_imps").cast(pl.Float64),
        # Smoothed towards one registration in twenty impressions, so a new event is not 0/0.
        registration_rate_so_far=(pl.col("e_regs") + 1) / (pl.col("e_imps") + 20),
        capacity_left_share=(1 - pl.col("e_regs") / pl.col("capacity")).clip(0, 1),
        friends_registered=pl.col("friends_registered").cast(pl.Float64),
        friends_inviting=pl.col("friends_inviting").cast(pl.Float64),
        host_is_friend=pl.col("host_is_friend").cast(pl.Float64),
        host_past_events=pl.col("host_past_events").cast(pl.Float64),
        host_past_attendance=pl.when(pl.col("host_past_events") > 0).then(pl.col("host_past_regs") / pl.col("host_past_events")),
        gender_code=pl.col("gender_code").cast(pl.Float64),
        price_log=price_log,
        price_bucket=pl.sum_horizontal([(pl.col("price") > b).cast(pl.Float64) for b in PRICE_BUCKETS]),
        price_vs_user=pl.when(pl.col("u_regs") > 0).then(price_log - pl.col("u_logprice_sum") / pl.col("u_regs")),
        category_match=_share("u_cat_regs"),
        user_registrations=pl.col("u_regs").cast(pl.Float64),
        description_similarity=pl.col("description_similarity").cast(pl.Float64),
    )


def point_in_time_features(targets: pl.DataFrame, interactions: pl.DataFrame, users: pl.DataFrame, events: pl.DataFrame,
                           friendships: pl.DataFrame, event_vectors: np.ndarray) -> pl.DataFrame:
    """`targets`' columns plus FEATURES, each computed from interactions strictly before the row's ts."""
    composed = compose(aggregates_as_of(targets, interactions, users, events, friendships, event_vectors))
    return composed.select(*targets.columns, *FEATURES)


def feature_matrix(frame: pl.DataFrame) -> np.ndarray:
    """FEATURES as float32 with NaN for a missing value."""
    return frame.select([pl.col(f).cast(pl.Float32) for f in FEATURES]).to_numpy().astype(np.float32)


def point_in_time_audit(features: pl.DataFrame, interactions: pl.DataFrame, friendships: pl.DataFrame,
                        events: pl.DataFrame, sample: int = 300, seed: int = 0) -> pl.DataFrame:
    """Recounts, for a sample of rows, the growing counts from the raw events strictly before the row's time, the
    slow obvious way; one row per feature with the rows that disagree (the leakage check wants zero)."""
    rows = features.sample(min(sample, features.height), seed=seed) if features.height else features
    regs = interactions.filter(pl.col("kind") == "register")
    impressions = interactions.filter(pl.col("kind") == "impression")
    invites = interactions.filter(pl.col("kind") == "invite")
    edges = symmetric_edges(friendships)
    friends_of = {u: set(f) for u, f in edges.group_by("user_id").agg("friend_id").iter_rows()}
    event_of = {r["event_id"]: r for r in events.select("event_id", "host_id", "category", "start_ts").iter_rows(named=True)}
    starts_by_host: dict[str, list] = {}
    for r in event_of.values():
        starts_by_host.setdefault(r["host_id"], []).append(r["start_ts"])
    mismatches = {name: 0 for name in ("registrations_so_far", "impressions_so_far", "friends_registered",
                                       "friends_inviting", "user_registrations", "category_match", "host_past_events")}
    by_event_regs = dict(regs.group_by("event_id").agg(pl.struct("ts", "user_id")).iter_rows())
    by_event_imps = dict(impressions.group_by("event_id").agg("ts").iter_rows())
    by_user_regs = dict(regs.group_by("user_id").agg(pl.struct("ts", "event_id")).iter_rows())
    invites_to = dict(invites.group_by("invitee_id", "event_id").agg("ts").select(
        pl.concat_str("invitee_id", "event_id", separator="|"), "ts").iter_rows())
    for row in rows.iter_rows(named=True):
        ts, event, user = row["ts"], row["event_id"], row["user_id"]
        event_regs = by_event_regs.get(event) or []
        friends = friends_of.get(user, set())
        past = [r for r in by_user_regs.get(user) or [] if r["ts"] < ts]
        this = event_of.get(event) or {}
        in_category = sum((event_of.get(r["event_id"]) or {}).get("category") == this.get("category") for r in past)
        expected = {
            "registrations_so_far": sum(r["ts"] < ts for r in event_regs),
            "impressions_so_far": sum(t < ts for t in by_event_imps.get(event, [])),
            "friends_registered": sum(r["ts"] < ts and r["user_id"] in friends for r in event_regs),
            "friends_inviting": sum(t < ts for t in invites_to.get(f"{user}|{event}", [])),
            "user_registrations": len(past),
            "category_match": in_category / len(past) if past else None,
            "host_past_events": sum(start < ts for start in starts_by_host.get(this.get("host_id"), [])),
        }
        for name, value in expected.items():
            if (row[name] is None) != (value is None) or (value is not None and abs(row[name] - value) > 1e-9):
                mismatches[name] += 1
    return pl.DataFrame({"feature": list(mismatches), "rows_checked": [rows.height] * len(mismatches),
                         "rows_not_as_of_impression": list(mismatches.values())})


def leaky_end_of_sale(features: pl.DataFrame, interactions: pl.DataFrame) -> pl.DataFrame:
    """The trap, for the leakage test: registrations_so_far counted at the end of the sale (every registration)."""
    final = interactions.filter(pl.col("kind") == "register").group_by("event_id").len("final").with_columns(pl.col("final").cast(pl.Float64))
    return features.join(final, on="event_id", how="left").with_columns(
        registrations_so_far=pl.col("final").fill_null(0.0)).drop("final")

