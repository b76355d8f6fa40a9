"""From a registered challenger to members: the gated promotion, the bento, and the daily batch of suggestions the
service answers from."""

from datetime import datetime, timedelta, timezone

import dagster as dg
import polars as pl

from assets.case import BentoSpec
from assets.common import frame_markdown
from assets.people_you_may_know.raw import GROUP, raw_ins
from assets.people_you_may_know.resources import PeopleYouMayKnowBatch, PeopleYouMayKnowSplit
from assets.people_you_may_know.training import REGISTERED_MODEL, load_recommender, pymk_data
from assets.release import PromotionSettings, Scores, build_release_assets, gate
from assets.resources import MlflowTracking, OnlineFeatureStore
from models.promotion import PromotionPolicy

PROMOTION_CHECK = "people_you_may_know_challenger_beats_champion"
SUGGESTIONS = "people_you_may_know_suggestions"
NAMESPACE = "people_you_may_know"
RECORDS_VERSION = "suggestions-v1"
# mAP@10 decides (higher is better); a challenger no better than counting mutual friends is broken (the limit is set
# at check time from the test snapshot).
PROMOTION_POLICY = PromotionPolicy(metric="map_at_10", higher_is_better=True, min_relative_improvement=0.005,
                                   guards={}, absolute_limits={})
PROMOTED_METRICS = ("map_at_10", "roc_auc", "recall_at_10")
BENTO = BentoSpec(
    bentofile="bentos/people_you_may_know/bentofile.yaml",
    packages=("mlflow", "polars", "pandas", "numpy", "pyarrow", "pydantic", "scipy", "xgboost-cpu", "torch",
              "torch-geometric", "redis"),
)


