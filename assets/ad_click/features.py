"""Point-in-time features of each day's impressions, from the previous seven days of events."""


import dagster as dg
import polars as pl

from assets.ad_click.raw import GROUP
from assets.common import frame_metadata, partition_frames, suite_check
from expectations import ad_click as suites
from models.ad_click.features import FEATURE_COLUMNS, LABEL, LOOKBACK, day_bounds, point_in_time_features


def build_feature_assets(daily: dg.DailyPartitionsDefinition) -> list:
    lookback = dg.TimeWindowPartitionMapping(
        start_offset=-LOOKBACK.days, end_offset=0, allow_nonexistent_upstream_partitions=True
    )

    @dg.asset(
        group_name=GROUP,
        kinds={"polars", "parquet"},
        partitions_def=daily,
        ins={
            "impressions": dg.AssetIn("ad_click_impressions", partition_mapping=lookback),
            "users": dg.AssetIn("ad_click_users"),
            "ads": dg.AssetIn("ad_click_ads"),
        },
    )
    def ad_click_features(
        context: dg.AssetExecutionContext,
        impressions,
        users: pl.DataFrame,
        ads: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """Features of one day's impressions, each computed only from events strictly before it."""
        start, _ = day_bounds(context.partition_key)
        days = partition_frames(impressions)
        history = pl.concat(days, how="vertical")
        features = point_in_time_features(history, users, ads, targets_from=start)
        context.log.info(f"{features.height} rows from {history.height} events over {len(days)} days")
        return dg.MaterializeResult(
            value=features,
            metadata={
                **frame_metadata(features),
                "history_days": len(days),
                "history_rows": history.height,
                "features": len(FEATURE_COLUMNS),
                "ctr": float(features[LABEL].mean() or 0.0),
                "rows_without_history": int(features["history_asof_ts"].null_count()),
            },
        )

    @dg.asset_check(
        asset=ad_click_features,
        blocking=True,
        partitions_def=daily,
        description="Feature schema, nulls only where allowed, counts >= 0 and rates in [0, 1].",
    )
    def ad_click_features_valid(context: dg.AssetCheckExecutionContext, ad_click_features: pl.DataFrame):
        return suite_check(ad_click_features, suites.features_suite(), partition=context.partition_key)

    @dg.asset_check(
        asset=ad_click_features,
        blocking=True,
        partitions_def=daily,
        description="History strictly before each impression; no feature correlates with the label above the limit.",
    )
    def ad_click_features_no_leakage(context: dg.AssetCheckExecutionContext, ad_click_features: pl.DataFrame):
        return suite_check(ad_click_features, suites.leakage_suite(), partition=context.partition_key)

    return [ad_click_features, ad_click_features_valid, ad_click_features_no_leakage]
