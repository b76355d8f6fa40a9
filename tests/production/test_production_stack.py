"""Production mode end to end: the ad click pipeline against PostgreSQL-backed Dagster, the MLflow tracking server and
Redis; then the MLflow server and Redis are restarted mid-way and nothing registered before is lost."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.production.conftest import RUN_NAMES, dagster_runs, query_dagster_db

pytestmark = pytest.mark.slow



def _mlflow(stack):
    from mlflow import MlflowClient

    uri = stack.url("MLSD_MLFLOW_TRACKING_URI")
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _redis(stack):
    import redis

    return redis.Redis.from_url(stack.url("MLSD_ONLINE_STORE_URL"), decode_responses=True)


def _online_snapshot(stack) -> tuple[dict, int]:
    """The published snapshot of the ad click features and how many feature records it holds in Redis."""
    client = _redis(stack)
    try:
        current = json.loads(client.get("ad_click:current"))
        keys = sum(1 for _ in client.scan_iter(match=f"ad_click:{current['snapshot_id']}:*", count=5_000))
        return current, keys
    finally:
        client.close()


def test_stack_up_twice_changes_nothing(production_stack):
    before = {s.name: s.pid() for s in production_stack.stack.services()}
    again = production_stack.stack_command("up")
    assert again.stdout.count("already running") == len(before), again.stdout
    assert {s.name: s.pid() for s in production_stack.stack.services()} == before
    status = production_stack.stack_command("status")
    assert "stopped" not in status.stdout


def test_ad_click_pipeline_lands_in_postgres_mlflow_server_and_redis(production_stack, production_ad_click):
    assert "challenger promoted to champion" in production_ad_click

    runs = dagster_runs(production_stack)
    assert ("ad_click_training_job", "SUCCESS") in runs
    # The ten days ingested as one run over their range (a single-run backfill), tagged as Dagster tags one.
    assert sum(1 for job, status in runs if job == "ad_click_daily_job" and status == "SUCCESS") == 1
    ranges = dict(query_dagster_db(production_stack, "SELECT key, value FROM run_tags WHERE key LIKE %s",
                                   ("dagster/asset_partition_range_%",)))
    assert ranges == {"dagster/asset_partition_range_start": "2026-01-01", "dagster/asset_partition_range_end": "2026-01-10"}

    client = _mlflow(production_stack)
    champion = client.get_model_version_by_alias("ad_click_ctr", "champion")
    assert str(champion.version) == "1"
    # The artifacts went to the server over HTTP (its artifact store), not to a local folder of the pipeline's.
    assert client.get_run(champion.run_id).info.artifact_uri.startswith("mlflow-artifacts:/")
    experiment = client.get_experiment_by_name("ad_click")
    assert {r.info.run_name for r in client.search_runs([experiment.experiment_id])} >= set(RUN_NAMES)

    snapshot, keys = _online_snapshot(production_stack)
    assert snapshot["records"] == keys > 0


def test_mlflow_server_and_redis_restart_mid_way(production_stack, production_ad_click, tmp_path):
    """Each server stopped in turn: training fails naming it, and the failed run is on record; restarted, they
    kept everything, and one retraining (after both) registers a new version and republishes the features."""
    stack, client = production_stack, _mlflow(production_stack)
    uri = stack.url("MLSD_MLFLOW_TRACKING_URI")
    versions_before = {str(v.version) for v in client.search_model_versions("name='ad_click_ctr'")}
    snapshot, keys = _online_snapshot(stack)

    stack.stack_command("stop", "mlflow")
    failed = stack.command("-m", "orchestration.main", "train", "ad_click", timeout=600)
    assert failed.returncode != 0
    assert f"MLflow tracking server at {uri} is not reachable" in failed.stderr + failed.stdout
    assert dagster_runs(stack)[-1] == ("ad_click_training_job", "FAILURE")  # the failed run is on record
    assert "mlflow: started" in stack.stack_command("up").stdout

    stack.stack_command("stop", "redis")
    failed = stack.command("-m", "orchestration.main", "train", "ad_click", timeout=600)
    assert failed.returncode != 0
    address = urlparse(stack.url("MLSD_ONLINE_STORE_URL"))
    message = failed.stderr + failed.stdout
    assert f"online feature store (Redis) at redis://:***@{address.hostname}:{address.port}/0 is not reachable" in message
    assert address.password not in message
    assert "redis: started" in stack.stack_command("up").stdout
    assert _online_snapshot(stack) == (snapshot, keys), "Redis kept the published features across its restart"

    rerun = stack.command("-m", "orchestration.main", "train", "ad_click", timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert dagster_runs(stack)[-1] == ("ad_click_training_job", "SUCCESS")
    versions_after = {str(v.version) for v in client.search_model_versions("name='ad_click_ctr'")}
    assert versions_before < versions_after, "the re-run registers a new version and keeps every earlier one"
    # Retrained on the same data, the challenger is no better beyond the interval: the first champion still serves.
    assert str(client.get_model_version_by_alias("ad_click_ctr", "champion").version) == "1"
    import mlflow

    source = client.get_model_version("ad_click_ctr", "1").source
    if source.startswith("models:/"):  # MLflow 3: the version points at a logged model
        source = client.get_logged_model(source.removeprefix("models:/")).artifact_location
    folder = mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=uri, dst_path=str(tmp_path))
    assert (Path(folder) / "MLmodel").exists(), "version 1's artifacts are still served after the restart"
    republished, republished_keys = _online_snapshot(stack)
    assert republished_keys == republished["records"] > 0
