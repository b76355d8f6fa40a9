"""Raw ad click data: users, ads and daily impressions as they arrive, plus the simulator's oracle."""


import dagster as dg
import polars as pl

from assets.common import frame_metadata, suite_check
from expectations import ad_click as suites
from models.ad_click.features import day_bounds
from orchestration.resources import AdClickSource

GROUP = "ad_click"


def build_raw_assets(daily: dg.DailyPartitionsDefinition) -> list:
    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"})
    def ad_click_users(source: AdClickSource) -> dg.MaterializeResult:
        """Users who can see ads: demographics and signup time, as the source provides them."""
        users = source.table("users", suites.USERS_SCHEMA)
        return dg.MaterializeResult(value=users, metadata={**frame_metadata(users), "source": source.description})

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"})
    def ad_click_ads(source: AdClickSource) -> dg.MaterializeResult:
        """Ads that can be shown: advertiser, category and creation time."""
        ads = source.table("ads", suites.ADS_SCHEMA)
        return dg.MaterializeResult(value=ads, metadata={**frame_metadata(ads), "source": source.description})

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"}, partitions_def=daily)
    def ad_click_impressions(context: dg.AssetExecutionContext, source: AdClickSource) -> dg.MaterializeResult:
        """One day of ad impressions with their click labels. Re-running a day replaces it, never appends."""
        start, end = day_bounds(context.partition_key)
        impressions = source.events_between("impressions", suites.IMPRESSIONS_SCHEMA, start, end)
        clicks = int(impressions["clicked"].sum()) if "clicked" in impressions.columns else None
        return dg.MaterializeResult(
            value=impressions,
            metadata={
                **frame_metadata(impressions),
                "clicks": clicks,
                "ctr": clicks / impressions.height if clicks is not None and impressions.height else None,
                "source": source.description,
            },
        )

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"}, partitions_def=daily)
    def ad_click_oracle(context: dg.AssetExecutionContext, source: AdClickSource) -> dg.MaterializeResult:
        """The simulator's true click probability of each impression: the best any model can do.

        Only evaluation reads it; no feature may. With your own data there is no oracle and it stays empty.
        """
        start, end = day_bounds(context.partition_key)
        schema = {"impression_id": pl.String, "ts": pl.Datetime("us", "UTC"), "p_click": pl.Float64}
        if not source.has_oracle:
            empty = pl.DataFrame(schema=schema)
            return dg.MaterializeResult(value=empty, metadata={"oracle": "none: user-provided data has no oracle"})
        oracle = source.events_between("oracle", schema, start, end)
        return dg.MaterializeResult(
            value=oracle, metadata={**frame_metadata(oracle), "mean_p_click": float(oracle["p_click"].mean() or 0)}
        )

    @dg.asset_check(asset=ad_click_users, blocking=True, description="Schema, unique non-null ids, age range.")
    def ad_click_users_valid(ad_click_users: pl.DataFrame) -> dg.AssetCheckResult:
        return suite_check(ad_click_users, suites.users_suite())

    @dg.asset_check(asset=ad_click_ads, blocking=True, description="Schema, unique non-null ids.")
    def ad_click_ads_valid(ad_click_ads: pl.DataFrame) -> dg.AssetCheckResult:
        return suite_check(ad_click_ads, suites.ads_suite())

    @dg.asset_check(
        asset=ad_click_impressions,
        blocking=True,
        partitions_def=daily,
        additional_ins={"users": dg.AssetIn("ad_click_users"), "ads": dg.AssetIn("ad_click_ads")},
        description="Schema, unique ids, position >= 1, clicked in {0,1}, ts inside the day, known users and ads.",
    )
    def ad_click_impressions_valid(
        context: dg.AssetCheckExecutionContext, ad_click_impressions: pl.DataFrame, users: pl.DataFrame, ads: pl.DataFrame
    ) -> dg.AssetCheckResult:
        start, end = day_bounds(context.partition_key)
        suite = suites.impressions_suite(
            start, end, users["user_id"].unique().to_list(), ads["ad_id"].unique().to_list()
        )
        return suite_check(ad_click_impressions, suite, partition=context.partition_key)

    return [
        ad_click_users,
        ad_click_ads,
        ad_click_impressions,
        ad_click_oracle,
        ad_click_users_valid,
        ad_click_ads_valid,
        ad_click_impressions_valid,
    ]
