"""The production configuration and the stack command's pure parts (the servers themselves: tests/production)."""

from __future__ import annotations

import stat

import pytest

from assets.resources import redact
from orchestration.stack import Stack, StackError, read_env_file, write_env_file


def test_env_file_has_fresh_password_private_mode_and_loads_back(tmp_path):
    first = read_env_file(write_env_file(tmp_path / "a.env", tmp_path / "state"))
    second = read_env_file(write_env_file(tmp_path / "b.env", tmp_path / "state"))
    assert first["MLSD_DAGSTER_POSTGRES_URL"] != second["MLSD_DAGSTER_POSTGRES_URL"], "every file gets its own password"
    assert stat.S_IMODE((tmp_path / "a.env").stat().st_mode) == 0o600
    assert first["MLSD_MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    stack = Stack.from_env_file(tmp_path / "a.env")
    assert [s.name for s in stack.services()] == ["postgres", "redis", "mlflow", "dagster-webserver", "dagster-daemon"]
    assert stack.folder == tmp_path / "state" / "stack"


def test_services_on_other_hosts_are_left_alone(tmp_path):
    path = write_env_file(tmp_path / "p.env", tmp_path / "state")
    text = path.read_text().replace("127.0.0.1:5433", "db.internal:5432").replace("127.0.0.1:6380", "cache.internal:6379")
    text = text.replace("http://127.0.0.1:5000", "https://mlflow.internal")
    path.write_text(text)
    assert [s.name for s in Stack.from_env_file(path).services()] == ["dagster-webserver", "dagster-daemon"]


def test_settings_read_from_the_production_file(tmp_path):
    from orchestration.settings import Settings

    env = read_env_file(write_env_file(tmp_path / "p.env", tmp_path / "state"))
    settings = Settings.from_env(env).platform
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert settings.mlflow_artifact_root == "", "the tracking server decides where artifacts go"
    assert settings.online_store_url.startswith("redis://:")
    assert settings.state_dir == tmp_path / "state"


@pytest.mark.parametrize(
    "line, problem",
    [("NOT A PAIR", "expected KEY=VALUE"), ("MLSD_DAGSTER_POSTGRES_URL=postgresql://u:p@127.0.0.1/db", "must name its driver")],
)
def test_bad_env_file_names_the_line_or_key(tmp_path, line, problem):
    path = write_env_file(tmp_path / "p.env", tmp_path / "state")
    path.write_text(path.read_text() + line + "\n")
    with pytest.raises(StackError, match=problem):
        Stack.from_env_file(path)


def test_env_file_missing_a_setting_says_which(tmp_path):
    path = tmp_path / "p.env"
    path.write_text("MLSD_STATE_DIR=/x\n# a comment\n\nDAGSTER_HOME=/x/dagster\n")
    with pytest.raises(StackError, match="missing MLSD_DAGSTER_POSTGRES_URL, MLSD_MLFLOW_TRACKING_URI, MLSD_ONLINE_STORE_URL"):
        Stack.from_env_file(path)


def test_redact_hides_only_the_password():
    assert redact("redis://:s3cret@127.0.0.1:6380/0") == "redis://:***@127.0.0.1:6380/0"
    assert redact("postgresql+psycopg2://mlsd:s3cret@db:5432/x") == "postgresql+psycopg2://mlsd:***@db:5432/x"
    assert redact("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_unreachable_server_error_names_service_and_url_without_password():
    from bentos.server import free_port
    from assets.resources import OnlineFeatureStore, ServiceUnavailable

    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(ServiceUnavailable) as raised:
        OnlineFeatureStore(url=url).setup_for_execution(None)
    message = str(raised.value)
    assert f"online feature store (Redis) at {redact(url)} is not reachable" in message
    assert "s3cret" not in message


def test_the_settings_table_keeps_three_columns_for_optional_settings():
    from orchestration.cases import registered
    from orchestration.settings import settings_table

    rows = settings_table(registered()).splitlines()
    assert all(row.count("|") == 4 for row in rows), [row for row in rows if row.count("|") != 4]
    assert "| `MLSD_VIDEO_REC_DAYS` | int or None | None |" in rows
