"""People you may know (book ch. 11): suggest people a member may want to connect with. Friends of friends are the
candidates; an edge-formation model (GraphSAGE over the graph, or XGBoost over pair features, whichever ranks the
validation snapshot better) scores them, trained on snapshots (the graph at t, the connections made by t + 1); judged
by ROC-AUC and mAP@10 against mutual friends and Adamic-Adar; suggestions are computed in a daily batch and served
from the online store."""

import dagster as dg

from assets.case import CaseStudy, GatedTraining, LatestPartition, Platform
from assets.common import case_definitions, case_job
from assets.people_you_may_know.monitoring import (
    REPORT,
    build_monitoring_assets,
    build_people_you_may_know_drift_sensor,
)
from assets.people_you_may_know.raw import GROUP, build_raw_assets
from assets.people_you_may_know.resources import (
    PeopleYouMayKnowBatch,
    PeopleYouMayKnowSource,
    PeopleYouMayKnowSplit,
    PeopleYouMayKnowTraining,
)
from assets.people_you_may_know.serving import BENTO, PROMOTION_CHECK, SUGGESTIONS, build_serving_assets
from assets.people_you_may_know.settings import PeopleYouMayKnowSettings
from assets.people_you_may_know.training import REGISTERED_MODEL, build_training_assets
from assets.release import gated_schedule, rollback_job

TRAINING_JOB = "people_you_may_know_training_job"
ROLLBACK_JOB = "people_you_may_know_rollback_job"
BATCH_JOB = "people_you_may_know_batch_job"
MONITORING_JOB = "people_you_may_know_monitoring_job"


def build_source(platform: Platform, settings: PeopleYouMayKnowSettings) -> PeopleYouMayKnowSource:
    return PeopleYouMayKnowSource(
        raw_dir=settings.raw_dir, raw_dir_setting="MLSD_PEOPLE_YOU_MAY_KNOW_RAW_DIR",
        landing_dir=platform.landing_dir(GROUP), start_date=settings.start_date.isoformat(), days=settings.days,
        seed=settings.seed, users=settings.users, drift_kind=settings.simulated_drift.kind,
        drift_day=settings.simulated_drift.day,
    )


def build_definitions(platform: Platform, settings: PeopleYouMayKnowSettings) -> dg.Definitions:
    source = build_source(platform, settings)
    daily = source.daily_partitions("connections")
    definitions = [*build_raw_assets(), *build_training_assets(), *build_serving_assets(daily),
                   *build_monitoring_assets(daily)]
    jobs = [
        case_job(
            GROUP, TRAINING_JOB,
            selection=dg.AssetSelection.groups(GROUP) - dg.AssetSelection.assets(REPORT, SUGGESTIONS),
            description="Ingest and validate members, connections, requests and views; standardize attributes; cut "
            "the snapshots; train XGBoost and GraphSAGE on edge formation; register the better on validation as the "
            "challenger; evaluate it against mutual friends, Adamic-Adar and the oracle; promote it if it beats the "
            "champion (the gate); package the bento; describe the champion's held-out days for monitoring. The "
            "weekly schedule and the drift sensor launch it too.",
        ),
        case_job(
            GROUP, BATCH_JOB, selection=dg.AssetSelection.assets(SUGGESTIONS), partitions_def=daily,
            description="The daily batch: every active member's top suggestions as of the end of the day, scored by "
            "the champion and published to the online store the service reads. The daily schedule launches it.",
        ),
        case_job(
            GROUP, MONITORING_JOB, selection=dg.AssetSelection.assets(REPORT), partitions_def=daily,
            description="Judge a day of connections and requests against the champion's held-out days: drift of "
            "who connects and asks, volumes, acceptance, and the share of new connections the champion had suggested. "
            "Its alarms drive people_you_may_know_drift_sensor.",
        ),
        rollback_job(GROUP),
    ]
    return case_definitions(
        definitions,
        jobs=jobs,
        sensors=[build_people_you_may_know_drift_sensor(TRAINING_JOB)],
        schedules=[
            gated_schedule("people_you_may_know_weekly_retrain", TRAINING_JOB, "0 3 * * 1",
                           "Retrain weekly on the newest snapshots: the graph changes slowly, so a week's new "
                           "connections are enough to learn from."),
            dg.build_schedule_from_partitioned_job(
                jobs[1], hour_of_day=2, name="people_you_may_know_daily_suggestions",
                default_status=dg.DefaultScheduleStatus.STOPPED,
                description="Recompute every active member's suggestions each night from the day's graph (the book: "
                "the graph changes slowly, so suggestions are computed in batch)."),
        ],
        resources={
            "people_you_may_know_source": source,
            "people_you_may_know_split": PeopleYouMayKnowSplit(label_days=settings.label_days,
                                                               candidate_cap=settings.candidate_cap),
            "people_you_may_know_training": PeopleYouMayKnowTraining(dim=settings.dim, epochs=settings.epochs),
            "people_you_may_know_batch": PeopleYouMayKnowBatch(suggestions=settings.suggestions,
                                                               active_days=settings.active_days),
        },
    )


CASE = CaseStudy(
    name=GROUP,
    chapter=11,
    title="People you may know",
    predicts="the people a member will connect with next",
    metric="mAP@10 (higher is better)",
    serving="batch",
    settings_type=PeopleYouMayKnowSettings,
    small=dict(days=35, users=900, label_days=7, epochs=6),
    build_definitions=build_definitions,
    registered_model=REGISTERED_MODEL,
    evaluation_asset="people_you_may_know_evaluation",
    training_job=TRAINING_JOB,
    rollback_job=ROLLBACK_JOB,
    promotion_check=PROMOTION_CHECK,
    run_steps=(
        GatedTraining(TRAINING_JOB, PROMOTION_CHECK, "ingest, validate, standardize attributes, snapshots, XGBoost, "
                      "GraphSAGE, registry, evaluation, promotion, bento, monitoring reference"),
        LatestPartition(BATCH_JOB, "batch suggestions to the online store"),
        LatestPartition(MONITORING_JOB, "drift report"),
    ),
    monitoring_job=MONITORING_JOB,
    bento=BENTO,
    example_requests={"/pymk": {"user_id": "a-new-member", "k": 5, "school": "University of Northfield",
                                "city": "Northfield"}},
    serving_env=lambda platform: {"MLSD_ONLINE_STORE_URL": platform.online_store_url},
)
