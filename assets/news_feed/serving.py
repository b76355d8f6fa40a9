"""From a registered challenger to users: the gated promotion, the bento, and the online features it reads."""

import dagster as dg
import numpy as np
import polars as pl

from assets.case import BentoSpec
from assets.news_feed.raw import GROUP
from assets.news_feed.resources import NewsFeedObjective, NewsFeedRetrieval, NewsFeedTimeSplit
from assets.news_feed.training import REGISTERED_MODEL, feed_of, load_version
from assets.release import PromotionSettings, Scores, build_release_assets, gate
from assets.resources import MlflowTracking, OnlineFeatureStore
from models.promotion import PromotionPolicy
from models.windows import split_rows

PROMOTION_CHECK = "news_feed_challenger_beats_champion"
# The feed's nDCG@10 decides (higher is better). A challenger whose feed is no better than random order is broken
# (the limit is set at check time from the test sessions).
PROMOTION_POLICY = PromotionPolicy(metric="ndcg_at_10", higher_is_better=True, min_relative_improvement=0.005,
                                   guards={}, absolute_limits={})
PROMOTED_METRICS = ("ndcg_at_10", "hide_or_block_in_top_3")
BENTO = BentoSpec(
    bentofile="bentos/news_feed/bentofile.yaml",
    packages=("mlflow", "polars", "pandas", "numpy", "pyarrow", "pydantic", "torch", "xgboost-cpu", "scikit-learn", "redis"),
)


def version_scores(mlflow_tracking: MlflowTracking, version: str, rows: pl.DataFrame, weights: dict[str, float]) -> Scores:
    """A registered version's feeds on `rows`: its metrics and each session's nDCG@10 (the gate's units)."""
    feeds = feed_of(load_version(mlflow_tracking, version), rows, weights)
    return Scores({k: feeds.report[k] for k in PROMOTED_METRICS}, feeds.ndcg, feeds.sessions)


def build_serving_assets() -> list:
    @dg.asset_check(
        name=PROMOTION_CHECK,
        asset="news_feed_evaluation",
        blocking=True,
        additional_ins={"challenger": dg.AssetIn("news_feed_challenger"), "training": dg.AssetIn("news_feed_training_data")},
        description="Challenger vs champion on the same test sessions by the promotion policy, with a paired bootstrap "
        "interval of the difference in each session's feed nDCG@10; only a pass moves the champion.",
    )
    def news_feed_challenger_beats_champion(
        context: dg.AssetCheckExecutionContext, mlflow_tracking: MlflowTracking, promotion: PromotionSettings,
        news_feed_objective: NewsFeedObjective, news_feed_evaluation: pl.DataFrame, challenger: pl.DataFrame,
        training: pl.DataFrame,
    ) -> dg.AssetCheckResult:
        version = str(challenger["version"][0])
        served = str(challenger["kind"][0])
        reports = {row["approach"]: row for row in news_feed_evaluation.iter_rows(named=True)}

        def score(candidate: str) -> Scores:
            if candidate == version:  # the evaluation asset judged its feeds on the test days already
                row = reports[served]
                return Scores({k: row[k] for k in PROMOTED_METRICS}, np.asarray(row["unit_ndcg_at_10"]), row["unit_ids"])
            return version_scores(mlflow_tracking, candidate, split_rows(training, "test"), news_feed_objective.resolved)

        limits = {"ndcg_at_10": reports["random"]["ndcg_at_10"]}
        return gate(context, GROUP, mlflow_tracking, promotion, REGISTERED_MODEL, version, PROMOTION_POLICY, score,
                    unit="session", absolute_limits=limits)

    release = build_release_assets(
        GROUP, REGISTERED_MODEL, "news_feed_challenger", "news_feed_evaluation", PROMOTION_CHECK, BENTO,
        "The news feed service (retrieval of the user's ties' unseen posts, the champion's heads on online features, "
        "the weighted score, re-ranking)",
        more_challengers=("news_feed_fine_tuned_model",),
    )

    @dg.asset(group_name=GROUP, kinds={"polars", "redis"}, ins={
        "users": dg.AssetIn("news_feed_users"), "friendships": dg.AssetIn("news_feed_friendships"),
        "posts": dg.AssetIn("news_feed_posts"), "impressions": dg.AssetIn("news_feed_impressions"),
        "reactions": dg.AssetIn("news_feed_reactions"), "dwell": dg.AssetIn("news_feed_dwell"),
        "post_vectors": dg.AssetIn("news_feed_post_vectors")})
    def news_feed_online_features(
        context: dg.AssetExecutionContext, online_store: OnlineFeatureStore, news_feed_time_split: NewsFeedTimeSplit,
        news_feed_retrieval: NewsFeedRetrieval,
        users: pl.DataFrame, friendships: pl.DataFrame, posts: pl.DataFrame, impressions: pl.DataFrame,
        reactions: pl.DataFrame, dwell: pl.DataFrame, post_vectors: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The service's online features as of the end of the data: every user's counts, ties and affinities, the
        recent posts with their counts so far, each author's recent posts and the platform's newest, published to the
        online store as one snapshot (readers switch at once)."""
        from datetime import timedelta

        from models.news_feed.online import FEATURE_VERSION, NAMESPACE, snapshot_records
        from models.text_embeddings import aligned_vectors

        as_of = impressions["ts"].max().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        records = snapshot_records(users, friendships, posts, impressions, reactions, dwell,
                                   aligned_vectors(posts["post_id"], post_vectors), as_of,
                                   news_feed_retrieval.candidate_days, news_feed_time_split.skip_seconds)
        return dg.MaterializeResult(metadata=online_store.publish_records(context, NAMESPACE, records, FEATURE_VERSION, as_of))

    return [news_feed_challenger_beats_champion, *release, news_feed_online_features]
