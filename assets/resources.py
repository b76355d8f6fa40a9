"""Resources every case study shares: MLflow tracking and registry, the bento packager, the online feature store,
and the bring-your-own-data source base. Each is configured from the environment in one place (orchestration)."""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterator
from typing import ClassVar
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import polars as pl

from models.storage import write_parquet_atomically


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parsed = urlparse(url)
    if not parsed.password:
        return url
    return parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@")).geturl()


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
    try:
        probe(url)
    except Exception as error:  # noqa: BLE001 - any failure to answer means the same thing here
        raise ServiceUnavailable(
            f"{what} at {redact(url)} is not reachable ({type(error).__name__}: {error}). Start it "
            "(production mode on this machine: ./dev.sh stack up), then run again."
        ) from None


_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


class MlflowTracking(dg.ConfigurableResource):
    """Tracking URI, one artifact location per experiment, and links to the MLflow UI.

    `client()` is self-contained. MLflow's fluent API (start_run, log_model, load_model, register_model) reads
    process-wide URIs; `activated()` sets them for a block and puts back what was there, so no caller inherits
    another's tracking server by accident.
    """

    tracking_uri: str
    artifact_root: str = ""  # empty: the tracking server decides (it serves artifacts over HTTP)
    ui_url: str = "http://127.0.0.1:5000"

    def setup_for_execution(self, context) -> None:
        # A tracking server that is down fails the run at once and says so; MLflow's own client would retry for
        # minutes and then report a bare connection error from deep inside a step.
        if self.tracking_uri.startswith(("http://", "https://")):
            from assets.health import mlflow_server

            check_reachable("MLflow tracking server", self.tracking_uri, mlflow_server)

    def _prepare(self) -> None:
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

    def client(self):
        import mlflow

        self._prepare()
        return mlflow.MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    @contextlib.contextmanager
    def activated(self) -> Iterator:
        """MLflow's fluent API pointed at this tracking server and registry inside the block; restored after."""
        import mlflow
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        self._prepare()
        saved_env = {name: os.environ.get(name) for name in _URI_VARIABLES}
        saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            yield mlflow
        finally:
            tracking_utils._tracking_uri, registry_utils._registry_uri = saved
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def download(self, run_id: str, artifact_path: str, into: str) -> Path:
        """A run's artifact (file or folder) downloaded into the folder `into`; returns its local path."""
        with self.activated() as mlflow:
            return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=into))

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
        with self.activated() as mlflow:
            with mlflow.start_run(experiment_id=self.experiment_id(experiment), run_name=run_name, tags=tags) as run:
                yield run

    def load_pyfunc(self, model_uri: str):
        with self.activated() as mlflow:
            return mlflow.pyfunc.load_model(model_uri)

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    def run_link(self, run) -> dict:
        """The Dagster metadata that links an asset to its MLflow run."""
        return {
            "mlflow_run": dg.MetadataValue.url(self.run_url(run.info.experiment_id, run.info.run_id)),
            "mlflow_run_id": run.info.run_id,
        }

    def alias_version(self, name: str, alias: str) -> str | None:
        """The version an alias points at, or None when the model or the alias does not exist yet.

        Any other registry error (permissions, a server fault) propagates: reading it as "no champion" would let
        the promotion check promote without comparing.
        """
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client().get_model_version_by_alias(name, alias).version)
        except MlflowException as error:
            message = str(error).lower()
            no_model = error.error_code == "RESOURCE_DOES_NOT_EXIST" and "registered model" in message
            no_alias = error.error_code == "INVALID_PARAMETER_VALUE" and "alias" in message and "not found" in message
            if no_model or no_alias:
                return None
            raise

    def model_url(self, name: str, version: str | int) -> str:
        return f"{self.ui_url.rstrip('/')}/#/models/{name}/versions/{version}"


class OnlineFeatureStore(dg.ConfigurableResource):
    """The online feature store serving reads: sqlite:///<file> (embedded default) or redis://host:port/db."""

    url: str

    def setup_for_execution(self, context) -> None:
        if self.url.startswith(("redis://", "rediss://")):
            from assets.health import redis_server

            check_reachable("online feature store (Redis)", self.url, redis_server)

    def open(self, namespace: str):
        from models.online_store import open_store

        return open_store(self.url, namespace)

    def publish_records(self, context, namespace: str, records, feature_version: str, as_of: datetime) -> dict:
        """Publishes (entity, key, record) triples as one snapshot (readers switch at once) and returns the asset's
        metadata: records in all and per entity, the as-of time, the snapshot and the store (without a password)."""
        counted: dict[str, int] = {}

        def counting():
            for entity, key, value in records:
                counted[entity] = counted.get(entity, 0) + 1
                yield entity, key, value

        store = self.open(namespace)
        try:
            info = store.publish(counting(), feature_version, as_of.isoformat())
        finally:
            store.close()
        context.log.info(f"published {info.records} records as of {as_of.isoformat()} (snapshot {info.snapshot_id})")
        return {"records": info.records, **{f"{entity}_records": n for entity, n in counted.items()}, "as_of": info.as_of,
                "feature_version": info.feature_version, "snapshot_id": info.snapshot_id, "store": redact(self.url)}


