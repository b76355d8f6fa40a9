"""From a registered challenger to users: gated promotion, the bento, online features and batch predictions."""

import dagster as dg
import polars as pl

from assets.ad_click.raw import GROUP
from assets.ad_click.training import REGISTERED_MODEL
from assets.case import BentoSpec
from assets.common import frame_metadata, partition_frames
from assets.release import PromotionSettings, Scores, build_release_assets, gate
from assets.resources import MlflowTracking, OnlineFeatureStore, redact
from models.ad_click.features import LABEL, LOOKBACK, day_bounds
from models.promotion import PromotionPolicy
from models.windows import split_rows

PROMOTION_POLICY = PromotionPolicy()
PROMOTION_CHECK = "ad_click_challenger_beats_champion"
BENTO = BentoSpec(
    bentofile="bentos/ad_click/bentofile.yaml",
    packages=("mlflow", "xgboost-cpu", "torch", "polars", "pandas", "numpy", "pyarrow", "pydantic", "redis", "scikit-learn"),
)


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
        description="Challenger vs champion on the same test impressions by the promotion policy, with a paired "
        "bootstrap interval of the NCE difference; only a pass moves the champion.",
    )
    def challenger_beats_champion(
        context: dg.AssetCheckExecutionContext,
        mlflow_tracking: MlflowTracking,
        promotion: PromotionSettings,
        ad_click_model_evaluation: pl.DataFrame,
        ad_click_ctr_model: pl.DataFrame,
        training_data: pl.DataFrame,
    ) -> dg.AssetCheckResult:
        from models.ad_click.model import model_input
        from models.ad_click.train import evaluate_predictions
        from models.metrics import nce_units

        train, test = split_rows(training_data, "train"), split_rows(training_data, "test")
        features, background = model_input(test), float(train[LABEL].mean())

        def score(version: str) -> Scores:
            p = mlflow_tracking.load_pyfunc(_version_uri(version)).predict(features)
            report = evaluate_predictions(train, test, p)
            metrics = {k: report[k] for k in ("nce", "log_loss", "calibration_error")}
            return Scores(metrics, nce_units(test[LABEL].to_numpy(), p, background))

        challenger = str(ad_click_ctr_model["version"][0])
        return gate(context, GROUP, mlflow_tracking, promotion, REGISTERED_MODEL, challenger, PROMOTION_POLICY, score,
                    unit="impression")

    release = build_release_assets(
        GROUP, REGISTERED_MODEL, "ad_click_ctr_model", "ad_click_model_evaluation", PROMOTION_CHECK, BENTO,
        "The ranking service (online features + the champion click model)",
        more_challengers=("ad_click_fine_tuned_model",),
    )

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
        from models.ad_click.model import model_input

        version = str(ad_click_champion["version"][0])
        model = mlflow_tracking.load_pyfunc(_version_uri(version))
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

    return [challenger_beats_champion, *release, ad_click_online_features, ad_click_batch_predictions]
