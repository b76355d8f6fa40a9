"""In-process materialization of the whole ad click group on small data, against a temporary instance."""

import dagster as dg
import polars as pl
import pytest

from orchestration.definitions import build_definitions
from tests.conftest import case_named, run_case, small_settings_for


def test_challenger_is_registered_and_evaluation_compares_with_baseline_and_oracle(pipeline):
    settings, _, _, evaluation = pipeline
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    challenger = client.get_model_version_by_alias("ad_click_ctr", "challenger")
    run = client.get_run(challenger.run_id)
    assert run.data.metrics["test_nce"] < 1.0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/roc.png", "plots/precision_recall.png", "plots/calibration.png", "plots/feature_importance.png"} <= artifacts
    metadata = evaluation.metadata
    assert metadata["oracle"].value == "simulator's true click probabilities"
    table = metadata["comparison"].value
    assert "baseline (logistic regression)" in table and "oracle (true probability)" in table
    # The model cannot beat the truth, and beats the background rate; the table reports what MLflow logged.
    assert metadata["xgboost_nce_vs_oracle"].value > 1.0
    assert metadata["xgboost_nce"].value < 1.0
    assert metadata["xgboost_nce"].value == pytest.approx(run.data.metrics["test_nce"], rel=1e-6)


def test_rerunning_a_partition_replaces_it_without_duplicates(pipeline):
    """The main command ingested the days as one run over the range; the daily schedule runs one day. Both write
    the same rows, and the day's features from its own look-back equal those of the one-pass range."""
    settings, defs, instance, _ = pipeline
    path = settings.lake_dir / "assets" / "ad_click_impressions" / "2026-01-05.parquet"
    features_path = settings.lake_dir / "assets" / "ad_click_features" / "2026-01-05.parquet"
    before, features_before = pl.read_parquet(path), pl.read_parquet(features_path)
    daily_runs = instance.get_runs(filters=dg.RunsFilter(job_name="ad_click_daily_job"))
    assert [r.tags.get("dagster/asset_partition_range_start") for r in daily_runs] == ["2026-01-01"]
    result = defs.resolve_job_def("ad_click_daily_job").execute_in_process(partition_key="2026-01-05", instance=instance)
    assert result.success
    after = pl.read_parquet(path)
    assert after.equals(before)
    assert pl.read_parquet(features_path).equals(features_before)
    assert after["impression_id"].n_unique() == after.height
    assert not list(path.parent.glob("*.tmp-*"))
    checks = {e.asset_check_key.name: e.partition for e in result.get_asset_check_evaluations()}
    assert checks["ad_click_features_valid"] == "2026-01-05"


