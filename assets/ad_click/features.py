"""Point-in-time features of each day's impressions, from the previous seven days of events."""

from datetime import date

import dagster as dg
import polars as pl

from assets.ad_click.raw import GROUP
from assets.ad_click.resources import AdClickSource
from assets.common import (
    frame_metadata,
    partition_frames,
    partition_label,
    per_partition_result,
    span,
    split_by_time,
    suite_check,
    time_partitions,
)
from expectations import ad_click as suites
from models.ad_click.features import FEATURE_COLUMNS, LABEL, LOOKBACK, point_in_time_features


def build_feature_assets(daily: dg.DailyPartitionsDefinition) -> list:
    lookback = dg.TimeWindowPartitionMapping(
        start_offset=-LOOKBACK.days, end_offset=0, allow_nonexistent_upstream_partitions=True
    )

    @dg.asset(
        group_name=GROUP,
        kinds={"polars", "parquet"},
        partitions_def=daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        ins={
            "impressions": dg.AssetIn("ad_click_impressions", partition_mapping=lookback),
            "users": dg.AssetIn("ad_click_users"),
            "ads": dg.AssetIn("ad_click_ads"),
        },
    )
    def ad_click_features(
        context: dg.AssetExecutionContext,
        ad_click_source: AdClickSource,
        impressions,
        users: pl.DataFrame,
        ads: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """Features of each day's impressions, each computed only from events strictly before it.

        A run over many days (a single-run backfill) computes them in one pass over the days and their look-back.
        """
        windows = time_partitions(context, daily)
        first, _ = span(windows)
        loaded = impressions if isinstance(impressions, dict) else {next(iter(windows)): impressions}
        history = pl.concat(partition_frames(loaded), how="vertical")
        features = point_in_time_features(history, users, ads, targets_from=first,
                                          click_window=ad_click_source.click_window)
        context.log.info(f"{features.height} rows of {len(windows)} day(s) from {history.height} events over {len(loaded)} days")
        loaded_days = {date.fromisoformat(key): frame.height for key, frame in loaded.items()}

        def metadata_of(key: str, frame: pl.DataFrame) -> dict:
            day = date.fromisoformat(key)
            looked_back = [d for d in loaded_days if day - LOOKBACK <= d <= day]
            return {
                **frame_metadata(frame),
                "history_days": len(looked_back),
                "history_rows": sum(loaded_days[d] for d in looked_back),
                "features": len(FEATURE_COLUMNS),
                "ctr": float(frame[LABEL].mean() or 0.0),
                "rows_without_history": int(frame["history_asof_ts"].null_count()),
            }

        return per_partition_result(context, split_by_time(features, windows), metadata_of)

    @dg.asset_check(
        asset=ad_click_features,
        blocking=True,
        partitions_def=daily,
        description="Feature schema, nulls only where allowed, counts >= 0 and rates in [0, 1].",
    )
    def ad_click_features_valid(context: dg.AssetCheckExecutionContext, ad_click_features):
        frame = pl.concat(partition_frames(ad_click_features), how="vertical")
        return suite_check(frame, suites.features_suite(), partition=partition_label(context.partition_keys))

    @dg.asset_check(
        asset=ad_click_features,
        blocking=True,
        partitions_def=daily,
        description="History strictly before each impression; no feature correlates with the label above the limit.",
    )
    def ad_click_features_no_leakage(context: dg.AssetCheckExecutionContext, ad_click_features):
        frame = pl.concat(partition_frames(ad_click_features), how="vertical")
        return suite_check(frame, suites.leakage_suite(), partition=partition_label(context.partition_keys))

    return [ad_click_features, ad_click_features_valid, ad_click_features_no_leakage]
