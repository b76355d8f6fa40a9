"""From a registered challenger to users: gated promotion, the bento, online features and batch predictions."""

import dagster as dg
import polars as pl

from assets.ad_click.raw import GROUP
from assets.ad_click.training import REGISTERED_MODEL, evaluate_predictions, split_rows
from assets.common import frame_metadata, partition_frames
from assets.promotion import (
    ChampionConfig,
    build_bento,
    decision_check_result,
    move_champion,
    package_model,
    record_decision,
)
from models.ad_click.features import LABEL, LOOKBACK, day_bounds
from models.promotion import PromotionPolicy
from orchestration.resources import BentoPackager, MlflowTracking, OnlineFeatureStore
from orchestration.settings import redact

PROMOTION_POLICY = PromotionPolicy()
PROMOTION_CHECK = "ad_click_challenger_beats_champion"


def _version_uri(version: str) -> str:
    return f"models:/{REGISTERED_MODEL}/{version}"


def build_serving_assets(daily: dg.DailyPartitionsDefinition) -> list:
    @dg.asset_check(
        name=PROMOTION_CHECK,
        asset="ad_click_model_evaluation",
        blocking=True,
        additional_ins={
            "training_data": dg.AssetIn("ad_click_training_data"),
            "ad_click_ctr_model": dg.AssetIn("ad_click_ctr_model"),
        },
        description="Challenger vs champion on the same test days by the promotion policy; only a pass moves the champion.",
    )
    def challenger_beats_champion(
        mlflow_tracking: MlflowTracking,
        ad_click_model_evaluation: pl.DataFrame,
        ad_click_ctr_model: pl.DataFrame,
        training_data: pl.DataFrame,
    ) -> dg.AssetCheckResult:
        import mlflow

        from models.ad_click.model import model_input

        mlflow_tracking.client()  # points the fluent API at the project's registry
        challenger = str(ad_click_ctr_model["version"][0])
        champion = mlflow_tracking.alias_version(REGISTERED_MODEL, "champion")
        train, test = split_rows(training_data, "train"), split_rows(training_data, "test")
        features = model_input(test)

        def score(version: str) -> dict[str, float]:
            report = evaluate_predictions(train, test, mlflow.pyfunc.load_model(_version_uri(version)).predict(features))
            return {k: report[k] for k in ("nce", "log_loss", "calibration_error")}

        decision = PROMOTION_POLICY.decide(score(challenger), score(champion) if champion else None)
        tags = {**decision.tags(), "compared_with_champion_version": champion or "none", "holdout_rows": str(test.height)}
        record_decision(mlflow_tracking, REGISTERED_MODEL, challenger, tags)
        return decision_check_result(decision, challenger, champion)

    @dg.asset(group_name=GROUP, kinds={"mlflow"}, deps=["ad_click_model_evaluation"])
    def ad_click_champion(
        context: dg.AssetExecutionContext,
        config: ChampionConfig,
        mlflow_tracking: MlflowTracking,
        ad_click_ctr_model: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The model version users are served: the `champion` alias. Moves only to a challenger the promotion check
        passed (otherwise the champion stays); with action=rollback it returns to the champion it replaced."""
        return move_champion(
            context, mlflow_tracking, REGISTERED_MODEL, str(ad_click_ctr_model["version"][0]), config.action, PROMOTION_CHECK
        )

    @dg.asset(group_name=GROUP, kinds={"bentoml", "mlflow"})
    def ad_click_bento_model(packager: BentoPackager, ad_click_champion: pl.DataFrame) -> dg.MaterializeResult:
        """The champion copied from the MLflow registry into the BentoML model store, labelled with its version."""
        return package_model(packager, "ad_click", str(ad_click_champion["version"][0]))

    @dg.asset(group_name=GROUP, kinds={"bentoml"})
    def ad_click_bento(packager: BentoPackager, ad_click_bento_model: pl.DataFrame) -> dg.MaterializeResult:
        """The ranking service packed as a bento with the champion inside: `bentoml serve <tag>` runs it."""
        return build_bento(packager, "ad_click", ad_click_bento_model)

    @dg.asset(
        group_name=GROUP,
        kinds={"polars", "redis"},
        ins={
            "impressions": dg.AssetIn("ad_click_impressions"),
            "users": dg.AssetIn("ad_click_users"),
            "ads": dg.AssetIn("ad_click_ads"),
        },
    )
    def ad_click_online_features(
        context: dg.AssetExecutionContext, online_store: OnlineFeatureStore, impressions, users: pl.DataFrame, ads: pl.DataFrame
    ) -> dg.MaterializeResult:
        """Latest aggregates per user, ad, advertiser and crosses, published to the online store for serving."""
        from models.ad_click.features import online_snapshot
        from models.ad_click.serving import NAMESPACE, publish_snapshot

        days = partition_frames(impressions)
        history = pl.concat(days[-(LOOKBACK.days + 1) :], how="vertical")
        as_of = day_bounds(str(history["ts"].max().date()))[1]
        frames = online_snapshot(history, users, ads, as_of)
        store = online_store.open(NAMESPACE)
        try:
            info = publish_snapshot(store, frames, as_of)
        finally:
            store.close()
        context.log.info(f"published {info.records} records as of {as_of.isoformat()} (snapshot {info.snapshot_id})")
        return dg.MaterializeResult(
            metadata={
                "records": info.records,
                **{f"{entity}_records": frame.height for entity, frame in frames.items()},
                "as_of": info.as_of,
                "feature_version": info.feature_version,
                "snapshot_id": info.snapshot_id,
                "store": redact(online_store.url),
            }
        )

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"}, partitions_def=daily)
    def ad_click_batch_predictions(
        mlflow_tracking: MlflowTracking, ad_click_features: pl.DataFrame, ad_click_champion: pl.DataFrame
    ) -> dg.MaterializeResult:
        """The champion's click probabilities for a day's candidate set, scored offline (the batch path)."""
        import mlflow

        from models.ad_click.model import model_input

        version = str(ad_click_champion["version"][0])
        mlflow_tracking.client()  # points the fluent API at the project's registry
        model = mlflow.pyfunc.load_model(_version_uri(version))
        p = model.predict(model_input(ad_click_features))
        predictions = ad_click_features.select("impression_id", "ts", "user_id", "ad_id").with_columns(
            p_click=pl.Series(p, dtype=pl.Float64), model_version=pl.lit(version)
        )
        observed = float(ad_click_features[LABEL].mean() or 0.0)
        return dg.MaterializeResult(
            value=predictions,
            metadata={
                **frame_metadata(predictions),
                "model_version": version,
                "mean_p_click": float(predictions["p_click"].mean()),
                "observed_ctr": observed,
            },
        )

    return [
        challenger_beats_champion,
        ad_click_champion,
        ad_click_bento_model,
        ad_click_bento,
        ad_click_online_features,
        ad_click_batch_predictions,
    ]

