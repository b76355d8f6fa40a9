"""From a registered challenger to users: the gated promotion, the bento, and the online features it reads."""

import dagster as dg
import numpy as np
import polars as pl

from assets.case import BentoSpec
from assets.event_recommendation.raw import GROUP
from assets.event_recommendation.training import REGISTERED_MODEL, load_version
from assets.release import PromotionSettings, Scores, build_release_assets, gate
from assets.resources import MlflowTracking, OnlineFeatureStore
from models.promotion import PromotionPolicy
from models.windows import split_rows

PROMOTION_CHECK = "event_recommendation_challenger_beats_champion"
# mAP@10 decides (higher is better). A challenger whose mAP@10 is no better than random order is broken (the limit is
# set at check time from the test users).
PROMOTION_POLICY = PromotionPolicy(metric="map_at_10", higher_is_better=True, min_relative_improvement=0.005,
                                   guards={}, absolute_limits={})
PROMOTED_METRICS = ("map_at_10", "map_at_3", "map", "precision_at_10")
BENTO = BentoSpec(
    bentofile="bentos/event_recommendation/bentofile.yaml",
    packages=("mlflow", "polars", "pandas", "numpy", "pyarrow", "pydantic", "torch", "xgboost-cpu", "scikit-learn", "redis"),
)


def version_scores(mlflow_tracking: MlflowTracking, version: str, test: pl.DataFrame) -> Scores:
    """A registered version on the test days: its ranking metrics and each user's AP@10 (the gate's units)."""
    from models.event_recommendation.evaluation import evaluate
    from models.event_recommendation.features import feature_matrix

    ranked = evaluate(test, load_version(mlflow_tracking, version).predict(feature_matrix(test)), None)
    return Scores({k: ranked.report[k] for k in PROMOTED_METRICS}, ranked.ap_at_10, ranked.users)


def build_serving_assets() -> list:
    @dg.asset_check(
        name=PROMOTION_CHECK,
        asset="event_recommendation_evaluation",
        blocking=True,
        additional_ins={"challenger": dg.AssetIn("event_recommendation_challenger"),
                        "training": dg.AssetIn("event_recommendation_training_data")},
        description="Challenger vs champion on the same test users by the promotion policy, with a paired bootstrap "
        "interval of the difference in AP@10 per user; only a pass moves the champion.",
    )
    def event_recommendation_challenger_beats_champion(
        context: dg.AssetCheckExecutionContext, mlflow_tracking: MlflowTracking, promotion: PromotionSettings,
        event_recommendation_evaluation: pl.DataFrame, challenger: pl.DataFrame, training: pl.DataFrame,
    ) -> dg.AssetCheckResult:
        version = str(challenger["version"][0])
        served = str(challenger["kind"][0])
        reports = {row["approach"]: row for row in event_recommendation_evaluation.iter_rows(named=True)}

        def score(candidate: str) -> Scores:
            if candidate == version:  # the evaluation asset scored it on the test days already
                row = reports[served]
                return Scores({k: row[k] for k in PROMOTED_METRICS}, np.asarray(row["unit_ap_at_10"]), row["unit_ids"])
            return version_scores(mlflow_tracking, candidate, split_rows(training, "test"))

        limits = {"map_at_10": reports["random"]["map_at_10"]}
        return gate(context, GROUP, mlflow_tracking, promotion, REGISTERED_MODEL, version, PROMOTION_POLICY, score,
                    unit="user", absolute_limits=limits)

    release = build_release_assets(
        GROUP, REGISTERED_MODEL, "event_recommendation_challenger", "event_recommendation_evaluation", PROMOTION_CHECK,
        BENTO, "The event recommendation service (event filter, online features, the champion ranker)",
        more_challengers=("event_recommendation_fine_tuned_model",),
    )
    @dg.asset(group_name=GROUP, kinds={"polars", "redis"}, ins={
        "users": dg.AssetIn("event_recommendation_users"), "events": dg.AssetIn("event_recommendation_events"),
        "friendships": dg.AssetIn("event_recommendation_friendships"),
        "interactions": dg.AssetIn("event_recommendation_interactions"),
        "description_vectors": dg.AssetIn("event_recommendation_description_vectors")})
    def event_recommendation_online_features(
        context: dg.AssetExecutionContext, online_store: OnlineFeatureStore, users: pl.DataFrame, events: pl.DataFrame,
        friendships: pl.DataFrame, interactions: pl.DataFrame, description_vectors: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The service's online features as of the end of the data: every user's history counts and the live events
        with their counts so far, published to the online store as one snapshot (readers switch at once)."""
        from datetime import timedelta

        from models.event_recommendation.online import FEATURE_VERSION, NAMESPACE, snapshot_records
        from models.text_embeddings import aligned_vectors

        as_of = interactions["ts"].max().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        records = snapshot_records(users, events, friendships, interactions,
                                   aligned_vectors(events["event_id"], description_vectors), as_of)
        metadata = online_store.publish_records(context, NAMESPACE, records, FEATURE_VERSION, as_of)
        return dg.MaterializeResult(metadata={**metadata, "live_events": metadata.get("event_records", 0)})

    return [event_recommendation_challenger_beats_champion, *release, event_recommendation_online_features]
