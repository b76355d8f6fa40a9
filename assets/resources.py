"""Resources: MLflow tracking and registry, and the ad click raw-data source (simulator or your files)."""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import polars as pl

from models.storage import write_parquet_atomically


def raw_files(raw_dir: str, table: str, setting: str) -> list[str]:
    """Your files of one table: <raw_dir>/<table>.parquet and/or <raw_dir>/<table>/*.parquet."""
    files = sorted(glob.glob(os.path.join(raw_dir, f"{table}.parquet")))
    files += sorted(glob.glob(os.path.join(raw_dir, table, "*.parquet")))
    if not files:
        raise FileNotFoundError(f"{setting}={raw_dir}: no {table}.parquet or {table}/*.parquet found")
    return files


class ServiceUnavailable(ConnectionError):
    """A server the run needs does not answer: the message names it, its URL (without password) and the fix."""


def check_reachable(what: str, url: str, probe) -> None:
    from orchestration.settings import redact

    try:
        probe(url)
    except Exception as error:  # noqa: BLE001 - any failure to answer means the same thing here
        raise ServiceUnavailable(
            f"{what} at {redact(url)} is not reachable ({type(error).__name__}: {error}). Start it "
            "(production mode on this machine: ./dev.sh stack up), then run again."
        ) from None


class MlflowTracking(dg.ConfigurableResource):
    """Tracking URI, one artifact location per experiment, and links to the MLflow UI."""

    tracking_uri: str
    artifact_root: str = ""  # empty: the tracking server decides (it serves artifacts over HTTP)
    ui_url: str = "http://127.0.0.1:5000"

    def _configure(self):
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        import mlflow

        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow

    def setup_for_execution(self, context) -> None:
        # A tracking server that is down fails the run at once and says so; MLflow's own client would retry for
        # minutes and then report a bare connection error from deep inside a step.
        if self.tracking_uri.startswith(("http://", "https://")):
            from orchestration.health import mlflow_server

            check_reachable("MLflow tracking server", self.tracking_uri, mlflow_server)

    def client(self):
        mlflow = self._configure()
        return mlflow.MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        client = self.client()
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        if not self.artifact_root:
            return client.create_experiment(name)  # the tracking server's own artifact store
        location = self.artifact_root if "://" in self.artifact_root else Path(self.artifact_root).resolve().as_uri()
        return client.create_experiment(name, artifact_location=f"{location.rstrip('/')}/{name}")

    @contextlib.contextmanager
    def start_run(self, experiment: str, run_name: str, tags: dict[str, str] | None = None) -> Iterator:
        mlflow = self._configure()
        with mlflow.start_run(experiment_id=self.experiment_id(experiment), run_name=run_name, tags=tags) as run:
            yield run

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version an alias points at, or None when the model or the alias does not exist yet."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client().get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def model_url(self, name: str, version: str | int) -> str:
        return f"{self.ui_url.rstrip('/')}/#/models/{name}/versions/{version}"


class RawSource(dg.ConfigurableResource):
    """A case study's raw data: parquet files of your own in `raw_dir`, or its seeded simulator (output cached in
    `landing_dir`). Only the simulator knows the truth the evaluation compares with (the oracle)."""

    raw_dir: str | None = None
    landing_dir: str
    start_date: str = "2026-01-01"
    days: int = 28
    seed: int = 7

    @property
    def has_oracle(self) -> bool:
        return self.raw_dir is None

    @property
    def description(self) -> str:
        return f"your files in {self.raw_dir}" if self.raw_dir else f"simulator (seed {self.seed})"


class AdClickSource(RawSource):
    """Where raw ad click data comes from: the seeded simulator, or parquet files of your own.

    Your files (README "Bring your own data") live in `raw_dir` as users.parquet, ads.parquet and
    impressions.parquet or impressions/*.parquet. The simulator's output is cached in `landing_dir`, keyed by
    its configuration, so every partition reads the same world.
    """

    users: int = 20_000
    ads: int = 1_500
    advertisers: int = 150
    impressions_per_day: int = 60_000
    drift_kind: str = "none"
    drift_day: int = 0

    def simulation_config(self):
        from models.ad_click.simulator import SimulationConfig

        return SimulationConfig(
            seed=self.seed,
            start_date=date.fromisoformat(self.start_date),
            n_days=self.days,
            n_users=self.users,
            n_ads=self.ads,
            n_advertisers=self.advertisers,
            impressions_per_day=self.impressions_per_day,
            drift_kind=self.drift_kind,
            drift_day=self.drift_day,
        )

    def _landing(self) -> Path:
        """The simulated world's tables, simulated once per configuration."""
        config = self.simulation_config()
        folder = Path(self.landing_dir) / f"sim-{config.fingerprint()}"
        tables = ("users", "ads", "impressions", "oracle")
        if not all((folder / f"{t}.parquet").exists() for t in tables):
            from models.ad_click.simulator import simulate

            world = simulate(config)
            for table in tables:
                write_parquet_atomically(getattr(world, table), folder / f"{table}.parquet")
        return folder

    def _files(self, table: str) -> list[str]:
        assert self.raw_dir is not None
        return raw_files(self.raw_dir, table, "MLSD_AD_CLICK_RAW_DIR")

    def _scan(self, table: str, columns: dict) -> pl.LazyFrame:
        frame = pl.scan_parquet(self._files(table)) if self.raw_dir else pl.scan_parquet(self._landing() / f"{table}.parquet")
        available = frame.collect_schema().names()
        # Contract columns only: extras are ignored, and a missing column is reported by the blocking check.
        return frame.select([c for c in columns if c in available])

    def table(self, table: str, columns: dict) -> pl.DataFrame:
        return self._scan(table, columns).collect()

    def events_between(self, table: str, columns: dict, start: datetime, end: datetime) -> pl.DataFrame:
        frame = self._scan(table, columns)
        ts_type = frame.collect_schema().get("ts")
        if ts_type is None:
            raise ValueError(f"{table}: column 'ts' is missing; the raw-input contract needs it (datetime, UTC)")
        if not isinstance(ts_type, pl.Datetime):
            raise ValueError(f"{table}.ts has type {ts_type}; the raw-input contract needs a UTC datetime")
        ts = pl.col("ts") if ts_type.time_zone else pl.col("ts").dt.replace_time_zone("UTC")
        return frame.filter((ts >= start) & (ts < end)).collect()

    def data_window(self) -> tuple[date, int]:
        """First day and number of days covered by the impressions (your files) or the simulation."""
        if not self.raw_dir:
            return date.fromisoformat(self.start_date), self.days
        bounds = pl.scan_parquet(self._files("impressions")).select(
            first=pl.col("ts").min(), last=pl.col("ts").max()
        ).collect()
        first, last = bounds["first"][0], bounds["last"][0]
        if first is None:
            raise ValueError(f"MLSD_AD_CLICK_RAW_DIR={self.raw_dir}: impressions are empty")
        to_utc = (lambda t: t.astimezone(timezone.utc)) if first.tzinfo else (lambda t: t)
        first_day, last_day = to_utc(first).date(), to_utc(last).date()
        return first_day, (last_day - first_day + timedelta(days=1)).days


