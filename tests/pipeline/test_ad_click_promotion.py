"""Ad click's gate as the release kit runs it: a no-better challenger is a WARN, not a failed run, and the champion
asset alone never promotes an ungated challenger. (First champion, no-better retrain and rollback are in the shared
contract tests, tests/test_case_contract.py.)"""

import dagster as dg
import mlflow

from assets.ad_click.serving import PROMOTION_CHECK
from orchestration.main import Runner
from tests.conftest import copy_run

MODEL = "ad_click_ctr"


def _champion(settings) -> str:
    client = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    return str(client.get_model_version_by_alias(MODEL, "champion").version)


def test_a_no_better_challenger_is_a_warning_and_the_champion_asset_alone_promotes_nothing(case_runs, tmp_path):
    copy = copy_run(case_runs.get("ad_click"), tmp_path / "state")
    assert Runner(copy.defs, copy.instance).train(copy.case).startswith("champion kept: challenger nce")
    key = dg.AssetCheckKey(dg.AssetKey("ad_click_model_evaluation"), PROMOTION_CHECK)
    check = copy.instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    assert check.status.value == "FAILED"
    assert check.event.dagster_event.event_specific_data.severity == dg.AssetCheckSeverity.WARN
    champion = copy.instance.get_latest_materialization_event(dg.AssetKey("ad_click_champion")).asset_materialization
    assert champion.metadata["reason"].value.startswith("kept v1: challenger v2 not promoted")
    # Materializing the champion by itself (a shortcut round the gate) leaves the alias where it is.
    job = copy.defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=copy.instance, asset_selection=[dg.AssetKey("ad_click_champion")]).success
    assert _champion(copy.settings) == "1"
