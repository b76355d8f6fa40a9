"""The continual-learning kit every case with a network champion uses: the champion trained further on the days
since it last learned, registered as the challenger, judged on the newest day by the gate's non-inferiority mode,
promoted and repackaged by the release kit; a daily job and schedule for it.

Each day is the holdout once, the day it is newest, and is learned from by the next day's fine-tune (progressive
validation). A version records the last day it learned from in its `trained_through` tag, which the case's training
job sets on versions trained from scratch.

A case gives a `FineTuning`: its registered model, the daily asset of labelled rows, which model kinds can be
fine-tuned, and three functions (the rows whose labels are known, the fine-tune itself, the gate's scorer).
"""

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import dagster as dg
import polars as pl

from assets.common import case_job, partition_frames
from assets.release import PROMOTION_MODE_TAG, Scores, gate, gated_schedule, register_challenger
from models.promotion import PromotionPolicy

TRAINED_THROUGH_TAG = "trained_through"


@dataclass(frozen=True)
class Tuned:
    """What a case's fine-tune returns: the logged model's URI and figures for the asset's metadata."""

    model_uri: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class FineTuning:
    """A case's part of the kit.

    `known(context, rows)`: the rows whose labels are known when the job runs. `tune(context, champion_uri, fresh,
    holdout)`: trains the champion further on `fresh` and logs it to MLflow inside the active run (the kit opens it);
    `holdout` is for figures only. `score(context, version, holdout, fresh)`: the gate's Scores of a version on the
    holdout. `retrain_job` is named in messages for champions that cannot be fine-tuned."""

    case: str
    registered_model: str
    rows_asset: str
    tunable_kinds: tuple[str, ...]
    experiment: str
    retrain_job: str
    known: Callable[..., pl.DataFrame]
    tune: Callable[..., Tuned]
    score: Callable[..., Scores]
    policy: PromotionPolicy
    unit: str
    kinds: frozenset[str] = frozenset({"pytorch", "mlflow"})
    resources: frozenset[str] = frozenset()  # what `known`, `tune` and `score` read from context.resources
    # More assets `tune` and `score` read (argument name -> asset), passed to them as keyword arguments: what the
    # rows alone do not carry (similar listings: the listings, new ones included).
    inputs: Mapping[str, str] = field(default_factory=dict)

    @property
    def asset_name(self) -> str:
        return f"{self.case}_fine_tuned_model"

    @property
    def check_name(self) -> str:
        return f"{self.case}_fine_tune_not_worse"

    @property
    def job_name(self) -> str:
        return f"{self.case}_fine_tune_job"


def known_by_the_newest_day(rows: pl.DataFrame, label_delay: timedelta) -> pl.DataFrame:
    """Rows whose label window (`label_delay` after the row) had closed by the end of the newest day: what a fine-tune
    may learn from."""
    end = rows["ts"].max().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return rows.filter(pl.col("ts") + label_delay <= end)


def fine_tune_window(days: list[date], trained_through: date) -> tuple[list[date], date]:
    """(the days to learn from, the holdout day): the days after `trained_through` before the newest, and the
    newest. Raises ValueError, saying what to do, when there is nothing new to learn or to judge on."""
    days = sorted(set(days))
    if not days:
        raise ValueError("no day of rows yet: ingest days first")
    holdout = days[-1]
    fresh = [d for d in days if trained_through < d < holdout]
    if not fresh:
        raise ValueError(
            f"nothing new to learn: the champion has learned from the days through {trained_through}, and the "
            f"newest day {holdout} is the holdout it is judged on; ingest the next day first"
        )
    return fresh, holdout


_DAY = pl.col("ts").dt.date()


