"""The drift kit's Dagster side, shared by every case study: the partitioned drift-report asset, and the sensor that
turns its alarms into one retraining run per drift episode.

A case gives the report its monitors (models.drift.Monitors) and a function that, for the day being monitored,
returns the reference's values, the day's, and its live metrics (`MonitoredDay`); the kit judges the day, logs it to
MLflow and the asset's metadata (PSI per distribution, over the days too) and raises the `alarm` the sensor reads.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dagster as dg
import polars as pl

from assets.common import images_markdown, log_plots, plot_links
from assets.release import PROMOTION_MODE_TAG
from models.drift import Described, DriftReport, Monitors, RetrainPolicy, judge_day

RETRAIN_POLICY = RetrainPolicy()
PSI_HISTORY_DAYS = 60  # days the "PSI over the days" plot looks back
PLOTTED_DISTRIBUTIONS = 8


@dataclass
class MonitoredDay:
    """What a case hands the kit for one day: values per distribution, levels, live metrics, the model judged."""

    reference: Mapping[str, Any]
    current: Mapping[str, Any]
    model_version: str
    reference_levels: Mapping[str, list[float]] = field(default_factory=dict)
    live: Mapping[str, float | None] = field(default_factory=dict)
    live_reference: Mapping[str, float | None] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)  # the case's own figures for the day
    metrics: dict[str, float] = field(default_factory=dict)  # ... and for its MLflow run

    @classmethod
    def of(cls, reference: Described, current: Described, model_version: str, **metadata: Any) -> MonitoredDay:
        """A day as a case's `describe_day` gives it, against the reference its `describe_days` pooled."""
        return cls(
            reference=reference.distributions,
            current={**current.distributions, **{name: values[0] for name, values in current.levels.items()}},
            model_version=model_version, reference_levels=reference.levels, live=current.live,
            live_reference=reference.live, metadata={**metadata, "reference_days": ", ".join(reference.days)},
        )


def held_out_days(mlflow_tracking, registered_model: str, version: str,
                  current_split: Callable[[], tuple[datetime, datetime]]) -> tuple[datetime, datetime]:
    """A registered version's held-out days, as its registration recorded them in its `test_start` and `test_end`
    tags (the reference monitoring compares days with); a version registered without them gets the current split's
    test window."""
    tags = mlflow_tracking.client().get_model_version(registered_model, version).tags
    if "test_start" in tags and "test_end" in tags:
        return datetime.fromisoformat(tags["test_start"]), datetime.fromisoformat(tags["test_end"])
    return current_split()


