"""One day of similar-listings monitoring (shared by the assets and the tests).

A day is described by what guests did on it (the cities and prices of the listings they clicked, clicks per
session, the share of sessions that booked, the share of clicks on listings the champion has no learned embedding
for) and by how the champion did on its booking sessions (each session's booked-rank share, and their mean rank:
the live metric). The reference is the same description of the champion's held-out test days.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from models.drift import Described, Distribution, Level, LiveMetric, Monitors
from models.similar_listings.data import Catalogue, evaluation_cases, sessions_between
from models.similar_listings.evaluation import booked_ranks, embeddings_of
from models.similar_listings.skipgram import Trained

DAY = timedelta(days=1)

MONITORS = Monitors(
    distributions=(
        Distribution("clicked_city", categorical=True),
        Distribution("clicked_log_price"),
        Distribution("clicks_per_session"),
        # The champion's output on the day: where it ranked each booked listing, as a share of the session's listings.
        Distribution("booked_rank_share", label="prediction"),
    ),
    levels=(
        Level("sessions", relative=True, max_rise=0.4, max_fall=0.4),
        Level("booking_rate", relative=False, max_rise=0.1, max_fall=0.1),
        # Clicks the champion cannot place by a learned vector: a market that moved to listings it never saw.
        Level("unlearned_click_share", relative=False, max_rise=0.1),
    ),
    # A day's few hundred booking sessions move the mean rank by about a tenth (the fine-tune benchmark's frozen model
    # ranged 4.8 to 6.0 over eight stable days), so the alarm is for a mean rank 25% worse than the reference's.
    live=(LiveMetric("mean_booked_rank", higher_is_better=False, tolerance=0.25),),
)


def describe_day(sessions: pl.DataFrame, listings: pl.DataFrame, trained: Trained, start: datetime) -> Described:
    """The day [start, start + 1 day) of the sessions, as the monitors read it."""
    day = sessions_between(sessions, start, start + DAY)
    catalogue = Catalogue.from_listings(listings, start + DAY)
    clicks = day.filter(pl.col("event") == "click").join(listings.select("listing_id", "city", "price"), on="listing_id")
    per_session = day.group_by("session_id").agg(clicks=(pl.col("event") == "click").sum(),
                                                  booked=(pl.col("event") == "book").any())
    learned = set(trained.ids)
    cases = evaluation_cases(day, catalogue, max_next_clicks=0)
    ranks = booked_ranks(embeddings_of(trained, catalogue), cases) if cases.booked else np.zeros(0)
    sizes = np.array([len(candidates) for _, _, candidates, _ in cases.booked])
    return Described(
        distributions={
            "clicked_city": clicks["city"].to_list(),
            "clicked_log_price": np.log(np.maximum(clicks["price"].to_numpy(), 1.0)).tolist(),
            "clicks_per_session": per_session["clicks"].cast(pl.Float64).to_list(),
            "booked_rank_share": ((ranks - 1) / np.maximum(sizes - 1, 1)).tolist(),
        },
        levels={
            "sessions": [float(per_session.height)],
            "booking_rate": [float(per_session["booked"].mean()) if per_session.height else 0.0],
            "unlearned_click_share": [float((~clicks["listing_id"].is_in(list(learned))).mean()) if clicks.height else 0.0],
        },
        live={"mean_booked_rank": float(ranks.mean()) if len(ranks) else None},
        days=[f"{start:%Y-%m-%d}"],
    )


def describe_days(sessions: pl.DataFrame, listings: pl.DataFrame, trained: Trained, start: datetime, end: datetime,
                  max_days: int = 7) -> Described:
    """Several days pooled (the reference): values concatenated, levels one per day, the live metric over all the
    booking sessions. At most `max_days`, spread over the window, as each costs a pass over its sessions."""
    days = [start + DAY * i for i in range(max(1, (end - start).days))]
    if len(days) > max_days:
        days = [days[round(i * (len(days) - 1) / (max_days - 1))] for i in range(max_days)]
    parts = [describe_day(sessions, listings, trained, day) for day in days]
    return Described.pooled(parts, weights=[len(p.distributions["booked_rank_share"]) for p in parts])
