"""Video recommendation's drift sensor on a temporary instance: the champion trained on the days that had arrived,
then the world played forward a day at a time (views ingested, the day's homepages served and judged), once
stable and once with a taste shift on the first day after the champion. Both worlds are the same world until that
day, so one champion serves both: each play re-judges every later day, and the sensor reads each day's latest
report."""

from dataclasses import dataclass

import dagster as dg
import pytest

from assets.video_rec import INGEST_JOB, MONITORING_JOB
from orchestration.definitions import build_definitions
from orchestration.main import Runner
from tests.conftest import case_named, small_settings_for

TRAIN_DAYS = 13  # days arrived when the champion is trained; its held-out days (10-12) make the reference
WORLD = dict(days=17, users=1_500, videos=1_500, new_videos_per_day=40, ranker_window="3d", test_window="3d", epochs=6)


@dataclass
class PlayedWorld:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    days: list[str]  # the days monitored after the champion
    alarms: dict[str, bool]
    signals: dict[str, str]


@dataclass
class Champion:
    state: object  # the state folder: MLflow, the landed worlds, the assets
    instance: dg.DagsterInstance


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> Champion:
    state = tmp_path_factory.mktemp("video_drift")
    instance = dg.DagsterInstance.ephemeral()
    case = case_named("video_rec")
    defs = build_definitions(small_settings_for(case, state, **WORLD, arrived_days=TRAIN_DAYS))
    assert Runner(defs, instance).train(case) == "challenger promoted to champion"
    return Champion(state, instance)


def _play(champion: Champion, drift: str) -> PlayedWorld:
    case = case_named("video_rec")
    instance = champion.instance
    defs = build_definitions(small_settings_for(case, champion.state, **WORLD, drift=drift, arrived_days=WORLD["days"]))
    assert defs.resolve_job_def(INGEST_JOB).execute_in_process(instance=instance).success
    runner = Runner(defs, instance)
    days = runner.partitions(MONITORING_JOB)[TRAIN_DAYS:]
    for day in days:
        runner.one_partition(case, MONITORING_JOB, "drift report", day)
    records = instance.fetch_materializations(dg.AssetKey("video_rec_drift_report"), limit=100).records
    # This play's reports: the latest of each day.
    metadata = {r.asset_materialization.partition: r.asset_materialization.metadata
                for r in sorted(records, key=lambda r: r.storage_id)}
    return PlayedWorld(defs, instance, days, {d: m["alarm"].value for d, m in metadata.items()},
                       {d: m["signals"].value for d, m in metadata.items()})


def _tick(world: PlayedWorld, cursor=None):
    sensor = world.defs.resolve_sensor_def("video_rec_drift_sensor")
    return sensor.evaluate_tick(dg.build_sensor_context(instance=world.instance, definitions=world.defs, cursor=cursor))


@pytest.mark.slow
def test_stable_days_request_no_retraining(champion):
    world = _play(champion, "none")
    assert set(world.alarms) == set(world.days)
    assert sum(world.alarms.values()) <= 1, world.signals  # a lone noisy day at most; the policy needs two
    result = _tick(world)
    assert result.run_requests == []
    assert "no retraining needed" in result.skip_message


@pytest.mark.slow
def test_a_taste_shift_requests_exactly_one_run_for_its_episode(champion):
    world = _play(champion, f"taste@{TRAIN_DAYS}")
    first_day = world.days[0]
    assert world.alarms[first_day] is True, world.signals
    assert "topic" in world.signals[first_day]  # what moved: the topics watched
    first = _tick(world)
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_key == f"drift-episode-{first_day}"
    assert request.job_name in (None, "video_rec_training_job")
    assert request.tags["mlsd/trigger"] == "drift"
    assert request.tags["mlsd/promotion_mode"] == "non_inferiority"
    # Ticking again with the cursor the first tick left: the episode has had its run.
    assert _tick(world, cursor=first.cursor).run_requests == []