def build_fine_tune_assets(spec: FineTuning) -> list:
    """`<case>_fine_tuned_model` and its blocking check `<case>_fine_tune_not_worse`."""

    needs = {"mlflow_tracking", *spec.resources}

    more = {name: dg.AssetIn(asset) for name, asset in spec.inputs.items()}

    @dg.asset(name=spec.asset_name, group_name=spec.case, kinds=set(spec.kinds),
              ins={"rows": dg.AssetIn(spec.rows_asset), **more}, required_resource_keys=needs)
    def fine_tuned_model(context: dg.AssetExecutionContext, rows, **inputs) -> dg.MaterializeResult:
        """The champion trained further on the days since it last learned, registered as the challenger; a champion
        of a kind that cannot be fine-tuned (a GBDT) is refused with the job that retrains it."""
        model, mlflow_tracking = spec.registered_model, context.resources.mlflow_tracking
        champion = mlflow_tracking.alias_version(model, "champion")
        if champion is None:
            raise dg.Failure(f"no champion to fine-tune: run {spec.retrain_job} first")
        tags = mlflow_tracking.client().get_model_version(model, champion).tags
        kind = tags.get("model_kind", "unknown")
        if kind not in spec.tunable_kinds:
            raise dg.Failure(
                f"champion v{champion} is {kind}: it cannot be fine-tuned, only retrained ({spec.retrain_job}); "
                f"a {' or '.join(spec.tunable_kinds)} champion can"
            )
        if TRAINED_THROUGH_TAG not in tags:
            raise dg.Failure(f"champion v{champion} has no {TRAINED_THROUGH_TAG} tag: retrain it with {spec.retrain_job}")
        frame = spec.known(context, pl.concat(partition_frames(rows), how="vertical"))
        try:
            fresh_days, holdout = fine_tune_window(frame.select(_DAY.unique())["ts"].to_list(),
                                                   date.fromisoformat(tags[TRAINED_THROUGH_TAG]))
        except ValueError as error:
            raise dg.Failure(str(error)) from None
        fresh, holdout_rows = frame.filter(_DAY.is_in(fresh_days)), frame.filter(_DAY == holdout)
        with mlflow_tracking.start_run(spec.experiment, f"fine-tune-v{champion}",
                                       {"model": kind, "fine_tuned_from": champion}) as run:
            import mlflow

            mlflow.log_params({"fine_tuned_from": champion, "fresh_days": len(fresh_days), "fresh_rows": fresh.height,
                               "holdout_day": str(holdout)})
            tuned = spec.tune(context, f"models:/{model}/{champion}", fresh, holdout_rows, **inputs)
        trained_through = fresh_days[-1]
        version = register_challenger(
            context, spec.case, mlflow_tracking, tuned.model_uri, model,
            tags={"model_kind": kind, TRAINED_THROUGH_TAG: trained_through.isoformat(), "fine_tuned_from": champion},
        )
        context.log.info(f"fine-tuned v{champion} on {fresh.height} rows of {len(fresh_days)} day(s) through "
                         f"{trained_through}: {model} v{version}; judged on {holdout}")
        return dg.MaterializeResult(
            value=pl.DataFrame({"version": [str(version)], "fine_tuned_from": [champion], "holdout_day": [str(holdout)],
                                "trained_through": [trained_through.isoformat()]}),
            metadata={
                "fine_tuned_from": f"v{champion} ({kind})",
                "registered_model": f"{model} v{version} @challenger",
                "fresh_days": ", ".join(str(d) for d in fresh_days),
                "fresh_rows": fresh.height,
                "holdout_day": str(holdout),
                **tuned.metadata,
                **mlflow_tracking.run_link(run),
                "mlflow_model": dg.MetadataValue.url(mlflow_tracking.model_url(model, version)),
            },
        )

    def fine_tune_not_worse(context: dg.AssetCheckExecutionContext, rows, **inputs) -> dg.AssetCheckResult:
        mlflow_tracking, promotion = context.resources.mlflow_tracking, context.resources.promotion
        challenger = mlflow_tracking.alias_version(spec.registered_model, "challenger")
        trained_through = mlflow_tracking.client().get_model_version(spec.registered_model, challenger).tags[
            TRAINED_THROUGH_TAG]
        frame = spec.known(context, pl.concat(partition_frames(rows), how="vertical"))
        holdout_rows = frame.filter(_DAY == frame["ts"].max().date())
        last_learned = frame.filter(_DAY == date.fromisoformat(trained_through))
        policy = replace(spec.policy, mode="non_inferiority")
        return gate(context, spec.case, mlflow_tracking, promotion, spec.registered_model, challenger, policy,
                    lambda version: spec.score(context, version, holdout_rows, last_learned, **inputs), unit=spec.unit)

    # Dagster reads a check's inputs from its signature (no **kwargs there): declare each of the case's by name.
    parameters = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in ("context", "rows", *more)]
    fine_tune_not_worse.__signature__ = inspect.Signature(parameters)
    fine_tune_not_worse.__annotations__ = {}
    fine_tune_not_worse = dg.asset_check(
        name=spec.check_name,
        asset=fine_tuned_model,
        blocking=True,
        additional_ins={"rows": dg.AssetIn(spec.rows_asset), **more},
        required_resource_keys={*needs, "promotion"},
        description="The fine-tuned challenger against the champion on the newest day (the holdout neither learned "
        "from), in non-inferiority mode: a day's fine-tune rarely wins by a significant margin, but must never be "
        "worse beyond the tolerance.",
    )(fine_tune_not_worse)

    return [fine_tuned_model, fine_tune_not_worse]


def fine_tune_job(spec: FineTuning):
    return case_job(
        spec.case, spec.job_name,
        selection=dg.AssetSelection.assets(spec.asset_name, f"{spec.case}_champion", f"{spec.case}_bento_model",
                                           f"{spec.case}_bento"),
        run_tags={PROMOTION_MODE_TAG: "non_inferiority"},
        description="Continual learning: train the champion further on the days since it last learned, judge it on "
        "the newest day (non-inferiority), promote and repackage it. Run it daily after the day's ingestion instead "
        f"of a full retrain; a champion that cannot be fine-tuned is refused, naming {spec.retrain_job}.",
    )


def fine_tune_schedule(spec: FineTuning, cron: str = "0 4 * * *") -> dg.ScheduleDefinition:
    return gated_schedule(
        f"{spec.case}_daily_fine_tune", spec.job_name, cron,
        "Fine-tune the champion every day (04:00 UTC by default), after the day's ingestion; the gate "
        "(non-inferiority) decides whether the champion moves.",
    )
