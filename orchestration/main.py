"""The main command, run in-process on the project's Dagster instance ($DAGSTER_HOME), for every registered case study.

    python -m orchestration.main run [CASE ...]    each case's steps (default: every case): ingestion, training,
                                                   promotion, packaging, batch outputs; then results and front table
    python -m orchestration.main train CASE        training, promotion and packaging only (the raw data must exist)
    python -m orchestration.main rollback CASE     champion back to the version it replaced; bento rebuilt
    python -m orchestration.main live CASE --train-days 21
                                                   production played forward: train on the first days, then the rest
                                                   arrive one by one and each is monitored for drift
    python -m orchestration.main cases             each case study, its chapter, metric and champion
    python -m orchestration.main settings [CASE]   every environment variable, its type and default
    python -m orchestration.main serve CASE|BENTO  `bentoml serve` of the case's latest bento (Ctrl-C stops it)
Runs are recorded in the instance, so `./dev.sh ui` shows them afterwards.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass

import dagster as dg

from assets.case import CaseStudy, EveryPartition, GatedTraining, LatestPartition
from orchestration.settings import Settings

# The run tags Dagster's single-run backfills carry (a run over a range of partitions), as the UI's backfills set them.
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"

# Progress lines stay readable (failures are reported by _fail); every event is still stored for the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def quiet_libraries(state_dir) -> str:
    """The libraries' own lines (MLflow's database set-up and model-logging warnings, Alembic's migrations, the
    registry's messages) go to a log file instead of between the progress lines; returns its path."""
    import mlflow  # noqa: F401 - configures its loggers on import: replace what it set up, after it

    folder = state_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(folder / "main.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("mlflow", "alembic", "bentoml", "great_expectations"):
        library = logging.getLogger(name)
        library.handlers = [handler]
        library.propagate = False
        library.setLevel(logging.INFO)
    return str(folder / "main.log")


def _failed_checks(result, gate: str | None = None) -> dict[str, str]:
    """Checks that failed with ERROR severity, and the `gate` (a promotion check) however it failed. Any other
    warning blocks nothing: the run goes on, and the main command prints it."""
    failed = {}
    for e in result.get_asset_check_evaluations():
        summary = e.metadata["summary"].value if "summary" in e.metadata else "failed"
        if e.passed:
            continue
        if e.severity == dg.AssetCheckSeverity.ERROR or e.asset_check_key.name == gate:
            failed[e.asset_check_key.name] = summary
        else:
            print(f"  warning: {e.asset_check_key.name}: {summary}", flush=True)
    return failed


def _execute(job: dg.JobDefinition, instance: dg.DagsterInstance, **kwargs):
    config = {**QUIET, **kwargs.pop("run_config", {})}
    return job.execute_in_process(instance=instance, raise_on_error=False, run_config=config, **kwargs)


def _step_failures(result) -> list:
    return [e for e in result.all_events if e.is_step_failure]


def _fail(what: str, result, failed: dict[str, str]):
    # A server that is down fails resource set-up before any step: that error is the one to show.
    setup = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RESOURCE_INIT_FAILURE]
    errors = [str(e.event_specific_data.error.message).strip() for e in [*setup, *_step_failures(result)]]
    raise SystemExit(f"{what} failed (run {result.run_id}): " + "; ".join([*failed.values(), *errors]))


