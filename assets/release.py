"""The release kit every case study uses: the promotion gate, the `champion` alias, the rollback job, and the
BentoML model and bento built around the exact champion.

A case writes its scorer (how a registered version does on the holdout, per unit) and its policy thresholds; the
gate, the interval, the tags, the alias moves and the packaging are the same for all.
"""


from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Literal

import dagster as dg
import numpy as np
import polars as pl

from assets.case import BentoSpec
from assets.common import MODEL_VERSION_TAG, TRIGGER_TAG, case_job, tag_run
from assets.resources import BentoPackager, MlflowTracking
from models.promotion import PromotionPolicy, paired_bootstrap

PROMOTION_MODE_TAG = "mlsd/promotion_mode"  # a run tag: scheduled retrains and fine-tunes ask for non_inferiority


class PromotionSettings(dg.ConfigurableResource):
    """How every case's gate treats noise: the paired bootstrap interval (on by default) and its size."""

    require_interval: bool = True
    resamples: int = 2000
    confidence: float = 0.95


class ChampionConfig(dg.Config):
    action: Literal["promote", "rollback"] = "promote"


@dataclass(frozen=True)
class Scores:
    """A registered version on the holdout: its metrics, and the primary metric per unit (row, user or query) so
    that the metric is the mean of `units`. `unit_ids` align two versions' units when given."""

    metrics: dict[str, float]
    units: np.ndarray
    unit_ids: Sequence | None = None


def _paired(challenger: Scores, champion: Scores) -> tuple[np.ndarray, np.ndarray]:
    if challenger.unit_ids is None or champion.unit_ids is None:
        if len(challenger.units) != len(champion.units):
            raise ValueError("the two versions were scored on different holdout units")
        return np.asarray(challenger.units), np.asarray(champion.units)
    position = {u: i for i, u in enumerate(champion.unit_ids)}
    shared = [(i, position[u]) for i, u in enumerate(challenger.unit_ids) if u in position]
    if not shared:
        raise ValueError("the two versions share no holdout unit")
    mine, theirs = (np.array(side) for side in zip(*shared))
    return np.asarray(challenger.units)[mine], np.asarray(champion.units)[theirs]


