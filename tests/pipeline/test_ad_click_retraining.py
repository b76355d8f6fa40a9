"""Retraining that starts itself: the drift sensor on a temporary instance, and the real daemon end to end."""

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from orchestration.cases import find
from orchestration.definitions import build_definitions
from orchestration.launcher import PID_TAG
from orchestration.main import Runner
from orchestration.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TRAIN_DAYS = 14  # days that have arrived when the champion is trained; 6 more arrive after it
# The warm-up covers the 7-day look-back: a reference built from days with short history would make every
# later day look drifted.
WORLD = {
    "MLSD_AD_CLICK_DAYS": "20", "MLSD_AD_CLICK_USERS": "2000", "MLSD_AD_CLICK_ADS": "150",
    "MLSD_AD_CLICK_IMPRESSIONS_PER_DAY": "8000", "MLSD_AD_CLICK_WARMUP_DAYS": "7",
    "MLSD_AD_CLICK_VALIDATION_WINDOW": "2d", "MLSD_AD_CLICK_TEST_WINDOW": "2d",
    # The triggers are under test, not the choice of model: one candidate keeps each retrain short, and the paired
    # interval of a booster against a booster narrow enough on 2 test days for the non-inferiority gate.
    "MLSD_AD_CLICK_CANDIDATES": "xgboost",
}


def _environment(state: Path, drift: str | None) -> dict[str, str]:
    env = {**WORLD, "MLSD_STATE_DIR": str(state)}
    if drift:
        env["MLSD_AD_CLICK_DRIFT"] = drift
    return env


def _arrive_and_monitor(env: dict[str, str], instance: dg.DagsterInstance, keys: slice, train: bool = False):
    """Days arrive as one range (as a catch-up backfill would); each is then monitored alone, as production would.
    With `train`, the champion is trained on them instead."""
    case = find("ad_click")
    defs = build_definitions(Settings.from_env(env))
    runner = Runner(defs, instance)
    days = runner.partitions(case.daily_job)[keys]
    runner.every_partition(case, case.daily_job, "day", days, single_run=True)
    if train:
        assert runner.train(case) == "challenger promoted to champion"
    else:
        for key in days:
            runner.one_partition(case, case.monitoring_job, "drift report", key)
    return defs, days


