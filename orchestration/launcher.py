"""The run launcher of the daemon's runs (UI launches, sensors, schedules): each run worker is forked from a process
that has already imported the heavy libraries, instead of a fresh interpreter that imports them for every run.

Dagster's default launcher asks the code server to spawn `dagster api execute_run` in a new interpreter. On 2 cores
that interpreter spent 8 to 12 s before the run started and several more importing Great Expectations (5 s),
MLflow (3 s), PyTorch and XGBoost (2 s each) in its first steps, which made a small training job twice as slow from
the UI as in-process (README "UI launches"). Here a forkserver imports those libraries once, when the daemon first
needs it, and every run is forked from it and executed exactly as `dagster api execute_run` executes it.

The project's own modules are never preloaded: a run imports them fresh, so "Reload definitions" after an edit runs
the edited code. Termination is what Dagster's run worker already honours: the run is marked canceling and the
worker gets SIGINT.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from dagster._config.config_schema import UserConfigSchema
from dagster._core.launcher.base import LaunchRunContext, RunLauncher
from dagster._serdes import ConfigurableClass, ConfigurableClassData

# Third-party libraries only (see the module docstring): what the cases' steps import, found by listing the modules a
# run worker still imported after these (bench/ui_launch.py measures the effect).
DEFAULT_PRELOAD = (
    "dagster._cli.api", "dagster._core.storage.event_log.sqlite", "dagster._core.storage.runs.sqlite",
    "dagster_postgres", "polars", "numpy",
    "scipy.stats", "great_expectations", "torch", "torch._dynamo", "xgboost", "faiss",
    "sklearn.linear_model", "sklearn.compose", "sklearn.pipeline", "sklearn.preprocessing", "sklearn.impute",
    "sklearn.metrics", "matplotlib.pyplot", "bentoml",
    # MLflow's flavours and stores import much of scikit-learn, SQLAlchemy, Alembic and OpenTelemetry on first use.
    "mlflow", "mlflow.pyfunc", "mlflow.sklearn", "mlflow.xgboost", "mlflow.pytorch", "mlflow.tracing",
    "mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store", "skops.io", "git",
)
PID_TAG = "mlsd/run_worker_pid"


def execute_run_worker(serialized_args: str) -> None:
    """The run worker's body in the forked process: what `dagster api execute_run ARGS` does."""
    from dagster._cli.api import execute_run_command

    execute_run_command.main(args=[serialized_args], standalone_mode=False)


class PreloadedRunLauncher(RunLauncher, ConfigurableClass):
    """Launches each run in a process forked from a forkserver with `preload_modules` imported."""

    def __init__(self, preload_modules: Sequence[str] = DEFAULT_PRELOAD, inst_data: ConfigurableClassData | None = None):
        self._inst_data = inst_data
        self._preload = list(preload_modules)
        self._context = None
        self._lock = threading.Lock()
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        from dagster import Array, Field

        return {"preload_modules": Field(Array(str), is_required=False, default_value=list(DEFAULT_PRELOAD))}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> PreloadedRunLauncher:
        return cls(preload_modules=config_value.get("preload_modules", DEFAULT_PRELOAD), inst_data=inst_data)

    def _forkserver(self):
        with self._lock:
            if self._context is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(self._preload)
                self._context = context
            return self._context

    def launch_run(self, context: LaunchRunContext) -> None:
        from dagster._grpc.types import ExecuteRunArgs
        from dagster._serdes import serialize_value

        run = context.dagster_run
        if run.job_code_origin is None:
            raise ValueError(f"run {run.run_id} has no code origin to execute")
        args = ExecuteRunArgs(job_origin=run.job_code_origin, run_id=run.run_id, instance_ref=self._instance.get_ref())
        worker = self._forkserver().Process(target=execute_run_worker, args=(serialize_value(args),),
                                            name=f"dagster-run-{run.run_id[:8]}")
        worker.start()
        self._instance.add_run_tags(run.run_id, {PID_TAG: str(worker.pid)})
        # The worker reports its own progress and end to the instance; only its exit code is waited for here, so
        # it leaves no zombie behind.
        threading.Thread(target=worker.join, daemon=True, name=f"join-{run.run_id[:8]}").start()

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished or PID_TAG not in run.tags:
            return False
        self._instance.report_run_canceling(run)
        try:
            os.kill(int(run.tags[PID_TAG]), signal.SIGINT)
        except ProcessLookupError:
            return False
        return True