@dataclass
class Runner:
    """Carries out a case's steps on one instance, printing progress lines prefixed by the case's name."""

    defs: dg.Definitions
    instance: dg.DagsterInstance

    def partitions(self, job: str) -> list[str]:
        return self.defs.resolve_job_def(job).partitions_def.get_partition_keys()

    def every_partition(
        self, case: CaseStudy, job: str, what: str, keys: list[str] | None = None, single_run: bool = False
    ) -> list[str]:
        definition = self.defs.resolve_job_def(job)
        keys = keys or definition.partitions_def.get_partition_keys()
        started = time.monotonic()
        # One run over the whole range, or one run a partition: (label, run arguments) for each run.
        if single_run and len(keys) > 1:
            label = f"{keys[0]}..{keys[-1]}"
            print(f"[{case.name}] {what}: {len(keys)} partitions {label} in one run...", flush=True)
            runs = [(label, {"tags": {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}})]
        else:
            runs = [(f"{i}/{len(keys)} {key}", {"partition_key": key}) for i, key in enumerate(keys, 1)]
        for label, arguments in runs:
            result = _execute(definition, self.instance, **arguments)
            print(f"[{case.name}] {what} {label}: {'ok' if result.success else 'FAILED'} "
                  f"({time.monotonic() - started:.0f}s)", flush=True)
            failed = _failed_checks(result)
            if not result.success or failed:
                _fail(f"{case.name} {job} for {label.split()[-1]}", result, failed)
        return keys

    def gated_training(self, case: CaseStudy, job: str, check: str, what: str, tags: dict | None = None) -> str:
        """Runs a training job; returns the promotion decision. A challenger that loses is not an error."""
        print(f"[{case.name}] training: {what}...", flush=True)
        started = time.monotonic()
        result = _execute(self.defs.resolve_job_def(job), self.instance, tags=tags)
        failed = _failed_checks(result, gate=check)
        decision = failed.pop(check, None)
        if failed or _step_failures(result) or not result.success:
            _fail(f"{case.name} training run", result, {check: decision, **failed} if decision else failed)
        outcome = f"champion kept: {decision}" if decision else "challenger promoted to champion"
        print(f"[{case.name}] promotion: {outcome} ({time.monotonic() - started:.0f}s)", flush=True)
        return outcome

    def latest_partition(self, case: CaseStudy, job: str, what: str, needs_champion: bool) -> None:
        if needs_champion and self.instance.get_latest_materialization_event(dg.AssetKey(case.key("champion"))) is None:
            print(f"[{case.name}] {what}: skipped, no champion yet", flush=True)
            return
        key = self.partitions(job)[-1]
        self.one_partition(case, job, what, key)

    def one_partition(self, case: CaseStudy, job: str, what: str, key: str) -> None:
        result = _execute(self.defs.resolve_job_def(job), self.instance, partition_key=key)
        if not result.success:
            _fail(f"{case.name} {what} of {key}", result, {})
        print(f"[{case.name}] {what} {key}: written", flush=True)

    def run(self, case: CaseStudy) -> str | None:
        """The case's declared steps, in order; returns the promotion decision of its training step."""
        decision = None
        for step in case.run_steps:
            if isinstance(step, EveryPartition):
                self.every_partition(case, step.job, step.what, single_run=step.single_run)
            elif isinstance(step, GatedTraining):
                decision = self.gated_training(case, step.job, step.check, step.what)
            elif isinstance(step, LatestPartition):
                self.latest_partition(case, step.job, step.what, step.needs_champion)
            else:  # pragma: no cover - a new step kind needs its branch here
                raise TypeError(f"unknown step {step!r}")
        return decision

    def train(self, case: CaseStudy, tags: dict | None = None) -> str:
        return self.gated_training(case, case.training_job, case.promotion_check, "training job", tags)

    def rollback(self, case: CaseStudy) -> str:
        result = _execute(self.defs.resolve_job_def(case.rollback_job), self.instance)
        if not result.success:
            _fail(f"{case.name} rollback", result, {})
        event = self.instance.get_latest_materialization_event(dg.AssetKey(case.key("champion")))
        return event.asset_materialization.metadata["reason"].value

    @staticmethod
    def _single_run(case: CaseStudy, job: str) -> bool:
        return any(isinstance(s, EveryPartition) and s.job == job and s.single_run for s in case.run_steps)

    def live(self, case: CaseStudy, train_days: int) -> None:
        if not (case.daily_job and case.monitoring_job):
            raise SystemExit(f"{case.name} has no daily ingestion and monitoring jobs to play forward")
        keys = self.partitions(case.daily_job)
        if not 0 < train_days < len(keys):
            raise SystemExit(f"--train-days must be between 1 and {len(keys) - 1}")
        self.every_partition(case, case.daily_job, "day", keys[:train_days], single_run=self._single_run(case, case.daily_job))
        self.train(case)
        for key in keys[train_days:]:
            self.every_partition(case, case.daily_job, "day", [key])
            self.one_partition(case, case.monitoring_job, "drift report", key)
            report = self.instance.get_latest_materialization_event(dg.AssetKey(case.key("drift_report")))
            if report is not None and "signals" in report.asset_materialization.metadata:
                print(f"[{case.name}] drift {key}: {report.asset_materialization.metadata['signals'].value}", flush=True)
        print(f"[{case.name}] turn on {case.name}_drift_sensor in the Dagster UI (Automation) with the daemon running "
              "(./dev.sh ui): it requests one retraining run per drift episode")


