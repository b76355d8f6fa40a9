"""Shared fixtures: an isolated state folder, a small simulated world, and one small run of every case study.

Each case study runs once per session, on its own small settings (`CaseStudy.small`), through the main command's
code path. Tests that change state (a retrain, a rollback) work on a copy of that run (`copy_run`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def registry_with_fixture():
    """Every registered case study, plus the fixture case that only the tests register."""
    from orchestration.cases import registered
    from tests.fixture_case import CASE as fixture_case

    return (*registered(), fixture_case)


def case_named(name: str):
    from orchestration.cases import find

    return find(name, registry_with_fixture())


def small_settings_for(case, state_dir: Path, environ: dict | None = None, **changes):
    """The platform on a private state folder, the case on its small settings (plus `changes`)."""
    from orchestration.settings import Settings

    env = {"MLSD_STATE_DIR": str(state_dir), **(environ or {})}
    return Settings.from_env(env, cases=(case,)).with_case(case.name, **{**case.small, **changes})


@dataclass
class CaseRun:
    case: object  # assets.case.CaseStudy
    settings: object  # orchestration.settings.Settings
    defs: object
    instance: object
    seconds: float

    @property
    def case_settings(self):
        return self.settings.of(self.case.name)


def run_case(case, settings) -> CaseRun:
    import time

    import dagster as dg

    from orchestration.definitions import build_definitions
    from orchestration.main import Runner

    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    started = time.monotonic()
    Runner(defs, instance).run(case)
    return CaseRun(case, settings, defs, instance, time.monotonic() - started)


class _Runs:
    def __init__(self, factory):
        self.factory, self.runs = factory, {}

    def get(self, name: str) -> CaseRun:
        if name not in self.runs:
            case = case_named(name)
            state = self.factory.mktemp(f"{name}_state")
            self.runs[name] = run_case(case, small_settings_for(case, state))
        return self.runs[name]


@pytest.fixture(scope="session")
def case_runs(tmp_path_factory) -> _Runs:
    """One small run per case study, made the first time a test asks for it."""
    return _Runs(tmp_path_factory)


def latest_metadata(instance, asset: str) -> dict:
    """The metadata of an asset's latest materialization."""
    import dagster as dg

    return instance.get_latest_materialization_event(dg.AssetKey(asset)).asset_materialization.metadata


def lake_table(settings, asset: str):
    """An unpartitioned asset's value as the IO manager stored it in the lake."""
    import polars as pl

    return pl.read_parquet(settings.lake_dir / "assets" / f"{asset}.parquet")


def assert_bad_raw_data_stops_the_run(copy: CaseRun, raw_dir: Path, field: str) -> None:
    """Runs the main command's steps of the copied run's case on the files in `raw_dir` and checks that a blocking
    check stops it naming `field`, before any new version is registered: the champion (version 1) keeps serving."""
    import mlflow

    from orchestration.definitions import build_definitions
    from orchestration.main import Runner

    bad = build_definitions(copy.settings.with_case(copy.case.name, raw_dir=str(raw_dir)))
    with pytest.raises(SystemExit, match=field):
        Runner(bad, copy.instance).run(copy.case)
    tracking = copy.settings.mlflow_tracking_uri
    client = mlflow.MlflowClient(tracking, tracking)
    model = copy.case.registered_model
    assert str(client.get_model_version_by_alias(model, "champion").version) == "1"
    assert len(client.search_model_versions(f"name='{model}'")) == 1  # nothing downstream ran


def assert_daily_fine_tune(run: CaseRun, rows_asset: str, into: Path):
    """Runs `<case>_fine_tune_job` on a copy of the run and checks what the continual-learning kit promises: a
    challenger fine-tuned from the champion on every day after it last learned up to the newest, judged on the newest
    in non-inferiority mode, and a champion that moves exactly when that check passes. Returns (champion version,
    fine-tuned version, the fine-tuned asset's metadata) for the case's own checks."""
    import dagster as dg
    import mlflow

    case, model = run.case.name, run.case.registered_model
    copy = copy_run(run, into)
    client = mlflow.MlflowClient(copy.settings.mlflow_tracking_uri, copy.settings.mlflow_tracking_uri)
    champion = client.get_model_version_by_alias(model, "champion")
    trained_through = champion.tags["trained_through"]
    days = sorted({str(d) for d in lake_table(copy.settings, rows_asset)["ts"].dt.date().unique()})
    result = copy.defs.resolve_job_def(f"{case}_fine_tune_job").execute_in_process(instance=copy.instance,
                                                                                   raise_on_error=False)
    assert result.success
    assert result.dagster_run.tags["mlsd/promotion_mode"] == "non_inferiority"
    tuned = client.get_model_version_by_alias(model, "challenger")
    assert tuned.tags["fine_tuned_from"] == str(champion.version)
    assert tuned.tags["trained_through"] == days[-2]  # every day up to the holdout, not the holdout
    made = latest_metadata(copy.instance, f"{case}_fine_tuned_model")
    assert made["holdout_day"].value == days[-1]
    assert made["fresh_days"].value.split(", ") == [d for d in days if trained_through < d < days[-1]]
    key = dg.AssetCheckKey(dg.AssetKey(f"{case}_fine_tuned_model"), f"{case}_fine_tune_not_worse")
    check = copy.instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    evaluation = check.event.dagster_event.event_specific_data
    assert evaluation.metadata["mode"].value == "non_inferiority"
    now = str(client.get_model_version_by_alias(model, "champion").version)
    promoted = client.get_model_version(model, tuned.version).tags.get("promotion_decision") == "promote"
    assert evaluation.passed == promoted and now == (str(tuned.version) if promoted else str(champion.version))
    return champion, tuned, made