def build_serving_assets(daily: dg.DailyPartitionsDefinition) -> list:
    @dg.asset_check(
        name=PROMOTION_CHECK,
        asset="people_you_may_know_evaluation",
        blocking=True,
        additional_ins={"model": dg.AssetIn("people_you_may_know_model"), **raw_ins},
        description="Challenger vs champion on the same members of the test snapshot by the promotion policy, with a "
        "paired bootstrap interval of the difference in each member's AP@10; only a pass moves the champion.",
    )
    def people_you_may_know_challenger_beats_champion(
        context: dg.AssetCheckExecutionContext, mlflow_tracking: MlflowTracking, promotion: PromotionSettings,
        people_you_may_know_split: PeopleYouMayKnowSplit, people_you_may_know_evaluation: pl.DataFrame,
        model: pl.DataFrame, users: pl.DataFrame, connections: pl.DataFrame, requests: pl.DataFrame,
        profile_views: pl.DataFrame,
    ) -> dg.AssetCheckResult:
        import numpy as np

        from models.people_you_may_know.training import served_units

        challenger, kind = str(model["version"][0]), str(model["kind"][0])
        reports = {row["approach"]: row for row in people_you_may_know_evaluation.iter_rows(named=True)}

        def score(version: str) -> Scores:
            if version == challenger:  # the evaluation asset judged it on the test snapshot already
                row = reports[kind]
                return Scores({k: row[k] for k in PROMOTED_METRICS}, np.asarray(row["unit_average_precision"]),
                              row["unit_ids"])
            data = pymk_data(context, people_you_may_know_split, users, connections, requests, profile_views)
            figures, units, ids = served_units(load_recommender(mlflow_tracking, version), data, users, connections,
                                               requests, profile_views)
            return Scores({k: figures[k] for k in PROMOTED_METRICS}, units, ids.tolist())

        limits = {"map_at_10": reports["mutual_friends"]["map_at_10"]}
        return gate(context, GROUP, mlflow_tracking, promotion, REGISTERED_MODEL, challenger, PROMOTION_POLICY, score,
                    unit="member", absolute_limits=limits)

    release = build_release_assets(
        GROUP, REGISTERED_MODEL, "people_you_may_know_model", "people_you_may_know_evaluation", PROMOTION_CHECK, BENTO,
        "The people-you-may-know service (each member's precomputed suggestions from the online store; new members "
        "from shared school, company or city)",
    )

    @dg.asset(name=SUGGESTIONS, group_name=GROUP, kinds={"polars", "redis"}, partitions_def=daily,
              ins={"people_you_may_know_champion": dg.AssetIn(), **raw_ins})
    def people_you_may_know_suggestions(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, online_store: OnlineFeatureStore,
        people_you_may_know_batch: PeopleYouMayKnowBatch, people_you_may_know_champion: pl.DataFrame,
        users: pl.DataFrame, connections: pl.DataFrame, requests: pl.DataFrame, profile_views: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The book's batch: as of the end of the partition's day, every active member's top people from friends of
        friends scored by the champion (members without connections: people sharing their school, company or city),
        written to the online store as one snapshot the service switches to at once; per attribute value its
        best-connected members, for newcomers the batch has not seen."""
        import time

        from models.people_you_may_know.recommend import FRIENDS_OF_FRIENDS, active_members, group_records, recommend

        day = context.partition_key
        as_of = datetime.fromisoformat(day).replace(tzinfo=timezone.utc) + timedelta(days=1)
        if connections.is_empty() or as_of - timedelta(days=1) > connections["ts"].max():
            raise dg.Failure(f"{day} has not arrived: the connections end at {connections['ts'].max()}")
        version = str(people_you_may_know_champion["version"][0])
        recommender = load_recommender(mlflow_tracking, version)
        started = time.perf_counter()
        snapshot = recommender.snapshot(users, connections, requests, profile_views, as_of)
        members = active_members(snapshot, connections, requests, profile_views, users, people_you_may_know_batch.active_days)
        snapshot_seconds = time.perf_counter() - started
        suggestions, stats = recommend(recommender, snapshot, members, people_you_may_know_batch.suggestions,
                                       progress=context.log.info)
        stats.add("snapshot", snapshot_seconds)

        def records():
            for user_id, rows in suggestions.group_by("user_id", maintain_order=True):
                items = rows.sort("rank")
                sources = items["source"].unique().to_list()
                yield "suggestions", str(user_id[0]), {
                    "items": [[r["suggested_id"], round(r["score"], 6), r["mutual_friends"], r["shared_attributes"],
                               r["source"]] for r in items.iter_rows(named=True)],
                    "source": FRIENDS_OF_FRIENDS if FRIENDS_OF_FRIENDS in sources else sources[0]}
            yield from group_records(snapshot, recommender.vocabulary)
            # The standardizer that keyed the groups: the service reads newcomers' spellings with it, whichever
            # champion the bento was built around.
            yield "meta", "model", {"version": version, "kind": recommender.model.kind, "members": len(members),
                                    "standardizer": recommender.standardizer.to_json()}

        store = online_store.open(NAMESPACE)
        try:
            current = store.current()
        finally:
            store.close()
        published: dict = {}
        if current is not None and datetime.fromisoformat(current.as_of) > as_of:
            context.log.info(f"the online store serves a newer batch (as of {current.as_of}): {day}'s is kept here only")
        else:
            published = online_store.publish_records(context, NAMESPACE, records(), RECORDS_VERSION, as_of)
        by_source = suggestions.group_by("source").agg(members=pl.col("user_id").n_unique(), suggestions=pl.len())
        context.log.info(f"{len(members)} active members: {stats.candidate_pairs} pairs scored; "
                         + ", ".join(f"{k} {v:.1f}s" for k, v in stats.seconds.items()) + f"; process peak {stats.peak_rss_mb:.0f} MB")
        return dg.MaterializeResult(
            value=suggestions,
            metadata={"as_of": as_of.isoformat(), "model_version": version, "model_kind": recommender.model.kind,
                      "active_members": len(members), "members_without_friends": stats.cold_members,
                      "candidate_pairs": stats.candidate_pairs, "rows": suggestions.height,
                      **{f"seconds_{k.replace(' ', '_')}": round(v, 2) for k, v in stats.seconds.items()},
                      # the whole process's (the main command runs every case in one): bench/pymk_batch.py has the batch's own
                      "process_peak_rss_mb": round(stats.peak_rss_mb), "by_source": dg.MetadataValue.md(frame_markdown(by_source)),
                      "published": bool(published), **{f"store_{k}": v for k, v in published.items()}},
        )

    return [people_you_may_know_challenger_beats_champion, *release, people_you_may_know_suggestions]
