"""Video recommendation (book ch. 6): two-tower candidate generation with ANN retrieval, an XGBoost ranker and
re-ranking rules, judged by precision, recall, mAP, nDCG, diversity and coverage against popularity."""

import dagster as dg

from assets.video_rec.raw import GROUP, build_raw_assets
from assets.video_rec.serving import build_serving_assets
from assets.video_rec.training import build_training_assets

TRAINING_JOB = "video_rec_training_job"
ROLLBACK_JOB = "video_rec_rollback_job"


def build_definitions() -> dg.Definitions:
    definitions = [*build_raw_assets(), *build_training_assets(), *build_serving_assets()]
    group = dg.AssetSelection.groups(GROUP)
    jobs = [
        dg.define_asset_job(
            TRAINING_JOB,
            selection=group,
            description="Ingest and validate, train two-tower, index, ranker; register and evaluate the challenger; "
            "promote it if it beats the champion; package the bento; write batch recommendations.",
        ),
        dg.define_asset_job(
            ROLLBACK_JOB,
            selection=dg.AssetSelection.assets("video_rec_champion", "video_rec_bento_model", "video_rec_bento"),
            config={"ops": {"video_rec_champion": {"config": {"action": "rollback"}}}},
            description="Move the champion alias back to the version it replaced and rebuild the bento.",
        ),
    ]
    return dg.Definitions(
        assets=[d for d in definitions if not isinstance(d, dg.AssetChecksDefinition)],
        asset_checks=[d for d in definitions if isinstance(d, dg.AssetChecksDefinition)],
        jobs=jobs,
        schedules=[
            dg.ScheduleDefinition(
                name="video_rec_weekly_retrain", job_name=TRAINING_JOB, cron_schedule="0 4 * * 1",
                default_status=dg.DefaultScheduleStatus.STOPPED,
                description="Retrain the recommender weekly: tastes drift and new videos need their ids learned.",
            )
        ],
    )