class BentoPackager(dg.ConfigurableResource):
    """Runs bentos/package.py in its own process with this project's BentoML store and MLflow registry (BentoML
    fixes its store location when it is imported, so it cannot share the run's process)."""

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


class RawSource(dg.ConfigurableResource):
    """A case study's raw data: parquet files of your own in `raw_dir`, or its seeded simulator (output cached in
    `landing_dir`, keyed by the simulation's configuration, so every partition and re-run reads the same world).
    Only the simulator knows the truth the evaluation compares with (the oracle).

    A case subclasses it with its simulator's parameters and implements `simulate()` and `fingerprint()`;
    `tables` names what the simulator writes (the oracle included, which no feature reads).
    """

    raw_dir: str | None = None
    raw_dir_setting: str  # the variable that sets raw_dir, named in messages (MLSD_<CASE>_RAW_DIR)
    landing_dir: str
    start_date: str = "2026-01-01"
    days: int = 28
    seed: int = 7

    tables: ClassVar[tuple[str, ...]] = ()

    @property
    def has_oracle(self) -> bool:
        return self.raw_dir is None

    @property
    def description(self) -> str:
        return f"your files in {self.raw_dir}" if self.raw_dir else f"simulator (seed {self.seed})"

    def fingerprint(self) -> str:  # pragma: no cover - every case overrides it
        raise NotImplementedError

    def simulate(self):  # pragma: no cover - every case overrides it
        """The simulated world: an object with one polars frame per name in `tables`."""
        raise NotImplementedError

    def _landing(self) -> Path:
        folder = Path(self.landing_dir) / f"sim-{self.fingerprint()}"
        if not all((folder / f"{t}.parquet").exists() for t in self.tables):
            world = self.simulate()
            for table in self.tables:
                write_parquet_atomically(getattr(world, table), folder / f"{table}.parquet")
        return folder

    def files(self, table: str) -> list[str]:
        if self.raw_dir:
            return raw_files(self.raw_dir, table, self.raw_dir_setting)
        return [str(self._landing() / f"{table}.parquet")]

    def scan(self, table: str, columns: dict | None = None) -> pl.LazyFrame:
        """A table's contract columns only: extras are ignored; a missing column is the blocking check's to report."""
        frame = pl.scan_parquet(self.files(table))
        if columns is None:
            return frame
        available = frame.collect_schema().names()
        return frame.select([c for c in columns if c in available])

    def table(self, table: str, columns: dict | None = None) -> pl.DataFrame:
        return self.scan(table, columns).collect()

    def events_between(self, table: str, columns: dict, start: datetime, end: datetime, ts: str = "ts") -> pl.DataFrame:
        frame = self.scan(table, columns)
        ts_type = frame.collect_schema().get(ts)
        if ts_type is None:
            raise ValueError(f"{table}: column '{ts}' is missing; the raw-input contract needs it (datetime, UTC)")
        if not isinstance(ts_type, pl.Datetime):
            raise ValueError(f"{table}.{ts} has type {ts_type}; the raw-input contract needs a UTC datetime")
        column = pl.col(ts) if ts_type.time_zone else pl.col(ts).dt.replace_time_zone("UTC")
        return frame.filter((column >= start) & (column < end)).collect()

    def daily_partitions(self, table: str) -> dg.DailyPartitionsDefinition:
        """The days monitoring can judge: the simulator's, or those of your `table` (read when the definitions load)."""
        first, days = self.data_window(table)
        return dg.DailyPartitionsDefinition(start_date=first.isoformat(), end_date=(first + timedelta(days=days)).isoformat())

    def data_window(self, table: str, ts: str = "ts") -> tuple[date, int]:
        """First day and number of days an event table covers (your files), or the simulation's window."""
        if not self.raw_dir:
            return date.fromisoformat(self.start_date), self.days
        bounds = pl.scan_parquet(self.files(table)).select(first=pl.col(ts).min(), last=pl.col(ts).max()).collect()
        first, last = bounds["first"][0], bounds["last"][0]
        if first is None:
            raise ValueError(f"{self.raw_dir_setting}={self.raw_dir}: {table} is empty")
        to_utc = (lambda t: t.astimezone(timezone.utc)) if first.tzinfo else (lambda t: t)
        first_day, last_day = to_utc(first).date(), to_utc(last).date()
        return first_day, (last_day - first_day + timedelta(days=1)).days


class EventStream(dg.ConfigurableResource):
    """A case's Redis event stream, and where its consumer lands the events in the lake (empty: it does not)."""

    url: str
    lake_dir: str = ""


class TextEmbeddings(dg.ConfigurableResource):
    """Sentence embeddings of free text (models/text_embeddings.py): the encoder loads once per process, and vectors
    are cached by content hash under `cache_dir`, so a re-run or a second case encoding the same texts reads them."""

    cache_dir: str

    def embed(self, texts, progress=None):
        from models.text_embeddings import TextEmbeddingCache

        return TextEmbeddingCache(self.cache_dir).embed(texts, progress=progress)