class OnlineFeatureStore(dg.ConfigurableResource):
    """The online feature store serving reads: sqlite:///<file> (embedded default) or redis://host:port/db."""

    url: str

    def setup_for_execution(self, context) -> None:
        if self.url.startswith(("redis://", "rediss://")):
            from orchestration.health import redis_server

            check_reachable("online feature store (Redis)", self.url, redis_server)

    def open(self, namespace: str):
        from models.online_store import open_store

        return open_store(self.url, namespace)


class BentoPackager(dg.ConfigurableResource):
    """Runs bentos/package.py in its own process with this project's BentoML store and MLflow registry."""

    bentoml_home: str
    mlflow_tracking_uri: str

    def run(self, *args: str) -> dict:
        import json
        import subprocess
        import sys

        env = {
            **os.environ,
            "BENTOML_HOME": self.bentoml_home,
            "BENTOML_DO_NOT_TRACK": "true",
            # Both URIs: mlflow.set_*_uri also write these variables, so a parent may hold stale ones.
            "MLFLOW_TRACKING_URI": self.mlflow_tracking_uri,
            "MLFLOW_REGISTRY_URI": self.mlflow_tracking_uri,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        }
        root = Path(__file__).resolve().parents[1]
        env["PYTHONPATH"] = f"{root}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(root)
        completed = subprocess.run(
            [sys.executable, "-m", "bentos.package", *args], cwd=root, env=env, capture_output=True, text=True
        )
        if completed.returncode != 0:
            raise RuntimeError(f"bentos.package {' '.join(args)} failed:\n{completed.stderr[-4000:]}")
        return json.loads(completed.stdout.strip().splitlines()[-1])


class EventStream(dg.ConfigurableResource):
    """The Redis stream of ad events and where the consumer lands them in the lake."""

    url: str
    lake_dir: str


class VideoRecSource(RawSource):
    """Where raw video data comes from: the seeded simulator, or your parquet files in `raw_dir`
    (users.parquet, videos.parquet, interactions.parquet or interactions/*.parquet; README "Video recommendation")."""

    seed: int = 11
    users: int = 3_000
    videos: int = 3_000
    new_videos_per_day: int = 60

    def simulation_config(self):
        from models.video_rec.simulator import VideoSimulationConfig

        return VideoSimulationConfig(
            seed=self.seed, start_date=date.fromisoformat(self.start_date), n_days=self.days, n_users=self.users,
            n_videos=self.videos, new_videos_per_day=self.new_videos_per_day,
        )

    def world(self):
        """The simulated world (cached per configuration in this process): tables and latent truth."""
        return _simulated_world(self.simulation_config())

    def table(self, table: str, columns: dict) -> pl.DataFrame:
        if self.raw_dir:
            frame = pl.read_parquet(raw_files(self.raw_dir, table, "MLSD_VIDEO_REC_RAW_DIR"))
        else:
            folder = Path(self.landing_dir) / f"sim-{self.simulation_config().fingerprint()}"
            path = folder / f"{table}.parquet"
            if not path.exists():
                world = self.world()
                for name in ("users", "videos", "interactions"):
                    write_parquet_atomically(getattr(world, name), folder / f"{name}.parquet")
            frame = pl.read_parquet(path)
        if table == "videos" and "channel_id" not in frame.columns:
            frame = frame.with_columns(channel_id=pl.lit(None, pl.String))  # optional column (per-channel rule off)
        # Contract columns only: extras are ignored, and a missing column is reported by the blocking check.
        return frame.select([c for c in columns if c in frame.columns])

    def oracle(self):
        """The generator's P(next view is the video and relevant) for (user_ids, as_of), or None for your data."""
        if not self.has_oracle:
            return None
        world = self.world()
        start = datetime.combine(date.fromisoformat(self.start_date), datetime.min.time(), tzinfo=timezone.utc)
        return lambda user_ids, as_of: world.expected_relevant(user_ids, (as_of - start).total_seconds() / 86_400)


_WORLDS: dict = {}


def _simulated_world(config):
    if config not in _WORLDS:
        from models.video_rec.simulator import simulate

        _WORLDS.clear()  # one world at a time: they are large
        _WORLDS[config] = simulate(config)
    return _WORLDS[config]