def _metadata(instance: dg.DagsterInstance, asset: str):
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    return event.asset_materialization.metadata if event else None


def _value(metadata, key: str):
    return metadata[key].value if metadata and key in metadata else None


def champion_line(case: CaseStudy, instance: dg.DagsterInstance) -> list[str]:
    lines = []
    champion = _metadata(instance, case.key("champion"))
    if champion:
        lines.append(f"champion: {case.registered_model} v{_value(champion, 'champion_version')}")
    bento = _metadata(instance, case.key("bento"))
    if bento:
        lines.append(f"bento: {_value(bento, 'bento_tag')}  (serve it: ./dev.sh serve {case.name})")
    return lines


def results(case: CaseStudy, instance: dg.DagsterInstance) -> str:
    metadata = _metadata(instance, case.evaluation_asset)
    if metadata is None:
        return ""
    lines = [f"\n{case.title} (ch. {case.chapter}), held-out test data; the book's metric: {case.metric}"]
    lines.append(str(_value(metadata, "comparison")))
    if _value(metadata, "evaluation_note"):
        lines.append(str(_value(metadata, "evaluation_note")))
    lines.append(f"MLflow run: {_value(metadata, 'mlflow_run')}  (./dev.sh mlflow-ui)")
    lines += champion_line(case, instance)
    return "\n".join(lines)


