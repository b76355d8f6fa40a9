"""The main job: materialize the default pipelines on the project's Dagster instance and print their results.

Every day partition runs as its own run of the daily job (as a daily schedule would), then the training job.
Runs are recorded in $DAGSTER_HOME, so `./dev.sh ui` shows them afterwards.
"""

from __future__ import annotations

import argparse
import sys
import time

import dagster as dg

from orchestration.definitions import build_definitions
from orchestration.settings import Settings


def _failed_checks(result) -> list[str]:
    return [
        f"{e.asset_check_key.name}: {e.metadata.get('summary').value if e.metadata.get('summary') else 'failed'}"
        for e in result.get_asset_check_evaluations()
        if not e.passed
    ]


# Progress lines stay readable; every event is still stored in the instance for the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_ad_click(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.AssetMaterialization:
    from assets.ad_click import DAILY_JOB, TRAINING_JOB

    daily = defs.resolve_job_def(DAILY_JOB)
    keys = daily.partitions_def.get_partition_keys(dynamic_partitions_store=instance)
    started = time.monotonic()
    for i, key in enumerate(keys, 1):
        result = daily.execute_in_process(partition_key=key, instance=instance, raise_on_error=False, run_config=QUIET)
        failed = _failed_checks(result)
        elapsed = time.monotonic() - started
        print(f"[ad_click] day {i}/{len(keys)} {key}: {'ok' if result.success else 'FAILED'} ({elapsed:.0f}s)", flush=True)
        if not result.success or failed:
            raise SystemExit(f"ad_click daily run for {key} failed (run {result.run_id}): " + "; ".join(failed))
    print("[ad_click] training: time split, baseline, XGBoost, registry, evaluation...", flush=True)
    result = defs.resolve_job_def(TRAINING_JOB).execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET
    )
    failed = _failed_checks(result)
    if not result.success or failed:
        raise SystemExit(f"ad_click training run failed (run {result.run_id}): " + "; ".join(failed))
    event = instance.get_latest_materialization_event(dg.AssetKey("ad_click_model_evaluation"))
    return event.asset_materialization


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args(argv)
    settings = Settings.from_env()
    defs = build_definitions(settings)
    with dg.DagsterInstance.get() as instance:
        evaluation = run_ad_click(defs, instance)
    metadata = evaluation.metadata
    print("\nAd click prediction, test days (lower NCE is better; the book's metric):")
    print(metadata["comparison"].value)
    print(f"oracle: {metadata['oracle'].value}; test impressions: {metadata['test_rows'].value}")
    print(f"MLflow run: {metadata['mlflow_run'].value}  (./dev.sh mlflow-ui)")
    print("Dagster: ./dev.sh ui, then open http://127.0.0.1:3000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
