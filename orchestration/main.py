"""The main job and its siblings, run in-process on the project's Dagster instance ($DAGSTER_HOME).

    python -m orchestration.main [run]   every day partition (as a daily schedule would), then training,
                                         promotion, packaging and batch scoring of the last day
    python -m orchestration.main train   training, promotion and packaging only (the days must exist)
    python -m orchestration.main rollback    champion back to the version it replaced; bento rebuilt
    python -m orchestration.main live --train-days 21
                                         production played forward: train on the first days, then the rest
                                         arrive one by one and each is monitored for drift
Runs are recorded in the instance, so `./dev.sh ui` shows them afterwards.
"""

from __future__ import annotations

import argparse
import sys
import time

import dagster as dg

from orchestration.definitions import build_definitions
from orchestration.settings import Settings

# Progress lines stay readable (failures are reported by _fail); every event is still stored for the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _failed_checks(result) -> dict[str, str]:
    return {
        e.asset_check_key.name: (e.metadata["summary"].value if "summary" in e.metadata else "failed")
        for e in result.get_asset_check_evaluations()
        if not e.passed
    }


def _execute(job: dg.JobDefinition, instance: dg.DagsterInstance, **kwargs):
    config = {**QUIET, **kwargs.pop("run_config", {})}
    return job.execute_in_process(instance=instance, raise_on_error=False, run_config=config, **kwargs)


def _step_failures(result) -> list:
    return [e for e in result.all_events if e.is_step_failure]


def _fail(what: str, result, failed: dict[str, str]):
    # A server that is down fails resource set-up before any step: that error is the one to show.
    setup = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RESOURCE_INIT_FAILURE]
    errors = [str(e.event_specific_data.error.message).strip() for e in [*setup, *_step_failures(result)]]
    raise SystemExit(f"{what} failed (run {result.run_id}): " + "; ".join([*failed.values(), *errors]))


def run_daily(defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[str] | None = None) -> list[str]:
    """Ingest, validate and featurize the given days (all by default), in order."""
    from assets.ad_click import DAILY_JOB

    daily = defs.resolve_job_def(DAILY_JOB)
    keys = keys or daily.partitions_def.get_partition_keys()
    started = time.monotonic()
    for i, key in enumerate(keys, 1):
        result = _execute(daily, instance, partition_key=key)
        print(f"[ad_click] day {i}/{len(keys)} {key}: {'ok' if result.success else 'FAILED'} ({time.monotonic() - started:.0f}s)", flush=True)
        failed = _failed_checks(result)
        if not result.success or failed:
            _fail(f"ad_click daily run for {key}", result, failed)
    return keys


def _run_gated_training(defs: dg.Definitions, instance: dg.DagsterInstance, job: str, promotion_check: str,
                        case: str) -> str:
    """Runs a training job; returns the promotion decision. A challenger that loses is not an error."""
    result = _execute(defs.resolve_job_def(job), instance)
    failed = _failed_checks(result)
    decision = failed.pop(promotion_check, None)
    if failed or _step_failures(result) or not result.success:
        _fail(f"{case} training run", result, {promotion_check: decision, **failed} if decision else failed)
    return f"champion kept: {decision}" if decision else "challenger promoted to champion"


def run_training(defs: dg.Definitions, instance: dg.DagsterInstance) -> str:
    from assets.ad_click import TRAINING_JOB
    from assets.ad_click.serving import PROMOTION_CHECK

    print("[ad_click] training: time split, baseline, XGBoost, registry, promotion, bento, online features...", flush=True)
    return _run_gated_training(defs, instance, TRAINING_JOB, PROMOTION_CHECK, "ad_click")


