"""From a registered challenger to users: gated promotion, the bento, online features and batch predictions."""

from datetime import datetime, timezone
from typing import Literal

import dagster as dg
import polars as pl

from assets.ad_click.raw import GROUP
from assets.ad_click.training import REGISTERED_MODEL, evaluate_predictions, split_rows
from assets.common import frame_metadata, partition_frames
from models.ad_click.features import LABEL, LOOKBACK, day_bounds
from models.promotion import PromotionPolicy
from orchestration.resources import BentoPackager, MlflowTracking, OnlineFeatureStore

PROMOTION_POLICY = PromotionPolicy()
PROMOTION_CHECK = "ad_click_challenger_beats_champion"


class ChampionConfig(dg.Config):
    action: Literal["promote", "rollback"] = "promote"


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

        client = mlflow_tracking.client()
        challenger = str(ad_click_ctr_model["version"][0])
        champion = mlflow_tracking.alias_version(REGISTERED_MODEL, "champion")
        train, test = split_rows(training_data, "train"), split_rows(training_data, "test")
        features = model_input(test)

        def score(version: str) -> dict[str, float]:
            report = evaluate_predictions(train, test, mlflow.pyfunc.load_model(_version_uri(version)).predict(features))
            return {k: report[k] for k in ("nce", "log_loss", "calibration_error")}

        decision = PROMOTION_POLICY.decide(score(challenger), score(champion) if champion else None)
        tags = {**decision.tags(), "compared_with_champion_version": champion or "none", "holdout_rows": str(test.height)}
        for key, value in tags.items():
            client.set_model_version_tag(REGISTERED_MODEL, challenger, key, value)
        # A challenger that is merely no better is a normal outcome of retraining (a warning; the champion stays).
        # One that breaks an absolute limit is a broken model: an error that blocks everything downstream.
        return dg.AssetCheckResult(
            passed=decision.promote,
            severity=dg.AssetCheckSeverity.ERROR if decision.unusable else dg.AssetCheckSeverity.WARN,
            metadata={
                "decision": tags["promotion_decision"],
                "reason": decision.reason,
                "challenger_version": challenger,
                "champion_version": champion or "none",
                **{f"challenger_{k}": v for k, v in decision.challenger.items()},
                **{f"champion_{k}": v for k, v in (decision.champion or {}).items()},
                "summary": decision.reason,
            },
        )

    @dg.asset(group_name=GROUP, kinds={"mlflow"}, deps=["ad_click_model_evaluation"])
    def ad_click_champion(
        context: dg.AssetExecutionContext,
        config: ChampionConfig,
        mlflow_tracking: MlflowTracking,
        ad_click_ctr_model: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The model version users are served: the `champion` alias. Moves only to a challenger the promotion check
        passed (otherwise the champion stays); with action=rollback it returns to the champion it replaced."""
        client = mlflow_tracking.client()
        current = mlflow_tracking.alias_version(REGISTERED_MODEL, "champion")
        if config.action == "promote":
            challenger = str(ad_click_ctr_model["version"][0])
            tags = client.get_model_version(REGISTERED_MODEL, challenger).tags
            target = challenger if tags.get("promotion_decision") == "promote" else current
            if target is None:
                raise dg.Failure(
                    f"no champion to serve: {REGISTERED_MODEL} v{challenger} did not pass the {PROMOTION_CHECK} check "
                    f"of ad_click_model_evaluation ({tags.get('promotion_reason', 'not evaluated')})"
                )
            if target != challenger:
                reason = f"kept v{current}: challenger v{challenger} not promoted ({tags.get('promotion_reason', 'not evaluated')})"
            elif target == current:
                reason = f"v{target} is already the champion"
            else:
                if current:
                    client.set_model_version_tag(REGISTERED_MODEL, target, "previous_champion", current)
                reason = f"promoted v{target} (replaces {'v' + current if current else 'no champion'})"
        else:
            if current is None:
                raise dg.Failure("no champion to roll back")
            previous = client.get_model_version(REGISTERED_MODEL, current).tags.get("previous_champion")
            if not previous:
                raise dg.Failure(f"champion v{current} has no previous champion to roll back to")
            target = previous
            client.set_model_version_tag(REGISTERED_MODEL, current, "rolled_back_at", datetime.now(timezone.utc).isoformat())
            reason = f"rolled back from v{current} to v{target}"
        if target != current:
            client.set_registered_model_alias(REGISTERED_MODEL, "champion", target)
            client.set_model_version_tag(REGISTERED_MODEL, target, "champion_since", datetime.now(timezone.utc).isoformat())
        context.log.info(reason)
        version = client.get_model_version(REGISTERED_MODEL, target)
        return dg.MaterializeResult(
            value=pl.DataFrame({"version": [target], "model_uri": [_version_uri(target)], "run_id": [version.run_id]}),
            metadata={
                "champion_version": target,
                "previous_champion": current or "none",
                "action": config.action,
                "reason": reason,
                "mlflow_model": dg.MetadataValue.url(mlflow_tracking.model_url(REGISTERED_MODEL, target)),
            },
        )

    @dg.asset(group_name=GROUP, kinds={"bentoml", "mlflow"})
    def ad_click_bento_model(packager: BentoPackager, ad_click_champion: pl.DataFrame) -> dg.MaterializeResult:
        """The champion copied from the MLflow registry into the BentoML model store, labelled with its version."""
        version = str(ad_click_champion["version"][0])
        made = packager.run("import-model", "ad_click", "--model-version", version)
        return dg.MaterializeResult(
            value=pl.DataFrame({"model_tag": [made["model_tag"]], "mlflow_version": [version]}),
            metadata={"bentoml_model_tag": made["model_tag"], "mlflow_version": version},
        )

    @dg.asset(group_name=GROUP, kinds={"bentoml"})
    def ad_click_bento(packager: BentoPackager, ad_click_bento_model: pl.DataFrame) -> dg.MaterializeResult:
        """The ranking service packed as a bento with the champion inside: `bentoml serve <tag>` runs it."""
        model_tag = str(ad_click_bento_model["model_tag"][0])
        made = packager.run("build", "ad_click", "--model-tag", model_tag)
        if model_tag not in made["models"]:
            raise dg.Failure(f"bento {made['bento_tag']} packs {made['models']}, not the champion {model_tag}")
        return dg.MaterializeResult(
            value=pl.DataFrame({"bento_tag": [made["bento_tag"]], "model_tag": [model_tag]}),
            metadata={
                "bento_tag": made["bento_tag"],
                "bentoml_model_tag": model_tag,
                "mlflow_version": str(ad_click_bento_model["mlflow_version"][0]),
                "serve": f"./dev.sh serve {made['bento_tag']}",
            },
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
                "store": online_store.url.split("@")[-1],
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