def gate(
    context: dg.AssetCheckExecutionContext,
    case: str,
    mlflow_tracking: MlflowTracking,
    promotion: PromotionSettings,
    registered_model: str,
    challenger: str,
    policy: PromotionPolicy,
    score: Callable[[str], Scores],
    unit: str,
    absolute_limits: dict[str, float] | None = None,
) -> dg.AssetCheckResult:
    """Scores challenger and champion on the same holdout, decides by the policy with a paired bootstrap interval
    of the primary metric's difference, records the decision on the challenger's version, and reports it."""
    champion = mlflow_tracking.alias_version(registered_model, "champion")
    mine = score(challenger)
    theirs = None
    if champion == challenger:
        theirs = mine
    elif champion is not None:
        theirs = score(champion)
    interval = None
    if theirs is not None:
        a, b = _paired(mine, theirs)
        interval = paired_bootstrap(a, b, resamples=promotion.resamples, confidence=promotion.confidence)
    mode = context.run.tags.get(PROMOTION_MODE_TAG, policy.mode)
    effective = replace(policy, mode=mode, require_interval=promotion.require_interval)
    if absolute_limits is not None:
        effective = replace(effective, absolute_limits=absolute_limits)
    decision = effective.decide(mine.metrics, theirs.metrics if theirs else None, interval)
    tags = {**decision.tags(), "compared_with_champion_version": champion or "none", f"holdout_{unit}s": str(len(mine.units))}
    client = mlflow_tracking.client()
    for key, value in tags.items():
        client.set_model_version_tag(registered_model, challenger, key, value)
    _record_judgement(context, mlflow_tracking, client, case, registered_model, challenger, champion, decision, mode,
                      len(mine.units), unit, interval, policy.metric)
    # A challenger that is merely no better is a normal outcome of retraining (WARN; the champion stays); one that
    # breaks an absolute limit is a broken model (ERROR, which blocks everything downstream).
    metadata = {
        "decision": tags["promotion_decision"],
        "reason": decision.reason,
        "mode": mode,
        "challenger_version": challenger,
        "champion_version": champion or "none",
        f"holdout_{unit}s": len(mine.units),
        **{f"challenger_{k}": v for k, v in decision.challenger.items()},
        **{f"champion_{k}": v for k, v in (decision.champion or {}).items()},
        "summary": decision.reason,
    }
    if interval is not None:
        metadata.update({f"{policy.metric}_difference": interval.point, f"{policy.metric}_difference_ci_low": interval.low,
                         f"{policy.metric}_difference_ci_high": interval.high})
    return dg.AssetCheckResult(
        passed=decision.promote,
        severity=dg.AssetCheckSeverity.ERROR if decision.unusable else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def _record_judgement(context, mlflow_tracking: MlflowTracking, client, case: str, registered_model: str, challenger: str,
                      champion: str | None, decision, mode: str, units: int, unit: str, interval, metric: str) -> None:
    """The gate's figures in MLflow: one run per version judged, both with the same parameter and metric names, so
    MLflow's compare view puts the challenger beside the champion it was judged against on the same holdout; and
    the challenger's version description links them and its evaluation run."""
    import json
    from urllib.parse import quote

    import mlflow

    sides = [("challenger", challenger, decision.challenger)]
    if champion is not None and champion != challenger and decision.champion:
        sides.append(("champion", champion, decision.champion))
    difference = (f"{interval.point:+.5f} [{interval.low:+.5f}, {interval.high:+.5f}]" if interval is not None else "none")
    runs = {}
    for role, version, metrics in sides:
        other = champion if role == "challenger" else challenger
        run_name = f"promotion-check-v{challenger}-{role}-v{version}"
        tags = {"model": "promotion_check", "role": role, "registered_version": version, "challenger_version": challenger,
                "judged_against_version": other or "none", "dagster_run_id": context.run.run_id}
        with mlflow_tracking.start_run(case, run_name, tags) as run:
            mlflow.log_params({"role": role, "registered_version": version, "challenger_version": challenger,
                               "champion_version": champion or "none", "promotion_mode": mode,
                               f"holdout_{unit}s": units, f"{metric}_difference": difference,
                               "decision": decision.tags()["promotion_decision"]})
            mlflow.log_metrics({f"holdout_{k}": float(v) for k, v in metrics.items() if v is not None})
        runs[role] = run.info
    urls = {role: mlflow_tracking.run_url(info.experiment_id, info.run_id) for role, info in runs.items()}
    lines = [f"**Promotion check** ({mode}): {decision.reason}", "",
             f"- this version on the holdout: [{runs['challenger'].run_name}]({urls['challenger']})"]
    if "champion" in runs:
        ids = json.dumps([info.run_id for info in runs.values()], separators=(",", ":"))
        experiments = json.dumps([runs["challenger"].experiment_id])
        compare = f"{mlflow_tracking.ui_url.rstrip('/')}/#/compare-runs?runs={quote(ids)}&experiments={quote(experiments)}"
        lines += [f"- champion v{champion} on the same holdout: [{runs['champion'].run_name}]({urls['champion']})",
                  f"- [side by side in MLflow's compare view]({compare})"]
    evaluation = _evaluation_run_url(context)
    if evaluation:
        lines.append(f"- evaluation against the baselines: [evaluation run]({evaluation})")
    client.update_model_version(registered_model, challenger, description="\n".join(lines))
    for key, value in {"promotion_check_run": runs["challenger"].run_id, "evaluation_run_url": evaluation or "none"}.items():
        client.set_model_version_tag(registered_model, challenger, key, value)


def _evaluation_run_url(context) -> str | None:
    """The MLflow run of the evaluation the gate checks (its latest materialization's `mlflow_run` link)."""
    event = context.instance.get_latest_materialization_event(context.check_specs[0].asset_key)
    link = event.asset_materialization.metadata.get("mlflow_run") if event else None
    return link.value if link is not None else None


def register_challenger(context, case: str, mlflow_tracking: MlflowTracking, model_uri: str, registered_model: str,
                        tags: dict[str, str] | None = None) -> str:
    """Registers a logged model as a new version with the alias `challenger`; returns the version. The Dagster run
    that produced it is tagged with it, and the version with that run."""
    import contextlib
    import io
    import logging

    # The registry prints its "Successfully registered" lines to stderr: they belong in MLflow's log, not the console.
    printed = io.StringIO()
    tags = {**(tags or {}), "dagster_run_id": context.run.run_id}
    with mlflow_tracking.activated() as mlflow, contextlib.redirect_stderr(printed):
        version = mlflow.register_model(model_uri, registered_model, tags=tags)
    for line in filter(None, printed.getvalue().splitlines()):
        logging.getLogger("mlflow.registry").info(line)
    mlflow_tracking.client().set_registered_model_alias(registered_model, "challenger", version.version)
    tag_run(context, case, **{MODEL_VERSION_TAG: f"{registered_model}/v{version.version}"})
    return str(version.version)


def _move_champion(context, mlflow_tracking: MlflowTracking, model: str, challenger: str | None, action: str,
                   check: str) -> dg.MaterializeResult:
    client = mlflow_tracking.client()
    current = mlflow_tracking.alias_version(model, "champion")
    if action == "promote":
        tags = client.get_model_version(model, challenger).tags
        target = challenger if tags.get("promotion_decision") == "promote" else current
        if target is None:
            raise dg.Failure(
                f"no champion to serve: {model} v{challenger} did not pass the {check} check "
                f"({tags.get('promotion_reason', 'not evaluated')})"
            )
        if target != challenger:
            reason = f"kept v{current}: challenger v{challenger} not promoted ({tags.get('promotion_reason', 'not evaluated')})"
        elif target == current:
            reason = f"v{target} is already the champion"
        else:
            if current:
                client.set_model_version_tag(model, target, "previous_champion", current)
            reason = f"promoted v{target} (replaces {'v' + current if current else 'no champion'})"
    else:
        if current is None:
            raise dg.Failure("no champion to roll back")
        previous = client.get_model_version(model, current).tags.get("previous_champion")
        if not previous:
            raise dg.Failure(f"champion v{current} has no previous champion to roll back to")
        target = previous
        client.set_model_version_tag(model, current, "rolled_back_at", datetime.now(timezone.utc).isoformat())
        reason = f"rolled back from v{current} to v{target}"
    if target != current:
        client.set_registered_model_alias(model, "champion", target)
        client.set_model_version_tag(model, target, "champion_since", datetime.now(timezone.utc).isoformat())
    context.log.info(reason)
    version = client.get_model_version(model, target)
    return dg.MaterializeResult(
        value=pl.DataFrame({"version": [target], "model_uri": [f"models:/{model}/{target}"], "run_id": [version.run_id]}),
        metadata={
            "champion_version": target,
            "previous_champion": current or "none",
            "action": action,
            "reason": reason,
            "mlflow_model": dg.MetadataValue.url(mlflow_tracking.model_url(model, target)),
        },
    )


def build_release_assets(
    case: str, registered_model: str, challenger_asset: str, evaluation_asset: str, promotion_check: str,
    bento: BentoSpec, service_description: str, more_challengers: Sequence[str] = (),
) -> list:
    """`<case>_champion`, `<case>_bento_model` and `<case>_bento`: the champion alias, the champion in the
    BentoML store, and the service packed around it. `more_challengers` are other assets that register a
    challenger (a fine-tune's), each judged by its own gate: the champion follows the `challenger` alias, so
    whichever job registered the latest challenger moves it."""

    @dg.asset(
        name=f"{case}_champion", group_name=case, kinds={"mlflow"},
        deps=[evaluation_asset, challenger_asset, *more_challengers],
        description="The version users are served: the `champion` alias. It moves only to the latest challenger "
        f"(the `challenger` alias) when its promotion check ({promotion_check}) passed, otherwise the champion stays; "
        "with action=rollback it returns to the champion it replaced.",
    )
    def champion(context: dg.AssetExecutionContext, config: ChampionConfig, mlflow_tracking: MlflowTracking
                 ) -> dg.MaterializeResult:
        challenger = mlflow_tracking.alias_version(registered_model, "challenger")
        if challenger is None and config.action == "promote":
            raise dg.Failure(f"{registered_model} has no challenger: run the case's training job first")
        return _move_champion(context, mlflow_tracking, registered_model, challenger, config.action, promotion_check)

    @dg.asset(
        name=f"{case}_bento_model", group_name=case, kinds={"bentoml", "mlflow"},
        ins={"champion": dg.AssetIn(f"{case}_champion")},
        description="The champion copied from the MLflow registry into the BentoML model store, labelled with its version.",
    )
    def bento_model(packager: BentoPackager, champion: pl.DataFrame) -> dg.MaterializeResult:
        version = str(champion["version"][0])
        made = packager.run("import-model", "--name", registered_model, "--version", version, "--case", case)
        return dg.MaterializeResult(
            value=pl.DataFrame({"model_tag": [made["model_tag"]], "mlflow_version": [version]}),
            metadata={"bentoml_model_tag": made["model_tag"], "mlflow_version": version},
        )

    @dg.asset(
        name=f"{case}_bento", group_name=case, kinds={"bentoml"}, ins={"bento_model": dg.AssetIn(f"{case}_bento_model")},
        description=f"{service_description} packed as a bento with the champion inside: `./dev.sh serve {case}` runs it.",
    )
    def bento_asset(packager: BentoPackager, bento_model: pl.DataFrame) -> dg.MaterializeResult:
        model_tag = str(bento_model["model_tag"][0])
        made = packager.run("build", "--bentofile", bento.bentofile, "--model-tag", model_tag, "--packages", *bento.packages)
        if model_tag not in made["models"]:
            raise dg.Failure(f"bento {made['bento_tag']} packs {made['models']}, not the champion {model_tag}")
        return dg.MaterializeResult(
            value=pl.DataFrame({"bento_tag": [made["bento_tag"]], "model_tag": [model_tag]}),
            metadata={
                "bento_tag": made["bento_tag"],
                "bentoml_model_tag": model_tag,
                "mlflow_version": str(bento_model["mlflow_version"][0]),
                "serve": f"./dev.sh serve {case}",
            },
        )

    return [champion, bento_model, bento_asset]


def gated_schedule(name: str, job_name: str, cron: str, description: str) -> dg.ScheduleDefinition:
    """A schedule of a job that registers a challenger: stopped until turned on, its runs tagged as scheduled and
    judged by the gate in non-inferiority mode (fresh data replaces a stale champion unless it is worse beyond the
    margin)."""
    return dg.ScheduleDefinition(
        name=name, job_name=job_name, cron_schedule=cron, execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        tags={TRIGGER_TAG: "schedule", PROMOTION_MODE_TAG: "non_inferiority"}, description=description,
    )


def rollback_job(case: str):
    return case_job(
        case, f"{case}_rollback_job",
        selection=dg.AssetSelection.assets(f"{case}_champion", f"{case}_bento_model", f"{case}_bento"),
        config={"ops": {f"{case}_champion": {"config": {"action": "rollback"}}}},
        description="Use when the champion misbehaves in production: moves the `champion` alias back to the version "
        "it replaced and rebuilds the bento around it (no retraining; `./dev.sh rollback CASE` does the same).",
    )

