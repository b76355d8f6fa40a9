"""Shared fixtures: an isolated state folder, a small simulated world, and small-pipeline settings."""

from __future__ import annotations

import os
from datetime import date

import pytest

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

SMALL = dict(days=10, users=1_000, ads=100, advertisers=20, impressions_per_day=3_000, warmup_days=2, validation_days=2, test_days=2)


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
    from orchestration.settings import Settings

    return Settings.from_env({"MLSD_STATE_DIR": str(tmp_path / "state")}).with_ad_click(**SMALL)