def _terminate_a_launched_run(home: Path, env: dict, bin_dir: Path) -> None:
    """...and Terminate, as the UI sends it from the webserver's process, cancels a started run."""
    subprocess.run([str(bin_dir / "dagster"), "job", "launch", "-j", "ad_click_training_job", "-m",
                    "orchestration.definitions"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(filters=dg.RunsFilter(job_name="ad_click_training_job"), limit=1)[0]
        deadline = time.monotonic() + 120
        while instance.get_run_by_id(run.run_id).status in (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
                                                            dg.DagsterRunStatus.NOT_STARTED):
            assert time.monotonic() < deadline, "the launched run did not start"
            time.sleep(0.5)
        assert instance.run_launcher.terminate(run.run_id)
        while not instance.get_run_by_id(run.run_id).is_finished:
            assert time.monotonic() < deadline + 60, "the terminated run did not end"
            time.sleep(0.5)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED


def _tick(defs, instance, cursor=None):
    sensor = defs.resolve_sensor_def("ad_click_drift_sensor")
    context = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
    return sensor.evaluate_tick(context)


@dataclass
class DriftedWorld:
    home: Path
    env: dict
    defs: dg.Definitions
    keys: list
    stable_tick: object  # the sensor's tick after the same days had been played without drift


@pytest.fixture(scope="module")
def drifted_world(tmp_path_factory) -> DriftedWorld:
    """A champion trained on the first 14 days, then the 6 days after it played twice on a Dagster instance on disk:
    stable (the sensor ticks once), then with covariate drift from day 14, which the sensor test (a temporary
    context over it) and the real daemon use. The worlds are the same until day 14, so one champion serves both;
    each play re-judges every later day, and the sensor reads each day's latest report."""
    tmp_path = tmp_path_factory.mktemp("drifted")
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(ROOT / "orchestration" / "dagster_local.yaml", home / "dagster.yaml")  # as ./dev.sh sets it up
    # A clean environment: in-process MLflow calls of earlier tests leave MLFLOW_* variables behind.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "MLFLOW_REGISTRY", "BENTOML_HOME"))}
    base |= {"DAGSTER_HOME": str(home), "BENTOML_HOME": str(tmp_path / "state" / "bentoml")}
    stable = {**base, **_environment(tmp_path / "state", None)}
    env = {**base, **_environment(tmp_path / "state", f"covariate@{TRAIN_DAYS}")}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        _arrive_and_monitor(stable, instance, slice(None, TRAIN_DAYS), train=True)
        stable_defs, _ = _arrive_and_monitor(stable, instance, slice(TRAIN_DAYS, None))
        stable_tick = _tick(stable_defs, instance)
        defs, _ = _arrive_and_monitor(env, instance, slice(TRAIN_DAYS, None))
        keys = Runner(defs, instance).partitions(find("ad_click").daily_job)
    return DriftedWorld(home, env, defs, keys, stable_tick)


@pytest.mark.slow
def test_stable_data_requests_no_retraining(drifted_world):
    result = drifted_world.stable_tick
    assert result.run_requests == []
    assert "no retraining needed" in result.skip_message


@pytest.mark.slow
def test_covariate_drift_requests_exactly_one_run_per_episode(drifted_world):
    keys = drifted_world.keys
    with dg.DagsterInstance.from_config(str(drifted_world.home)) as instance:
        reports = instance.fetch_materializations(dg.AssetKey("ad_click_drift_report"), limit=100).records
        # The drifted play's reports: the latest of each day.
        alarms = {r.asset_materialization.partition: r.asset_materialization.metadata["alarm"].value
                  for r in sorted(reports, key=lambda r: r.storage_id)}
        assert alarms[keys[TRAIN_DAYS]] is True  # detected on the first drifted day
        first = _tick(drifted_world.defs, instance)
        assert len(first.run_requests) == 1
        request = first.run_requests[0]
        assert request.run_key == f"drift-episode-{keys[TRAIN_DAYS]}"
        assert request.tags["mlsd/trigger"] == "drift"
        assert request.tags["mlsd/promotion_mode"] == "non_inferiority"
        # The next tick, with the cursor the first one left, stays quiet: one run per episode.
        second = _tick(drifted_world.defs, instance, cursor=first.cursor)
        assert second.run_requests == []


@pytest.mark.slow
def test_the_daemon_runs_the_sensor_and_the_retraining_succeeds(drifted_world, tmp_path):
    """The real dagster-daemon with the project's definitions: drift in, a retraining run out, a new model in MLflow;
    then a launched run, terminated as the UI terminates it, ends canceled."""
    home, env = drifted_world.home, drifted_world.env
    settings = Settings.from_env(env)
    bin_dir = Path(sys.executable).parent
    log = open(tmp_path / "daemon.log", "w")
    daemon = subprocess.Popen([str(bin_dir / "dagster-daemon"), "run", "-m", "orchestration.definitions"],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # Turned on while the daemon starts, as a user would in the UI: its sensor loop finds it running.
        subprocess.run([str(bin_dir / "dagster"), "sensor", "start", "ad_click_drift_sensor", "-m",
                        "orchestration.definitions"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
        deadline = time.monotonic() + 600
        run = None
        while time.monotonic() < deadline:
            with dg.DagsterInstance.from_config(str(home)) as instance:
                runs = instance.get_runs(filters=dg.RunsFilter(tags={"mlsd/trigger": "drift"}))
                if runs and runs[0].status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE):
                    run = runs[0]
                    break
            time.sleep(3)
        assert run is not None, (tmp_path / "daemon.log").read_text()[-3000:]
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["mlsd/drift_episode"] == f"2026-01-{TRAIN_DAYS + 1:02d}"  # the first drifted day
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
        challenger = client.get_model_version_by_alias("ad_click_ctr", "challenger")
        # A drift-triggered retrain is judged for non-inferiority: retrained on the drifted days, the fresh challenger
        # is not worse than the stale champion beyond the margin, so the champion moves and the bento is rebuilt.
        assert str(challenger.version) == "2", challenger.tags
        assert challenger.tags["promotion_mode"] == "non_inferiority"
        assert challenger.tags["promotion_decision"] == "promote", challenger.tags.get("promotion_reason")
        with dg.DagsterInstance.from_config(str(home)) as instance:
            bento = instance.get_latest_materialization_event(dg.AssetKey("ad_click_bento")).asset_materialization
        assert bento.metadata["mlflow_version"].value == "2"
        # The daemon's runs start in workers forked from the preloaded process (orchestration/launcher.py)...
        assert PID_TAG in run.tags
        _terminate_a_launched_run(home, env, bin_dir)
    finally:
        os.killpg(daemon.pid, signal.SIGINT)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        log.close()
