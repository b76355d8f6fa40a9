"""Raw marketplace data (listings, session events) as the source gives it, and the time split every model shares."""

import dagster as dg
import polars as pl

from assets.common import frame_markdown, suite_check
from assets.raw import build_raw_table
from assets.similar_listings.resources import SimilarListingsTimeSplit
from expectations import similar_listings as suites

GROUP = "similar_listings"


def _sessions_summary(sessions: pl.DataFrame) -> dict:
    if not {"ts", "session_id", "event"} <= set(sessions.columns):
        return {}
    return {"first_ts": str(sessions["ts"].min()), "last_ts": str(sessions["ts"].max()),
            "sessions": sessions["session_id"].n_unique(), "bookings": int((sessions["event"] == "book").sum())}


def _sessions_suite(frame: pl.DataFrame, window, listings: pl.DataFrame):
    suite = suites.sessions_suite(listings["listing_id"])
    if "listing_id" in frame.columns and "created_ts" in listings.columns:
        frame = frame.join(listings.select("listing_id", "created_ts"), on="listing_id", how="left", maintain_order="left")
    return frame, suite


def build_raw_assets() -> list:
    raw = [
        *build_raw_table(GROUP, "listings", suites.LISTINGS_SCHEMA,
                         "Every listing on the market: city, place, type, price, beds and when it was listed.",
                         lambda frame, window: (frame, suites.listings_suite()),
                         "Schema, unique non-null ids, coordinates and price in range."),
        *build_raw_table(GROUP, "sessions", suites.SESSIONS_SCHEMA,
                         "Search sessions: each listing a guest was shown, clicked or booked, with its page position.",
                         _sessions_suite,
                         "Schema, known events and listings, no event before its listing was listed, no duplicates.",
                         references={"listings": "similar_listings_listings"}, summary=_sessions_summary),
    ]

    @dg.asset(group_name=GROUP, kinds={"polars"}, ins={"sessions": dg.AssetIn("similar_listings_sessions")})
    def similar_listings_windows(
        context: dg.AssetExecutionContext, similar_listings_time_split: SimilarListingsTimeSplit, sessions: pl.DataFrame
    ) -> dg.MaterializeResult:
        """Where training ends and judging begins: the train, validation and test windows every model and baseline
        shares, sized by the data (the test window holds enough guests who booked)."""
        try:
            cutoffs = similar_listings_time_split.cutoffs(sessions)
        except ValueError as error:
            raise dg.Failure(str(error)) from None
        windows = cutoffs.windows(sessions)
        context.log.info(f"time split:\n{windows}")
        return dg.MaterializeResult(
            value=windows,
            metadata={
                "windows": dg.MetadataValue.md(frame_markdown(windows.drop("next_start"))),
                "validation_start": cutoffs.validation_start.isoformat(),
                "test_start": cutoffs.test_start.isoformat(),
                "end": cutoffs.end.isoformat(),
            },
        )

    @dg.asset_check(asset=similar_listings_windows, blocking=True,
                    description="Train, validation and test windows hold sessions and bookings, are disjoint and in "
                    "time order.")
    def similar_listings_windows_valid(similar_listings_windows: pl.DataFrame) -> dg.AssetCheckResult:
        return suite_check(similar_listings_windows, suites.split_suite())

    return [*raw, similar_listings_windows, similar_listings_windows_valid]
