"""Post text vectors, point-in-time features of every impression, and the time split every model shares."""

import dagster as dg
import polars as pl

from assets.common import frame_markdown, frame_metadata, suite_check, time_split_result
from assets.news_feed.raw import GROUP
from assets.news_feed.resources import NewsFeedTimeSplit
from assets.resources import TextEmbeddings
from expectations import news_feed as suites
from models.news_feed.data import HEADS
from models.news_feed.features import FEATURES
from models.text_embeddings import aligned_vectors

raw_ins = {table: dg.AssetIn(f"news_feed_{table}") for table in
           ("users", "friendships", "posts", "impressions", "reactions", "dwell")}


def build_feature_assets() -> list:
    @dg.asset(group_name=GROUP, kinds={"pytorch", "parquet"}, ins={"posts": raw_ins["posts"]})
    def news_feed_post_vectors(context: dg.AssetExecutionContext, text_embeddings: TextEmbeddings,
                               posts: pl.DataFrame) -> dg.MaterializeResult:
        """Each post's text as a MiniLM sentence vector (the shared text-embedding kit: cached by content, so only new
        texts are encoded): what the text-similarity feature compares with the posts a user engaged with."""
        import time

        from models.text_embeddings import DIM, MODEL_NAME

        started = time.perf_counter()
        vectors = text_embeddings.embed(posts["text"].to_list(), progress=context.log.info)
        frame = pl.DataFrame({"post_id": posts["post_id"], "vector": vectors},
                             schema={"post_id": pl.String, "vector": pl.Array(pl.Float32, DIM)})
        return dg.MaterializeResult(value=frame, metadata={
            **frame_metadata(frame), "model": MODEL_NAME, "dimensions": DIM,
            "seconds": round(time.perf_counter() - started, 2), "posts_without_text": int(posts["text"].is_null().sum())})

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"},
              ins={**raw_ins, "post_vectors": dg.AssetIn("news_feed_post_vectors")})
    def news_feed_features(
        context: dg.AssetExecutionContext, news_feed_time_split: NewsFeedTimeSplit, users: pl.DataFrame,
        friendships: pl.DataFrame, posts: pl.DataFrame, impressions: pl.DataFrame, reactions: pl.DataFrame,
        dwell: pl.DataFrame, post_vectors: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """Every impression with its labels (each reaction within the label window, dwell, skip) and its features:
        post, user, user-author affinity and context, each counted from events strictly before the impression."""
        import time

        from models.news_feed.data import labelled_impressions
        from models.news_feed.features import point_in_time_features

        split = news_feed_time_split
        started = time.perf_counter()
        rows = labelled_impressions(impressions, reactions, dwell, split.label_delay, split.skip_seconds)
        features = point_in_time_features(rows, impressions, reactions, dwell, users, friendships, posts,
                                          aligned_vectors(posts["post_id"], post_vectors), split.skip_seconds)
        seconds = time.perf_counter() - started
        rates = {f"{head}_rate": float(features[head].mean() or 0.0) for head in HEADS}
        context.log.info(f"{features.height} impressions featurized in {seconds:.1f}s; "
                         + ", ".join(f"{k} {v:.4f}" for k, v in rates.items()))
        return dg.MaterializeResult(value=features, metadata={
            **frame_metadata(features), "features": len(FEATURES), **rates, "seconds": round(seconds, 2),
            "sessions": features["session_id"].n_unique(),
            "impressions_without_dwell": int(features["dwell_missing"].sum()),
            "rows_without_user_history": int((features["user_impressions"] == 0).sum()),
            "null_shares": dg.MetadataValue.md(frame_markdown(pl.DataFrame(
                {"feature": list(FEATURES), "null_share": [features[f].null_count() / max(features.height, 1) for f in FEATURES]}))),
        })

    @dg.asset_check(asset=news_feed_features, blocking=True,
                    additional_ins={t: raw_ins[t] for t in ("impressions", "reactions", "dwell", "posts")},
                    description="Every growing count (the user's, the post's, the user-author affinity over all time "
                    "and the last seven days, the topic's) equals its recount from the raw tables strictly before the "
                    "impression, on a sample: a like count taken at the end of the data would carry the label.")
    def news_feed_features_as_of_impression(
        news_feed_time_split: NewsFeedTimeSplit, news_feed_features: pl.DataFrame, impressions: pl.DataFrame,
        reactions: pl.DataFrame, dwell: pl.DataFrame, posts: pl.DataFrame,
    ) -> dg.AssetCheckResult:
        from models.news_feed.features import point_in_time_audit

        audit = point_in_time_audit(news_feed_features, impressions, reactions, dwell, posts, news_feed_time_split.skip_seconds)
        return suite_check(audit, suites.point_in_time_suite(), audit=dg.MetadataValue.md(frame_markdown(audit)))

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"}, ins={"features": dg.AssetIn("news_feed_features")})
    def news_feed_training_data(
        context: dg.AssetExecutionContext, news_feed_time_split: NewsFeedTimeSplit, features: pl.DataFrame
    ) -> dg.MaterializeResult:
        """The labelled impressions split by time into train, validation and test windows sized by the data; rows
        whose labels were not yet known at the next cutoff are left out."""
        return time_split_result(context, lambda: news_feed_time_split.cutoffs(features), features, {"engaged_rate": "engaged"})

    @dg.asset_check(asset=news_feed_training_data, blocking=True,
                    additional_ins={"features": dg.AssetIn("news_feed_features")},
                    description="Train, validation and test windows hold impressions and engagement, are disjoint and "
                    "in time order.")
    def news_feed_time_split_valid(news_feed_time_split: NewsFeedTimeSplit, news_feed_training_data: pl.DataFrame,
                                   features: pl.DataFrame) -> dg.AssetCheckResult:
        windows = news_feed_time_split.cutoffs(features).windows(features)
        return suite_check(windows, suites.split_suite())

    @dg.asset_check(asset=news_feed_training_data, blocking=True,
                    description="The labels, dwell, the session and what only the evaluation reads are not model inputs.")
    def news_feed_model_inputs_valid(news_feed_training_data: pl.DataFrame) -> dg.AssetCheckResult:
        return suite_check(pl.DataFrame({"feature": list(FEATURES)}), suites.model_inputs_suite(), inputs=len(FEATURES))

    return [news_feed_post_vectors, news_feed_features, news_feed_features_as_of_impression, news_feed_training_data,
            news_feed_time_split_valid, news_feed_model_inputs_valid]