def copy_run(run: CaseRun, into: Path) -> CaseRun:
    """The run's state (lake, MLflow store, BentoML store) copied, with a fresh Dagster instance over it: changes
    made there leave the session's run as it was."""
    import dagster as dg

    from orchestration.definitions import build_definitions

    shutil.copytree(run.settings.platform.state_dir, into)
    settings = small_settings_for(run.case, into)
    settings = settings.with_case(run.case.name, **dataclasses.asdict(run.case_settings))
    return CaseRun(run.case, settings, build_definitions(settings), dg.DagsterInstance.ephemeral(), 0.0)


@pytest.fixture(scope="session")
def pipeline(case_runs):
    """The ad click run as (settings, defs, instance, evaluation materialization)."""
    import dagster as dg

    run = case_runs.get("ad_click")
    evaluation = run.instance.get_latest_materialization_event(dg.AssetKey("ad_click_model_evaluation"))
    return run.settings, run.defs, run.instance, evaluation.asset_materialization


@pytest.fixture(scope="session")
def video_pipeline(case_runs):
    """The video recommendation run as (settings, defs, instance, promotion outcome)."""
    import dagster as dg

    run = case_runs.get("video_rec")
    champion = run.instance.get_latest_materialization_event(dg.AssetKey("video_rec_champion"))
    return run.settings, run.defs, run.instance, champion.asset_materialization


@pytest.fixture(scope="session")
def small_world():
    from models.ad_click.simulator import SimulationConfig, simulate

    return simulate(
        SimulationConfig(
            start_date=date(2026, 1, 1), n_days=10, n_users=1_000, n_ads=100, n_advertisers=20, impressions_per_day=3_000
        )
    )


@pytest.fixture
def small_settings(tmp_path):
    """Ad click on its small settings in a private state folder."""
    return small_settings_for(case_named("ad_click"), tmp_path / "state")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real redis-server on a free loopback port, stopped at the end of the session."""
    from bentos.server import local_redis

    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: `./dev.sh setup` installs it (Debian package redis-server)")
    with local_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(params=["sqlite", "redis"])
def online_store(request, tmp_path):
    """Each online-store test runs against both backends."""
    from models.online_store import open_store

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'online.db'}"
    else:
        url = request.getfixturevalue("redis_url")
    namespace = f"test-{request.node.name}"
    store = open_store(url, namespace)
    yield store
    store.close()


def deploy_bento(run: CaseRun, home: Path, archive_dir: Path) -> tuple[str, str]:
    """The case's built bento exported and imported into an empty BentoML home, as a deploy would: no project
    state. Returns (bento tag, MLflow version it packs)."""
    import subprocess
    import sys

    import dagster as dg

    bento = run.instance.get_latest_materialization_event(dg.AssetKey(run.case.key("bento"))).asset_materialization
    tag = bento.metadata["bento_tag"].value
    archive = archive_dir / f"{run.case.name}.bento"
    bentoml = str(Path(sys.executable).parent / "bentoml")
    for bentoml_home, args in ((run.settings.bentoml_home, ["export", tag, str(archive)]), (home, ["import", str(archive)])):
        env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"}
        subprocess.run([bentoml, *args], env=env, check=True, capture_output=True, text=True)
    return tag, bento.metadata["mlflow_version"].value


@dataclass
class Served:
    url: str
    port: int
    process: object
    version: str
    settings: object


class _Servers:
    def __init__(self, runs: _Runs, factory, stack):
        self.runs, self.factory, self.stack, self.served = runs, factory, stack, {}
        self.servers = []  # bentos.server.ServedBento, to stop at once

    def get(self, name: str, **env_overrides) -> Served:
        key = (name, tuple(sorted(env_overrides.items())))
        if key not in self.served:
            from bentos.server import serving

            run = self.runs.get(name)
            home = self.factory.mktemp(f"{name}_bentoml_home")
            tag, version = deploy_bento(run, home, self.factory.mktemp(f"{name}_export"))
            workdir = self.factory.mktemp(f"{name}_serve")  # not the project: the bento brings its own code
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            env |= {"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true",
                    **run.case.serving_env(run.settings.platform), **env_overrides}
            server = self.stack.enter_context(serving(tag, env=env, cwd=workdir, log=workdir / "serve.log"))
            self.servers.append(server)
            self.served[key] = Served(server.url, server.port, server.process, version, run.settings)
        return self.served[key]


@pytest.fixture(scope="session")
def served_cases(case_runs, tmp_path_factory):
    """Each case's bento deployed to an empty BentoML home and served on a free loopback port, once a session."""
    import contextlib

    with contextlib.ExitStack() as stack:
        servers = _Servers(case_runs, tmp_path_factory, stack)
        yield servers
        for server in servers.servers:
            server.interrupt()  # all at once; the stack then waits for each
