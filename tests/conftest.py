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

VIDEO_SMALL = dict(days=16, users=800, videos=800, new_videos_per_day=20, ranker_days=3, test_days=3, epochs=6)
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


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real redis-server on a free loopback port, stopped at the end of the session."""
    import shutil
    import subprocess
    import time

    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed: `./dev.sh setup` installs it (Debian package redis-server)")
    from bentos.server import free_port

    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=20)


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
