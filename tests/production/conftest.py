"""Production mode under test: the real stack (PostgreSQL, Redis, MLflow server, Dagster webserver and daemon) on free
loopback ports, started and stopped with the same command a team uses (`python -m orchestration.stack`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest


ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".mlsd" / "test-artifacts"  # screenshots and logs CI keeps


RUN_NAMES = ("baseline-logistic-regression", "xgboost", "evaluation")  # the ad_click experiment's runs


def query_dagster_db(stack, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows straight from the Dagster instance's PostgreSQL storage."""
    import psycopg2

    url = urlparse(stack.url("MLSD_DAGSTER_POSTGRES_URL"))
    connection = psycopg2.connect(host=url.hostname, port=url.port, user=url.username, password=url.password,
                                  dbname=url.path.lstrip("/"))
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        connection.close()


def dagster_runs(stack) -> list[tuple[str, str]]:
    """(job, status) of every run, oldest first."""
    return query_dagster_db(stack, "SELECT pipeline_name, status FROM runs ORDER BY create_timestamp")


@dataclass
class RunningStack:
    env_file: Path
    stack: object  # orchestration.stack.Stack

    @property
    def env(self) -> dict[str, str]:
        return self.stack.env

    def url(self, key: str) -> str:
        return self.env[key]

    def client_env(self) -> dict[str, str]:
        """The environment of a program using the stack, as `MLSD_ENV_FILE=... ./dev.sh` gives it."""
        env = {**self.stack.process_env(), "MLSD_ENV_FILE": str(self.env_file)}
        env.pop("MLSD_STACK_ID")  # not part of the stack: the leftover check must not count it
        return env

    def command(self, *args: str, timeout: float = 900, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """A project command in production mode."""
        return subprocess.run([sys.executable, *args], cwd=ROOT, env={**self.client_env(), **(extra_env or {})},
                              capture_output=True, text=True, timeout=timeout)

    def stack_command(self, *args: str) -> subprocess.CompletedProcess:
        completed = self.command("-m", "orchestration.stack", *args, timeout=300)
        assert completed.returncode == 0, f"stack {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}"
        return completed


def _small_world() -> dict[str, str]:
    """Ad click's small settings as the environment variables that set them."""
    from tests.conftest import case_named

    case = case_named("ad_click")
    return {f"{case.env_prefix}{name.upper()}": str(value) for name, value in case.small.items()}


@pytest.fixture(scope="session")
def production_stack(tmp_path_factory):
    from bentos.server import free_port
    from orchestration.stack import Stack, processes_with_marker, write_env_file

    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: `./dev.sh setup` installs it (Debian package redis-server)")
    state = tmp_path_factory.mktemp("production")
    # PostgreSQL runs as the `postgres` user, which cannot enter pytest's private temporary folders.
    stack_dir = Path(tempfile.mkdtemp(prefix="mlsd-stack-"))
    stack_dir.chmod(0o755)
    env_file = write_env_file(
        state / "production.env", state, postgres_port=free_port(), redis_port=free_port(), mlflow_port=free_port(),
        dagster_port=free_port(),
        extra={"MLSD_STACK_DIR": str(stack_dir), "BENTOML_HOME": str(state / "bentoml"), **_small_world()},
    )
    running = RunningStack(env_file, Stack.from_env_file(env_file))
    try:
        running.stack_command("up")
        yield running
    finally:
        logs = ARTIFACTS / "stack-logs"
        shutil.rmtree(logs, ignore_errors=True)
        if (stack_dir / "logs").exists():
            shutil.copytree(stack_dir / "logs", logs)
        first = running.command("-m", "orchestration.stack", "down", timeout=300)
        second = running.command("-m", "orchestration.stack", "down", timeout=300)
        leftovers = processes_with_marker(running.stack.stack_id)
        shutil.rmtree(stack_dir, ignore_errors=True)
        assert first.returncode == 0, first.stderr
        assert second.returncode == 0 and "stopped" not in second.stdout, second.stdout
        assert not leftovers, f"processes left behind after `stack down`: {leftovers}"


@pytest.fixture(scope="session")
def production_ad_click(production_stack):
    """The ad click pipeline, materialized once against the production stack by the README's command."""
    completed = production_stack.command("-m", "orchestration.main", "run", "ad_click")
    assert completed.returncode == 0, f"production run failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return completed.stdout
