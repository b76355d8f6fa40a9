"""Continual learning (the shared kit, assets/continual.py, as ad click uses it): the daily fine-tune job trains the
champion network further on the days since it last learned, registers it as the challenger, judges it on the newest
day in non-inferiority mode, and refuses a GBDT."""

from types import SimpleNamespace

import dagster as dg
import mlflow

FINE_TUNE_JOB, FINE_TUNE_CHECK = "ad_click_fine_tune_job", "ad_click_fine_tune_not_worse"
from orchestration.definitions import build_definitions
from tests.conftest import copy_run

MODEL = "ad_click_ctr"


def _client(settings):
    return mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)


def _train_only(copy, candidates: str):
    """The training job with the given candidates; returns (defs, the version it registered)."""
    settings = copy.settings.with_case("ad_click", candidates=candidates)
    defs = build_definitions(settings)
    defs.resolve_job_def("ad_click_training_job").execute_in_process(instance=copy.instance, raise_on_error=False)
    return defs, _challenger(settings)


def _challenger(settings) -> SimpleNamespace:
    found = _client(settings).get_model_version_by_alias(MODEL, "challenger")
    # The registry answers an int here and strings in tags.
    return SimpleNamespace(version=str(found.version), tags=found.tags)


def _fine_tune(defs, instance):
    return defs.resolve_job_def(FINE_TUNE_JOB).execute_in_process(instance=instance, raise_on_error=False)


def _failure(result) -> str:
    failures = [e for e in result.all_node_events if e.is_step_failure]
    assert failures, [e.event_type_value for e in result.all_events]
    return failures[0].step_failure_data.error.message


def test_the_champion_network_is_fine_tuned_judged_on_the_newest_day_and_a_gbdt_is_refused(case_runs, tmp_path):
    copy = copy_run(case_runs.get("ad_click"), tmp_path / "state")
    client = _client(copy.settings)

    # A GBDT champion: the run fails, saying why and what to do instead.
    defs, booster = _train_only(copy, "xgboost")
    assert booster.tags["model_kind"] == "xgboost"
    client.set_registered_model_alias(MODEL, "champion", booster.version)
    refused = _fine_tune(defs, copy.instance)
    assert not refused.success
    assert "cannot be fine-tuned" in _failure(refused)

    # A network champion (made the champion here as if it had won the training job's choice).
    defs, network = _train_only(copy, "dcn")
    assert network.tags["model_kind"] == "dcn"
    client.set_registered_model_alias(MODEL, "champion", network.version)
    days = sorted(p.stem for p in (copy.settings.lake_dir / "assets" / "ad_click_features").glob("*.parquet"))
    newest, trained_through = days[-1], network.tags["trained_through"]
    assert trained_through < days[-2]

    result = _fine_tune(defs, copy.instance)
    assert result.success
    assert result.dagster_run.tags["mlsd/promotion_mode"] == "non_inferiority"
    tuned = _challenger(copy.settings)
    assert tuned.tags["fine_tuned_from"] == network.version and tuned.tags["model_kind"] == "dcn"
    assert tuned.tags["trained_through"] == days[-2]  # learned from every day up to the holdout, not the holdout
    made = copy.instance.get_latest_materialization_event(dg.AssetKey("ad_click_fine_tuned_model")).asset_materialization
    assert made.metadata["holdout_day"].value == newest
    assert made.metadata["fresh_days"].value.split(", ") == [d for d in days if trained_through < d < newest]
    key = dg.AssetCheckKey(dg.AssetKey("ad_click_fine_tuned_model"), FINE_TUNE_CHECK)
    check = copy.instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    evaluation = check.event.dagster_event.event_specific_data
    assert evaluation.metadata["mode"].value == "non_inferiority"
    assert evaluation.metadata["champion_version"].value == network.version
    champion = str(client.get_model_version_by_alias(MODEL, "champion").version)
    promoted = tuned.tags.get("promotion_decision") == "promote"
    assert evaluation.passed == promoted and champion == (tuned.version if promoted else network.version)
    if promoted:
        # The bento follows the champion, and the next fine-tune has nothing new until a day arrives.
        bento = copy.instance.get_latest_materialization_event(dg.AssetKey("ad_click_bento")).asset_materialization
        assert bento.metadata["mlflow_version"].value == tuned.version
        again = _fine_tune(defs, copy.instance)
        assert "nothing new to learn" in _failure(again)
