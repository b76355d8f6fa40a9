"""Raw ad click data: users, ads and daily impressions as they arrive, plus the simulator's oracle."""

import dagster as dg
import polars as pl

from assets.ad_click.resources import AdClickSource
from assets.common import frame_metadata, per_partition_result, span, split_by_time, time_partitions
from assets.raw import build_raw_table
from expectations import ad_click as suites

GROUP = "ad_click"


def _impressions_summary(impressions: pl.DataFrame) -> dict:
    if "clicked" not in impressions.columns:
        return {}
    clicks = int(impressions["clicked"].sum())
    return {"clicks": clicks, "ctr": clicks / impressions.height}


def _impressions_suite(frame, window, users: pl.DataFrame, ads: pl.DataFrame):
    start, end = window
    return frame, suites.impressions_suite(start, end, users["user_id"], ads["ad_id"],
                                           click_times="click_ts" in frame.columns)


def build_raw_assets(daily: dg.DailyPartitionsDefinition) -> list:
    users = build_raw_table(
        GROUP, "users", suites.USERS_SCHEMA, "Users who can see ads: demographics and signup time, as the source provides them.",
        lambda frame, window: (frame, suites.users_suite()), "Schema, unique non-null ids, age range.",
    )
    ads = build_raw_table(
        GROUP, "ads", suites.ADS_SCHEMA, "Ads that can be shown: advertiser, category and creation time.",
        lambda frame, window: (frame, suites.ads_suite()), "Schema, unique non-null ids.",
    )
    impressions = build_raw_table(
        GROUP, "impressions", {**suites.IMPRESSIONS_SCHEMA, **suites.OPTIONAL_IMPRESSION_COLUMNS},
        "One day of ad impressions with their click labels. Re-running a day replaces it, never appends.",
        _impressions_suite,
        "Schema, unique ids, position >= 1, clicked in {0,1}, ts inside the day, known users and ads.",
        references={"users": "ad_click_users", "ads": "ad_click_ads"}, partitions_def=daily, summary=_impressions_summary,
    )

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"}, partitions_def=daily, backfill_policy=dg.BackfillPolicy.single_run())
    def ad_click_oracle(context: dg.AssetExecutionContext, ad_click_source: AdClickSource) -> dg.MaterializeResult:
        """The simulator's true click probability of each impression: the best any model can do.

        Only evaluation reads it; no feature may. With your own data there is no oracle and it stays empty.
        """
        windows = time_partitions(context, daily)
        schema = {"impression_id": pl.String, "ts": pl.Datetime("us", "UTC"), "p_click": pl.Float64}
        if not ad_click_source.has_oracle:
            empty = {key: pl.DataFrame(schema=schema) for key in windows}
            return per_partition_result(context, empty, lambda *_: {"oracle": "none: user-provided data has no oracle"})
        oracle = ad_click_source.events_between("oracle", schema, *span(windows))
        return per_partition_result(
            context, split_by_time(oracle, windows),
            lambda _, frame: {**frame_metadata(frame), "mean_p_click": float(frame["p_click"].mean() or 0)},
        )

    return [*users, *ads, *impressions, ad_click_oracle]