def run_ad_click(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.AssetMaterialization:
    from assets.ad_click import BATCH_SCORING_JOB

    keys = run_daily(defs, instance)
    decision = run_training(defs, instance)
    print(f"[ad_click] promotion: {decision}", flush=True)
    if instance.get_latest_materialization_event(dg.AssetKey("ad_click_champion")) is not None:
        result = _execute(defs.resolve_job_def(BATCH_SCORING_JOB), instance, partition_key=keys[-1])
        if not result.success:
            _fail(f"ad_click batch scoring of {keys[-1]}", result, {})
        print(f"[ad_click] batch predictions for {keys[-1]} written", flush=True)
        run_monitoring(defs, instance, keys[-1:])
    return instance.get_latest_materialization_event(dg.AssetKey("ad_click_model_evaluation")).asset_materialization


def run_video_rec(defs: dg.Definitions, instance: dg.DagsterInstance) -> str:
    """The video recommender's one job: ingest, validate, train, evaluate, promote, package, batch-recommend."""
    from assets.video_rec import TRAINING_JOB
    from assets.video_rec.serving import PROMOTION_CHECK

    print("[video_rec] ingest, validate, two-tower, ANN index, ranker, registry, evaluation, promotion, bento, "
          "batch recommendations...", flush=True)
    started = time.monotonic()
    outcome = _run_gated_training(defs, instance, TRAINING_JOB, PROMOTION_CHECK, "video_rec")
    print(f"[video_rec] promotion: {outcome} ({time.monotonic() - started:.0f}s)", flush=True)
    return outcome


def run_monitoring(defs: dg.Definitions, instance: dg.DagsterInstance, keys: list[str]) -> None:
    from assets.ad_click import MONITORING_JOB

    job = defs.resolve_job_def(MONITORING_JOB)
    for key in keys:
        result = _execute(job, instance, partition_key=key)
        if not result.success:
            _fail(f"ad_click monitoring of {key}", result, {})
        report = instance.get_latest_materialization_event(dg.AssetKey("ad_click_drift_report")).asset_materialization
        print(f"[ad_click] drift report {key}: {report.metadata['signals'].value}", flush=True)


def rollback(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.AssetMaterialization:
    from assets.ad_click import ROLLBACK_JOB

    result = _execute(defs.resolve_job_def(ROLLBACK_JOB), instance)
    if not result.success:
        _fail("ad_click rollback", result, {})
    return instance.get_latest_materialization_event(dg.AssetKey("ad_click_champion")).asset_materialization


def run_live(defs: dg.Definitions, instance: dg.DagsterInstance, train_days: int) -> None:
    from assets.ad_click import DAILY_JOB

    keys = defs.resolve_job_def(DAILY_JOB).partitions_def.get_partition_keys()
    if not 0 < train_days < len(keys):
        raise SystemExit(f"--train-days must be between 1 and {len(keys) - 1}")
    run_daily(defs, instance, keys[:train_days])
    print(f"[ad_click] promotion: {run_training(defs, instance)}", flush=True)
    for key in keys[train_days:]:
        run_daily(defs, instance, [key])
        run_monitoring(defs, instance, [key])
    print("[ad_click] turn on ad_click_drift_sensor in the Dagster UI (Automation) with the daemon running "
          "(./dev.sh ui): it requests one retraining run per drift episode")


def _print_video_rec_results(instance: dg.DagsterInstance) -> None:
    event = instance.get_latest_materialization_event(dg.AssetKey("video_rec_evaluation"))
    if event is None:
        return
    metadata = event.asset_materialization.metadata
    print(f"\nVideo recommendation, test window ({metadata['test_users'].value} users, "
          f"{metadata['catalogue_videos'].value} videos; higher is better):")
    print(metadata["comparison"].value)
    print(f"MLflow run: {metadata['mlflow_run'].value}")
    _print_champion_and_bento(instance, "video_rec", "video_rec_recommender")


def _print_champion_and_bento(instance: dg.DagsterInstance, case: str, registered_model: str) -> None:
    champion = instance.get_latest_materialization_event(dg.AssetKey(f"{case}_champion"))
    bento = instance.get_latest_materialization_event(dg.AssetKey(f"{case}_bento"))
    if champion:
        print(f"champion: {registered_model} v{champion.asset_materialization.metadata['champion_version'].value}")
    if bento:
        tag = bento.asset_materialization.metadata["bento_tag"].value
        print(f"bento: {tag}  (serve it: ./dev.sh serve {tag})")


def _print_results(instance: dg.DagsterInstance) -> None:
    _print_ad_click_results(instance)
    _print_video_rec_results(instance)
    print("Dagster: ./dev.sh ui, then open http://127.0.0.1:3000 (production mode: the stack's webserver)")


def _print_ad_click_results(instance: dg.DagsterInstance) -> None:
    event = instance.get_latest_materialization_event(dg.AssetKey("ad_click_model_evaluation"))
    if event is None:
        return
    metadata = event.asset_materialization.metadata
    print("\nAd click prediction, test days (lower NCE is better; the book's metric):")
    print(metadata["comparison"].value)
    print(f"oracle: {metadata['oracle'].value}; test impressions: {metadata['test_rows'].value}")
    print(f"MLflow run: {metadata['mlflow_run'].value}  (./dev.sh mlflow-ui)")
    _print_champion_and_bento(instance, "ad_click", "ad_click_ctr")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "train", "rollback", "live"])
    parser.add_argument("--case", choices=["ad_click", "video_rec"], help="run: only this case study (default: all)")
    parser.add_argument("--train-days", type=int, default=21, help="live: days that arrive before the first training")
    args = parser.parse_args(argv)
    defs = build_definitions(Settings.from_env())
    with dg.DagsterInstance.get() as instance:
        if args.command == "run":
            if args.case in (None, "ad_click"):
                run_ad_click(defs, instance)
            if args.case in (None, "video_rec"):
                run_video_rec(defs, instance)
        elif args.command == "train":
            print(f"[ad_click] promotion: {run_training(defs, instance)}")
        elif args.command == "live":
            run_live(defs, instance, args.train_days)
        else:
            reason = rollback(defs, instance).metadata["reason"].value
            print(f"[ad_click] {reason}")
            return 0
        _print_results(instance)
    return 0


if __name__ == "__main__":
    sys.exit(main())