def _psi_history(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> dict[str, dict[str, float]]:
    """Day -> PSI per distribution, from the earlier reports' metadata (the newest report of each day)."""
    records = instance.fetch_materializations(asset_key, limit=1000).records
    history: dict[str, dict[str, float]] = {}
    for record in sorted(records, key=lambda r: r.storage_id):
        materialization = record.asset_materialization
        if materialization and materialization.partition and "psi" in materialization.metadata:
            history[materialization.partition] = materialization.metadata["psi"].value
    return history


def _plots(day: str, report: DriftReport, monitors: Monitors, history: dict[str, dict[str, float]]) -> dict[str, bytes]:
    from models import plots

    thresholds = {m.name: m.max_psi for m in monitors.distributions}
    top = dict(sorted(report.psi.items(), key=lambda kv: -kv[1])[:15])
    images = {"psi.png": plots.bar_chart(top, f"PSI against the reference, {day}", min(thresholds.values(), default=None))}
    days = sorted({**history, day: report.psi})[-PSI_HISTORY_DAYS:]
    by_day = {**history, day: report.psi}
    if len(days) > 1:
        largest = sorted(report.psi, key=lambda n: -max(by_day[d].get(n, 0.0) for d in days))[:PLOTTED_DISTRIBUTIONS]
        images["psi_over_days.png"] = plots.line_chart(
            [d[5:] for d in days], {n: [by_day[d].get(n, float("nan")) for d in days] for n in largest},
            "PSI per distribution over the days", "day", "PSI",
        )
    return images


def build_drift_report(
    name: str,
    group: str,
    partitions_def: dg.PartitionsDefinition,
    monitors: Monitors,
    monitored_day: Callable[..., MonitoredDay],
    ins: Mapping[str, dg.AssetIn],
    experiment: str,
    description: str,
    required_resource_keys: set[str] = frozenset(),
    kinds: set[str] = frozenset({"polars", "mlflow"}),
) -> dg.AssetsDefinition:
    """The partitioned asset `name`: each day judged against the reference by `monitors`.

    `monitored_day(context, **inputs)` (inputs as declared in `ins`, resources on `context.resources`) returns the
    day's `MonitoredDay`. The value is one row per signal; the metadata carries `alarm` (what the sensor reads),
    the signals, PSI per distribution (also kept for the PSI-over-days plot) and the live metrics.
    """

    def report_asset(context: dg.AssetExecutionContext, **inputs) -> dg.MaterializeResult:
        import mlflow

        day = context.partition_key
        monitored = monitored_day(context, **inputs)
        report = judge_day(day, monitors, monitored.reference, monitored.current, monitored.reference_levels,
                           monitored.live, monitored.live_reference)
        images = _plots(day, report, monitors, _psi_history(context.instance, context.asset_key))
        tracking = context.resources.mlflow_tracking
        live = {f"live_{s.name}": s.value for s in report.signals if s.kind == "live" and s.value is not None}
        with tracking.start_run(experiment, f"drift-{day}", {"day": day, "model_version": monitored.model_version}) as run:
            mlflow.log_metrics({"alarm": float(report.alarm), "breaches": len(report.breaches), "max_psi": report.max_psi,
                                **{f"psi_{k}": v for k, v in report.psi.items()}, **live, **monitored.metrics})
            mlflow.log_dict({"psi": report.psi, "ks": report.ks,
                             "signals": [vars(s) for s in report.signals]}, "drift.json")
            log_plots(images)
        table = pl.DataFrame(
            {
                "signal": [s.name for s in report.signals],
                "kind": [s.kind for s in report.signals],
                "value": [s.value for s in report.signals],
                "reference": [s.reference for s in report.signals],
                "breached": [s.breached for s in report.signals],
                "ks": [report.ks.get(s.name) for s in report.signals],
            },
            schema_overrides={"value": pl.Float64, "reference": pl.Float64, "ks": pl.Float64},
        ).with_columns(day=pl.lit(day), model_version=pl.lit(monitored.model_version))
        context.log.info(f"{day}: alarm={report.alarm} {report.messages}")
        return dg.MaterializeResult(
            value=table,
            metadata={
                "alarm": report.alarm,
                "signals": "; ".join(report.messages) or "none",
                "breaches": len(report.breaches),
                "max_psi": report.max_psi,
                "psi": dg.MetadataValue.json(report.psi),
                **{f"live_{s.name}": s.value for s in report.signals if s.kind == "live"},
                **{f"reference_{s.name}": s.reference for s in report.signals if s.kind == "live"},
                "model_version": monitored.model_version,
                **monitored.metadata,
                **tracking.run_link(run),
                **plot_links(tracking, run, images),
                "plots": images_markdown(images),
            },
        )

    # Dagster reads the inputs from the signature: declare each one by name.
    parameters = [inspect.Parameter("context", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    parameters += [inspect.Parameter(arg, inspect.Parameter.POSITIONAL_OR_KEYWORD) for arg in ins]
    report_asset.__signature__ = inspect.Signature(parameters)
    report_asset.__annotations__ = {}
    report_asset.__name__ = name
    return dg.asset(
        name=name, group_name=group, kinds=set(kinds), partitions_def=partitions_def, ins=dict(ins),
        required_resource_keys={"mlflow_tracking", *required_resource_keys}, description=description,
    )(report_asset)


def monitored_days(instance: dg.DagsterInstance, report_asset: str) -> dict[str, bool]:
    """Latest alarm per monitored day, from the drift reports' materialization metadata."""
    records = instance.fetch_materializations(dg.AssetKey(report_asset), limit=1000).records
    alarms: dict[str, bool] = {}
    for record in sorted(records, key=lambda r: r.storage_id):
        materialization = record.asset_materialization
        if materialization and materialization.partition and "alarm" in materialization.metadata:
            alarms[materialization.partition] = bool(materialization.metadata["alarm"].value)
    return alarms


def build_drift_sensor(case: str, report_asset: str, training_job: str, policy: RetrainPolicy = RETRAIN_POLICY):
    """`<case>_drift_sensor`: the retrain policy on the reports' alarms; a request's run key is its episode's first
    alarm day, so however often it ticks an episode gets one run, and the cursor holds the cool-down."""

    @dg.sensor(
        name=f"{case}_drift_sensor",
        job_name=training_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=f"Requests one retraining run per drift episode: {policy.alarms_needed} alarms in "
        f"{policy.window} monitored days of {report_asset}, then {policy.cooldown_days} days' cool-down.",
    )
    def drift_sensor(context: dg.SensorEvaluationContext):
        state = json.loads(context.cursor) if context.cursor else {}
        alarms = monitored_days(context.instance, report_asset)
        if not alarms:
            return dg.SkipReason("no drift report yet")
        days = sorted(alarms)
        episode = policy.episode_start(days, [alarms[d] for d in days], state.get("last_trigger_day"))
        if episode is None:
            return dg.SkipReason(f"{sum(alarms.values())} alarm(s) in {len(days)} monitored days: no retraining needed")
        context.update_cursor(json.dumps({"last_trigger_day": days[-1], "episode": episode}))
        return dg.RunRequest(
            run_key=f"drift-episode-{episode}",
            # Retraining on fresh data because the champion's data drifted: the fresh model replaces the stale one
            # unless it is worse beyond the non-inferiority margin.
            tags={"mlsd/trigger": "drift", "mlsd/drift_episode": episode, "mlsd/decided_on": days[-1],
                  PROMOTION_MODE_TAG: "non_inferiority"},
        )

    return drift_sensor
