"""From a registered challenger to users: gated promotion, the bento and batch recommendations."""

import dagster as dg
import numpy as np
import polars as pl

from assets.case import BentoSpec
from assets.common import frame_metadata
from assets.release import PromotionSettings, Scores, build_release_assets, gate
from assets.resources import MlflowTracking
from assets.video_rec.raw import GROUP
from assets.video_rec.resources import VideoRecTimeSplit, VideoRecTraining
from assets.video_rec.training import REGISTERED_MODEL, load_recommender
from models.promotion import PromotionPolicy

PROMOTION_CHECK = "video_rec_challenger_beats_champion"
# nDCG@10 of the two-stage chain decides; recall@100 (what candidate generation can reach) must not fall; a
# challenger that cannot beat the popularity baseline is broken (its limit is set at check time).
PROMOTION_POLICY = PromotionPolicy(
    metric="ndcg_at_10", min_relative_improvement=0.005, guards={"recall_at_100": 0.01}, absolute_limits={},
    higher_is_better=True,
)
PROMOTED_METRICS = ("ndcg_at_10", "map_at_10", "recall_at_10", "recall_at_100")
BENTO = BentoSpec(
    bentofile="bentos/video_rec/bentofile.yaml",
    packages=("mlflow", "xgboost-cpu", "polars", "pandas", "numpy", "pyarrow", "pydantic", "torch", "faiss-cpu", "scipy"),
)


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
        description="Challenger vs champion on the same test users by the promotion policy, with a paired bootstrap "
        "interval of the nDCG@10 difference; only a pass moves the champion.",
    )
    def video_rec_challenger_beats_champion(
        context: dg.AssetCheckExecutionContext,
        mlflow_tracking: MlflowTracking,
        promotion: PromotionSettings,
        video_rec_time_split: VideoRecTimeSplit,
        video_rec_training: VideoRecTraining,
        video_rec_evaluation: pl.DataFrame,
        video_rec_recommender: pl.DataFrame,
        users: pl.DataFrame,
        videos: pl.DataFrame,
        labeled: pl.DataFrame,
    ) -> dg.AssetCheckResult:
        from models.video_rec.train import evaluate, state_at

        challenger = str(video_rec_recommender["version"][0])
        reports = {row["approach"]: row for row in video_rec_evaluation.iter_rows(named=True)}

        def score(version: str) -> Scores:
            if version == challenger:  # the evaluation asset scored it on the test users already
                chain = reports["two_stage"]
                return Scores({k: chain[k] for k in PROMOTED_METRICS}, np.asarray(chain["unit_ndcg_at_10"]),
                              chain["unit_ids"])
            cutoffs = video_rec_time_split.cutoffs(labeled)
            at_test = state_at(load_recommender(mlflow_tracking, version), labeled, users, videos, cutoffs.test_start)
            result = evaluate(at_test, labeled, users, videos, cutoffs, None, max_users=video_rec_training.evaluation_users,
                              baselines=("popularity",))
            per_user = result.per_user_ndcg["two_stage"]
            return Scores({k: result.reports["two_stage"][k] for k in PROMOTED_METRICS},
                          np.asarray(list(per_user.values())), list(per_user))

        limits = {"ndcg_at_10": reports["popularity"]["ndcg_at_10"]}
        return gate(context, GROUP, mlflow_tracking, promotion, REGISTERED_MODEL, challenger, PROMOTION_POLICY, score,
                    unit="user", absolute_limits=limits)

    release = build_release_assets(
        GROUP, REGISTERED_MODEL, "video_rec_recommender", "video_rec_evaluation", PROMOTION_CHECK, BENTO,
        "The homepage recommendation service",
    )

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"}, ins={"users": dg.AssetIn("video_rec_users")})
    def video_rec_batch_recommendations(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        video_rec_training: VideoRecTraining,
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
            parts.append(recommender.recommend(user_ids[begin : begin + 500], video_rec_training.top_k))
            context.log.info(f"recommended for {min(begin + 500, len(user_ids))}/{len(user_ids)} users")
        recommendations = pl.concat(parts).with_columns(model_version=pl.lit(version))
        strategies = recommendations.group_by("strategy").agg(users=pl.col("user_id").n_unique())
        return dg.MaterializeResult(
            value=recommendations,
            metadata={
                **frame_metadata(recommendations),
                "users": recommendations["user_id"].n_unique(),
                "k": video_rec_training.top_k,
                "model_version": version,
                "distinct_videos": recommendations["video_id"].n_unique(),
                **{f"users_{row['strategy']}": row["users"] for row in strategies.iter_rows(named=True)},
            },
        )

    return [video_rec_challenger_beats_champion, *release, video_rec_batch_recommendations]