def _figure(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def front_table(cases: tuple[CaseStudy, ...], instance: dg.DagsterInstance, seconds: dict[str, float]) -> str:
    """The README's front table, from the registry and what the main command measured."""
    lines = ["| case study | ch. | predicts | metric | best baseline | champion | oracle | serving | serve it | main run |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for case in cases:
        metadata = _metadata(instance, case.evaluation_asset)
        champion = _metadata(instance, case.key("champion"))
        model = _figure(_value(metadata, "model_value"))
        if champion:
            model += f" (v{_value(champion, 'champion_version')})"
        baseline = f"{_figure(_value(metadata, 'baseline_value'))} ({_value(metadata, 'baseline') or 'none'})"
        took = f"{seconds[case.name]:.0f} s" if case.name in seconds else "not run"
        lines.append(f"| {case.title} | {case.chapter} | {case.predicts} | {case.metric} | {baseline} | {model} | "
                     f"{_figure(_value(metadata, 'oracle_value'))} | {case.serving} | `./dev.sh serve {case.name}` | {took} |")
    return "\n".join(lines)


def list_cases(cases: tuple[CaseStudy, ...], instance: dg.DagsterInstance) -> str:
    lines = []
    width = max((len(case.name) for case in cases), default=0) + 1
    for case in cases:
        champion = _metadata(instance, case.key("champion"))
        serving = f"champion v{_value(champion, 'champion_version')}" if champion else "no champion yet"
        lines.append(f"{case.name:<{width}} ch. {case.chapter:<3} {case.title}: {case.metric}; {serving}")
    return "\n".join(lines)


def run_cases(defs: dg.Definitions, instance: dg.DagsterInstance, cases: tuple[CaseStudy, ...]) -> dict[str, float]:
    """The main job: every given case's steps; returns the seconds each took."""
    runner, seconds = Runner(defs, instance), {}
    for case in cases:
        started = time.monotonic()
        runner.run(case)
        seconds[case.name] = time.monotonic() - started
        print(f"[{case.name}] done in {seconds[case.name]:.0f}s", flush=True)
    return seconds


def serve(bento: str, env: dict[str, str], port: int) -> int:
    """Replaces this process with the supervised `bentoml serve` (Ctrl-C stops it and everything it started)."""
    import os

    bin_dir = os.path.dirname(sys.executable)
    os.environ.update(env)
    print(f"serving {bento} at http://127.0.0.1:{port} (OpenAPI: /docs)", flush=True)
    command = [sys.executable, "-m", "orchestration.supervise", "--", os.path.join(bin_dir, "bentoml"), "serve", bento,
               "--host", "127.0.0.1", "--port", str(port)]
    os.execv(sys.executable, command)
    return 0  # pragma: no cover - execv does not return


def main(argv: list[str] | None = None, registry: tuple[CaseStudy, ...] | None = None) -> int:
    from orchestration.cases import find, registered

    registry = registered() if registry is None else registry
    names = [c.name for c in registry]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "train", "rollback", "live", "cases", "settings", "serve"])
    parser.add_argument("case", nargs="*", help=f"case studies ({', '.join(names)}); run: default all")
    parser.add_argument("--case", dest="case_option", action="append", default=[], help="same as the positional names")
    parser.add_argument("--train-days", type=int, default=21, help="live: days that arrive before the first training")
    parser.add_argument("--port", type=int, default=3030, help="serve: the loopback port")
    args = parser.parse_args(argv)
    if args.command == "serve" and len(args.case) == 1 and ":" in args.case[0]:
        return serve(args.case[0], {}, args.port)  # a bento tag, as `bentoml list` shows it
    try:
        chosen = tuple(find(name, registry) for name in [*args.case, *args.case_option])
    except ValueError as error:
        parser.error(str(error))
    if args.command == "settings":
        from orchestration.settings import settings_table

        print(settings_table(chosen or registry))
        return 0
    if args.command in ("train", "rollback", "live", "serve") and len(chosen) != 1:
        parser.error(f"{args.command} takes one case study: {' | '.join(names)}")
    settings = Settings.from_env(cases=registry)
    log = quiet_libraries(settings.platform.state_dir)
    from orchestration.definitions import build_definitions

    defs = build_definitions(settings)
    with dg.DagsterInstance.get() as instance:
        runner = Runner(defs, instance)
        if args.command == "cases":
            print(list_cases(registry, instance))
            return 0
        if args.command == "serve":
            bento = _metadata(instance, chosen[0].key("bento"))
            if bento is None:
                raise SystemExit(f"{chosen[0].name} has no bento yet: ./dev.sh run {chosen[0].name} builds one")
            return serve(_value(bento, "bento_tag"), chosen[0].serving_env(settings.platform), args.port)
        if args.command == "rollback":
            print(f"[{chosen[0].name}] {runner.rollback(chosen[0])}")
            print("\n".join(champion_line(chosen[0], instance)))
            return 0
        seconds = {}
        if args.command == "run":
            seconds = run_cases(defs, instance, chosen or registry)
        elif args.command == "train":
            runner.train(chosen[0])
        else:
            runner.live(chosen[0], args.train_days)
        shown = chosen or registry
        for case in shown:
            print(results(case, instance))
        if args.command == "run":
            table = front_table(shown, instance, seconds)
            (settings.platform.state_dir).mkdir(parents=True, exist_ok=True)
            (settings.platform.state_dir / "front_table.md").write_text(table + "\n")
            print(f"\n{table}\ntotal: {sum(seconds.values()):.0f}s")
        print("Dagster: ./dev.sh ui, then open http://127.0.0.1:3000 (production mode: the stack's webserver)")
        print(f"library messages: {log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
