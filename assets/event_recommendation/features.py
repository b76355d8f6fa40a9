"""Description vectors, point-in-time features of every impression, and the time split every model shares."""

import dagster as dg
import polars as pl

from assets.common import frame_markdown, frame_metadata, suite_check, time_split_result
from assets.event_recommendation.raw import GROUP
from assets.event_recommendation.resources import EventRecommendationTimeSplit
from assets.resources import TextEmbeddings
from expectations import event_recommendation as suites
from models.event_recommendation.data import LABEL
from models.event_recommendation.features import FEATURES
from models.text_embeddings import aligned_vectors

raw_ins = {
    "users": dg.AssetIn("event_recommendation_users"),
    "events": dg.AssetIn("event_recommendation_events"),
    "friendships": dg.AssetIn("event_recommendation_friendships"),
    "interactions": dg.AssetIn("event_recommendation_interactions"),
}


def build_feature_assets() -> list:
    @dg.asset(group_name=GROUP, kinds={"pytorch", "parquet"}, ins={"events": raw_ins["events"]})
    def event_recommendation_description_vectors(
        context: dg.AssetExecutionContext, text_embeddings: TextEmbeddings, events: pl.DataFrame
    ) -> dg.MaterializeResult:
        """Each event's description as a MiniLM sentence vector (the shared text-embedding kit: cached by content, so
        only new descriptions are encoded): what the description-similarity feature compares."""
        import time

        from models.text_embeddings import DIM, MODEL_NAME

        started = time.perf_counter()
        vectors = text_embeddings.embed(events["description"].to_list(), progress=context.log.info)
        frame = pl.DataFrame({"event_id": events["event_id"], "vector": vectors},
                             schema={"event_id": pl.String, "vector": pl.Array(pl.Float32, DIM)})
        return dg.MaterializeResult(value=frame, metadata={
            **frame_metadata(frame), "model": MODEL_NAME, "dimensions": DIM, "seconds": round(time.perf_counter() - started, 2),
            "events_without_description": int(events["description"].is_null().sum())})

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"},
              ins={**raw_ins, "description_vectors": dg.AssetIn("event_recommendation_description_vectors")})
    def event_recommendation_features(
        context: dg.AssetExecutionContext,
        event_recommendation_time_split: EventRecommendationTimeSplit,
        users: pl.DataFrame,
        events: pl.DataFrame,
        friendships: pl.DataFrame,
        interactions: pl.DataFrame,
        description_vectors: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """Every impression with its label (a registration within the label window) and its features: location,
        time, social, user, price, category and description similarity, each counted from events strictly before
        the impression."""
        import time

        from models.event_recommendation.data import labelled_impressions
        from models.event_recommendation.features import point_in_time_features

        started = time.perf_counter()
        rows = labelled_impressions(interactions, event_recommendation_time_split.label_delay)
        features = point_in_time_features(rows, interactions, users, events, friendships, aligned_vectors(events["event_id"], description_vectors))
        seconds = time.perf_counter() - started
        context.log.info(f"{features.height} impressions featurized in {seconds:.1f}s ({features[LABEL].mean():.4f} registered)")
        return dg.MaterializeResult(value=features, metadata={
            **frame_metadata(features), "features": len(FEATURES), "registration_rate": float(features[LABEL].mean() or 0.0),
            "seconds": round(seconds, 2),
            "rows_without_user_history": int((features["user_registrations"] == 0).sum()),
            "null_shares": dg.MetadataValue.md(frame_markdown(pl.DataFrame(
                {"feature": list(FEATURES), "null_share": [features[f].null_count() / max(features.height, 1) for f in FEATURES]}))),
        })

    @dg.asset_check(asset=event_recommendation_features, blocking=True,
                    additional_ins={"interactions": raw_ins["interactions"], "friendships": raw_ins["friendships"],
                                    "events": raw_ins["events"]},
                    description="Every growing count (registrations and impressions so far, friends registered and "
                    "inviting, the user's past registrations and their share in the event's category, the host's "
                    "past events) equals its recount from the raw events strictly before "
                    "the impression, on a sample: a count taken at the end of the sale would carry the label.")
    def event_recommendation_features_as_of_impression(
        event_recommendation_features: pl.DataFrame, interactions: pl.DataFrame, friendships: pl.DataFrame,
        events: pl.DataFrame,
    ) -> dg.AssetCheckResult:
        from models.event_recommendation.features import point_in_time_audit

        audit = point_in_time_audit(event_recommendation_features, interactions, friendships, events)
        return suite_check(audit, suites.point_in_time_suite(), audit=dg.MetadataValue.md(frame_markdown(audit)))

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"}, ins={"features": dg.AssetIn("event_recommendation_features")})
    def event_recommendation_training_data(
        context: dg.AssetExecutionContext, event_recommendation_time_split: EventRecommendationTimeSplit, features: pl.DataFrame
    ) -> dg.MaterializeResult:
        """The labelled impressions split by time into train, validation and test windows sized by the data; rows
        whose label was not yet known at the next cutoff are left out."""
        return time_split_result(context, lambda: event_recommendation_time_split.cutoffs(features), features, {"registration_rate": LABEL})

    @dg.asset_check(asset=event_recommendation_training_data, blocking=True,
                    additional_ins={"features": dg.AssetIn("event_recommendation_features")},
                    description="Train, validation and test windows hold impressions and registrations, are disjoint "
                    "and in time order.")
    def event_recommendation_time_split_valid(
        event_recommendation_time_split: EventRecommendationTimeSplit, event_recommendation_training_data: pl.DataFrame,
        features: pl.DataFrame,
    ) -> dg.AssetCheckResult:
        windows = event_recommendation_time_split.cutoffs(features).windows(features)
        return suite_check(windows, suites.split_suite())

    @dg.asset_check(asset=event_recommendation_training_data, blocking=True,
                    description="The label, its time and what only the evaluation reads are not model inputs.")
    def event_recommendation_model_inputs_valid(event_recommendation_training_data: pl.DataFrame) -> dg.AssetCheckResult:
        return suite_check(pl.DataFrame({"feature": list(FEATURES)}), suites.model_inputs_suite(), inputs=len(FEATURES))

    return [event_recommendation_description_vectors, event_recommendation_features,
            event_recommendation_features_as_of_impression, event_recommendation_training_data,
            event_recommendation_time_split_valid, event_recommendation_model_inputs_valid]
