"""Alias-based promotion: the gate, a challenger that does not beat the champion, a refused shortcut, rollback."""

import dagster as dg
import mlflow
import pytest

from assets.ad_click import ROLLBACK_JOB
from assets.ad_click.serving import PROMOTION_CHECK
from orchestration.main import run_training

MODEL = "ad_click_ctr"


def _client(settings):
    return mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)


def _champion(settings) -> str:
    return str(_client(settings).get_model_version_by_alias(MODEL, "champion").version)


def _materialize(defs, instance, *keys, run_config=None):
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey(k) for k in keys], raise_on_error=False, run_config=run_config or {}
    )


def test_first_challenger_became_champion_and_was_packaged(pipeline):
    settings, _, instance, _ = pipeline
    assert _champion(settings) == "1"
    version = _client(settings).get_model_version(MODEL, "1")
    assert version.tags["promotion_decision"] == "promote"
    assert version.tags["compared_with_champion_version"] == "none"
    bento = instance.get_latest_materialization_event(dg.AssetKey("ad_click_bento")).asset_materialization
    assert bento.metadata["mlflow_version"].value == "1"


def test_the_gate_keeps_the_champion_when_the_challenger_is_no_better(pipeline):
    settings, defs, instance, _ = pipeline
    decision = run_training(defs, instance)  # same data, same seed: the same model, not better by the margin
    assert decision.startswith("champion kept: challenger nce")
    assert _champion(settings) == "1"
    challenger = _client(settings).get_model_version_by_alias(MODEL, "challenger")
    assert str(challenger.version) == "2"
    assert challenger.tags["promotion_decision"] == "keep_champion"
    assert challenger.tags["compared_with_champion_version"] == "1"
    assert float(challenger.tags["challenger_nce"]) == pytest.approx(float(challenger.tags["champion_nce"]), rel=1e-3)
    # A challenger that is no better is a warning, not a failed run: the champion asset records that it stayed.
    champion = instance.get_latest_materialization_event(dg.AssetKey("ad_click_champion")).asset_materialization
    assert champion.metadata["champion_version"].value == "1"
    assert champion.metadata["reason"].value.startswith("kept v1: challenger v2 not promoted")
    key = dg.AssetCheckKey(dg.AssetKey("ad_click_model_evaluation"), PROMOTION_CHECK)
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    assert check.status.value == "FAILED"
    assert check.event.dagster_event.event_specific_data.severity == dg.AssetCheckSeverity.WARN


def test_materializing_the_champion_alone_does_not_promote_an_ungated_challenger(pipeline):
    settings, defs, instance, _ = pipeline
    assert _materialize(defs, instance, "ad_click_champion").success
    assert _champion(settings) == "1"
    champion = instance.get_latest_materialization_event(dg.AssetKey("ad_click_champion")).asset_materialization
    assert champion.metadata["reason"].value.startswith("kept v1")


def test_rollback_returns_to_the_previous_champion_and_rebuilds_the_bento(pipeline):
    settings, defs, instance, _ = pipeline
    client = _client(settings)
    # Stand-in for a challenger that passed the gate: v2 promoted through the champion asset.
    client.set_model_version_tag(MODEL, "2", "promotion_decision", "promote")
    assert _materialize(defs, instance, "ad_click_champion", "ad_click_bento_model", "ad_click_bento").success
    assert _champion(settings) == "2"
    promoted = instance.get_latest_materialization_event(dg.AssetKey("ad_click_bento")).asset_materialization
    assert promoted.metadata["mlflow_version"].value == "2"
    assert client.get_model_version(MODEL, "2").tags["previous_champion"] == "1"

    result = defs.resolve_job_def(ROLLBACK_JOB).execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    assert _champion(settings) == "1"
    bento = instance.get_latest_materialization_event(dg.AssetKey("ad_click_bento")).asset_materialization
    assert bento.metadata["mlflow_version"].value == "1"
    # v2 was imported after v1: the rebuilt bento still packs v1's model, not the store's latest.
    assert bento.metadata["bentoml_model_tag"].value != promoted.metadata["bentoml_model_tag"].value
    # Rolling back again has nowhere to go: v1 replaced no champion.
    again = defs.resolve_job_def(ROLLBACK_JOB).execute_in_process(instance=instance, raise_on_error=False)
    assert not again.success and _champion(settings) == "1"
