"""From a registered challenger to users: gated promotion, the bento and batch recommendations."""

from dataclasses import replace

import dagster as dg
import polars as pl

from assets.common import frame_metadata
from assets.promotion import ChampionConfig, build_bento, decision_check_result, move_champion, package_model, record_decision
from assets.video_rec.raw import GROUP, VideoRecTimeSplit
from assets.video_rec.training import REGISTERED_MODEL, VideoRecTraining, load_recommender
from models.promotion import PromotionPolicy
from orchestration.resources import BentoPackager, MlflowTracking

PROMOTION_CHECK = "video_rec_challenger_beats_champion"
# nDCG@10 of the two-stage chain decides; recall@100 (what candidate generation can reach) must not fall; a
# challenger that cannot beat the popularity baseline is broken (its limit is set at check time).
PROMOTION_POLICY = PromotionPolicy(
    metric="ndcg_at_10", min_relative_improvement=0.005, guards={"recall_at_100": 0.01}, absolute_limits={},
    higher_is_better=True,
)
PROMOTED_METRICS = ("ndcg_at_10", "map_at_10", "recall_at_10", "recall_at_100")


def build_serving_assets() -> list:
    @dg.asset_check(
        name=PROMOTION_CHECK,
        asset="video_rec_evaluation",
        blocking=True,
        additional_ins={
            "video_rec_recommender": dg.AssetIn("video_rec_recommender"),
            "users": dg.AssetIn("video_rec_users"),
            "videos": dg.AssetIn("video_rec_videos"),
            "labeled": dg.AssetIn("video_rec_labeled_interactions"),
        },
        description="Challenger vs champion on the same test users by the promotion policy; only a pass moves the champion.",
    )
    def video_rec_challenger_beats_champion(
        mlflow_tracking: MlflowTracking,
        video_time_split: VideoRecTimeSplit,
        video_training: VideoRecTraining,
        video_rec_evaluation: pl.DataFrame,
        video_rec_recommender: pl.DataFrame,
        users: pl.DataFrame,
        videos: pl.DataFrame,
        labeled: pl.DataFrame,
    ) -> dg.AssetCheckResult:
        from models.video_rec.train import evaluate, state_at

        challenger = str(video_rec_recommender["version"][0])
        champion = mlflow_tracking.alias_version(REGISTERED_MODEL, "champion")
        reports = {row["approach"]: row for row in video_rec_evaluation.iter_rows(named=True)}
        scores = {k: reports["two_stage"][k] for k in PROMOTED_METRICS}
        champion_scores = None
        if champion and champion != challenger:
            cutoffs = video_time_split.cutoffs(labeled)
            at_test = state_at(load_recommender(mlflow_tracking, champion), labeled, users, videos, cutoffs.test_start)
            result = evaluate(at_test, labeled, users, videos, cutoffs, None, max_users=video_training.evaluation_users)
            champion_scores = {k: result.reports["two_stage"][k] for k in PROMOTED_METRICS}
        elif champion == challenger:
            champion_scores = dict(scores)
        policy = replace(PROMOTION_POLICY, absolute_limits={"ndcg_at_10": reports["popularity"]["ndcg_at_10"]})
        decision = policy.decide(scores, champion_scores)
        tags = {**decision.tags(), "compared_with_champion_version": champion or "none",
                "test_users": str(int(reports["two_stage"]["users"]))}
        record_decision(mlflow_tracking, REGISTERED_MODEL, challenger, tags)
        return decision_check_result(decision, challenger, champion)

    @dg.asset(group_name=GROUP, kinds={"mlflow"}, deps=["video_rec_evaluation"])
    def video_rec_champion(
        context: dg.AssetExecutionContext,
        config: ChampionConfig,
        mlflow_tracking: MlflowTracking,
        video_rec_recommender: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The recommender version users are served: the `champion` alias. Moves only to a challenger the promotion
        check passed; with action=rollback it returns to the champion it replaced."""
        return move_champion(
            context, mlflow_tracking, REGISTERED_MODEL, str(video_rec_recommender["version"][0]), config.action, PROMOTION_CHECK
        )

    @dg.asset(group_name=GROUP, kinds={"bentoml", "mlflow"})
    def video_rec_bento_model(packager: BentoPackager, video_rec_champion: pl.DataFrame) -> dg.MaterializeResult:
        """The champion recommender copied from the MLflow registry into the BentoML model store."""
        return package_model(packager, "video_rec", str(video_rec_champion["version"][0]))

    @dg.asset(group_name=GROUP, kinds={"bentoml"})
    def video_rec_bento(packager: BentoPackager, video_rec_bento_model: pl.DataFrame) -> dg.MaterializeResult:
        """The homepage recommendation service with the champion inside: `bentoml serve <tag>` runs it."""
        return build_bento(packager, "video_rec", video_rec_bento_model)

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"}, ins={"users": dg.AssetIn("video_rec_users")})
    def video_rec_batch_recommendations(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        video_training: VideoRecTraining,
        video_rec_champion: pl.DataFrame,
        users: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """Every user's top-K homepage (user_id, rank, video_id, score) from the champion, through the whole chain:
        what a precomputed homepage cache would hold."""
        version = str(video_rec_champion["version"][0])
        recommender = load_recommender(mlflow_tracking, version)
        user_ids = users["user_id"].to_list()
        parts = []
        for begin in range(0, len(user_ids), 500):
            parts.append(recommender.recommend(user_ids[begin : begin + 500], video_training.top_k))
            context.log.info(f"recommended for {min(begin + 500, len(user_ids))}/{len(user_ids)} users")
        recommendations = pl.concat(parts).with_columns(model_version=pl.lit(version))
        strategies = recommendations.group_by("strategy").agg(users=pl.col("user_id").n_unique())
        return dg.MaterializeResult(
            value=recommendations,
            metadata={
                **frame_metadata(recommendations),
                "users": recommendations["user_id"].n_unique(),
                "k": video_training.top_k,
                "model_version": version,
                "distinct_videos": recommendations["video_id"].n_unique(),
                **{f"users_{row['strategy']}": row["users"] for row in strategies.iter_rows(named=True)},
            },
        )

    return [
        video_rec_challenger_beats_champion, video_rec_champion, video_rec_bento_model, video_rec_bento,
        video_rec_batch_recommendations,
    ]