def test_a_missing_history_day_is_named_not_skipped(small_settings):
    defs = build_definitions(small_settings)
    result = defs.resolve_job_def("ad_click_daily_job").execute_in_process(
        partition_key="2026-01-02", instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "ad_click_impressions has not been materialized" in str(failure.event_specific_data.error)
    assert "2026-01-01.parquet" in str(failure.event_specific_data.error)


def test_training_over_a_gap_in_the_days_names_the_missing_day(small_settings):
    defs = build_definitions(small_settings)
    instance = dg.DagsterInstance.ephemeral()
    daily = defs.resolve_job_def("ad_click_daily_job")
    for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
        assert daily.execute_in_process(partition_key=day, instance=instance).success
    lake = small_settings.lake_dir / "assets" / "ad_click_features"
    (lake / "2026-01-02.parquet").unlink()  # a day lost between two that arrived
    result = defs.resolve_job_def("ad_click_training_job").execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "ad_click_features is missing 1 partition(s) inside the window it reads: 2026-01-02" in str(
        failure.event_specific_data.error)


def _write_world(world, folder, impressions: pl.DataFrame | None = None):
    folder.mkdir(parents=True)
    (folder / "impressions").mkdir()
    impressions = world.impressions if impressions is None else impressions
    # Extra columns are part of real exports; the contract ignores them.
    impressions.with_columns(campaign=pl.lit("c1")).write_parquet(folder / "impressions" / "part-0.parquet")
    world.users.with_columns(locale=pl.lit("en")).write_parquet(folder / "users.parquet")
    world.ads.write_parquet(folder / "ads.parquet")


def test_a_few_bad_rows_are_quarantined_and_many_stop_at_the_blocking_check(small_world, small_settings, tmp_path):
    raw = tmp_path / "raw"
    day = pl.col("ts").dt.date().cast(pl.String)
    row = pl.int_range(pl.len()).over(day)
    # 0.2% of 2026-01-03's rows and 5% of 2026-01-04's have an impossible position; the policy quarantines up to 1%.
    bad = small_world.impressions.with_columns(
        position=pl.when(((day == "2026-01-03") & (row % 500 == 0)) | ((day == "2026-01-04") & (row % 20 == 0)))
        .then(0).otherwise("position")
    )
    _write_world(small_world, raw, bad)
    defs = build_definitions(small_settings.with_case("ad_click", raw_dir=str(raw)))
    instance = dg.DagsterInstance.ephemeral()
    daily = defs.resolve_job_def("ad_click_daily_job")
    for day_key in ("2026-01-01", "2026-01-02", "2026-01-03"):
        assert daily.execute_in_process(partition_key=day_key, instance=instance).success
    expected = small_world.impressions.filter((day == "2026-01-03")).with_row_index().filter(pl.col("index") % 500 == 0)
    quarantine = instance.get_latest_materialization_event(dg.AssetKey("ad_click_impressions_quarantine"))
    assert quarantine.dagster_event.partition == "2026-01-03"
    assert quarantine.asset_materialization.metadata["dagster/row_count"].value == expected.height > 0
    kept = instance.get_latest_materialization_event(dg.AssetKey("ad_click_impressions")).asset_materialization
    assert kept.metadata["quarantined_rows"].value == expected.height
    lake = small_settings.lake_dir / "assets"
    set_aside = pl.read_parquet(lake / "ad_click_impressions_quarantine" / "2026-01-03.parquet")
    assert sorted(set_aside["impression_id"]) == sorted(expected["impression_id"])
    assert set_aside["failed_expectations"].str.contains("position").all() and set_aside["run_id"].n_unique() == 1
    features = pl.read_parquet(lake / "ad_click_features" / "2026-01-03.parquet")
    assert features.join(expected, on="impression_id", how="semi").height == 0  # downstream never sees them

    result = daily.execute_in_process(partition_key="2026-01-04", instance=instance, raise_on_error=False)
    assert not result.success
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [e.asset_check_key.name for e in failed] == ["ad_click_impressions_valid"]
    problems = failed[0].metadata["failed_expectations"].value
    assert "position" in problems and "more than the quarantine limit of 1%" in problems
    features = instance.get_latest_materialization_event(dg.AssetKey("ad_click_features"))
    assert features.dagster_event.partition == "2026-01-03"  # nothing downstream of the bad day was written


@pytest.mark.slow
def test_bring_your_own_data_runs_the_whole_group_and_says_there_is_no_oracle(small_world, small_settings, tmp_path):
    raw = tmp_path / "raw"
    _write_world(small_world, raw)
    case = case_named("ad_click")
    # No start date or day count: the window comes from the files' dates.
    settings = small_settings_for(case, tmp_path / "state", {"MLSD_AD_CLICK_RAW_DIR": str(raw)}, days=None)
    run = run_case(case, settings)
    daily = run.defs.resolve_job_def("ad_click_daily_job")
    assert daily.partitions_def.get_partition_keys()[0] == "2026-01-01"
    assert len(daily.partitions_def.get_partition_keys()) == 10
    evaluation = run.instance.get_latest_materialization_event(dg.AssetKey("ad_click_model_evaluation")).asset_materialization
    assert evaluation.metadata["oracle"].value == "none: user-provided data has no oracle"
    assert "oracle (true probability)" not in evaluation.metadata["comparison"].value
    assert evaluation.metadata["xgboost_nce"].value < 1.0


@pytest.mark.slow
@pytest.mark.parametrize("days,per_day", [(5, 1_500), (120, 200)], ids=["a_few_days", "four_months"])
def test_your_files_of_a_few_days_or_many_months_train_and_evaluate(tmp_path, days, per_day):
    """Windows sized by the data: the default validation and test windows (10% and 12% of the impressions) and the
    warm-up fit five days as well as four months whose traffic thins out towards the end."""
    from datetime import date

    from models.ad_click.simulator import SimulationConfig, simulate

    world = simulate(SimulationConfig(start_date=date(2025, 5, 1), n_days=days, n_users=600, n_ads=80,
                                      n_advertisers=15, impressions_per_day=per_day, seed=3))
    impressions = world.impressions
    if days > 30:  # the last month keeps ever fewer impressions, down to a fifth
        age = (pl.col("ts") - pl.col("ts").min()).dt.total_days() / days
        keep = pl.when(age < 0.75).then(1.0).otherwise(1.0 - 3.2 * (age - 0.75))
        impressions = impressions.filter(pl.int_range(pl.len()).hash(3) % 1000 < keep * 1000)
    raw = tmp_path / "raw"
    _write_world(world, raw, impressions)
    case = case_named("ad_click")
    defaults = case.settings_type()
    settings = small_settings_for(case, tmp_path / "state", {"MLSD_AD_CLICK_RAW_DIR": str(raw)}, days=None,
                                  warmup_days=defaults.warmup_days, validation_window=defaults.validation_window,
                                  test_window=defaults.test_window)
    run = run_case(case, settings)
    evaluation = run.instance.get_latest_materialization_event(dg.AssetKey("ad_click_model_evaluation")).asset_materialization
    assert evaluation.metadata["xgboost_nce"].value > 0
    split = pl.read_parquet(settings.lake_dir / "assets" / "ad_click_training_data.parquet")
    share = split.group_by("split").len().with_columns(share=pl.col("len") / impressions.height)
    shares = dict(zip(share["split"], share["share"]))
    assert shares["test"] >= 0.12 and shares["validation"] >= 0.10 and shares["train"] > 0, shares
