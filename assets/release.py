"""Alias-based promotion shared by the case studies: move `champion` to a challenger its check passed, or back."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

import dagster as dg
import polars as pl

from orchestration.resources import MlflowTracking


class ChampionConfig(dg.Config):
    action: Literal["promote", "rollback"] = "promote"


def record_decision(mlflow_tracking: MlflowTracking, model: str, challenger: str, tags: dict[str, str]) -> None:
    client = mlflow_tracking.client()
    for key, value in tags.items():
        client.set_model_version_tag(model, challenger, key, value)


def move_champion(
    context: dg.AssetExecutionContext,
    mlflow_tracking: MlflowTracking,
    model: str,
    challenger: str,
    action: str,
    check: str,
) -> dg.MaterializeResult:
    """promote: the champion moves to `challenger` only if the promotion check tagged it `promote` (else it stays);
    rollback: back to the version the current champion replaced. The value names the serving version."""
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


def decision_check_result(decision, challenger: str, champion: str | None) -> dg.AssetCheckResult:
    """A challenger that is merely no better is a normal outcome of retraining (WARN; the champion stays); one that
    breaks an absolute limit is a broken model (ERROR, which blocks everything downstream)."""
    tags = decision.tags()
    return dg.AssetCheckResult(
        passed=decision.promote,
        severity=dg.AssetCheckSeverity.ERROR if decision.unusable else dg.AssetCheckSeverity.WARN,
        metadata={
            "decision": tags["promotion_decision"],
            "reason": decision.reason,
            "challenger_version": challenger,
            "champion_version": champion or "none",
            **{f"challenger_{k}": v for k, v in decision.challenger.items()},
            **{f"champion_{k}": v for k, v in (decision.champion or {}).items()},
            "summary": decision.reason,
        },
    )


def package_model(packager, case: str, version: str) -> dg.MaterializeResult:
    made = packager.run("import-model", case, "--model-version", version)
    return dg.MaterializeResult(
        value=pl.DataFrame({"model_tag": [made["model_tag"]], "mlflow_version": [version]}),
        metadata={"bentoml_model_tag": made["model_tag"], "mlflow_version": version},
    )


def build_bento(packager, case: str, bento_model: pl.DataFrame) -> dg.MaterializeResult:
    model_tag = str(bento_model["model_tag"][0])
    made = packager.run("build", case, "--model-tag", model_tag)
    if model_tag not in made["models"]:
        raise dg.Failure(f"bento {made['bento_tag']} packs {made['models']}, not the champion {model_tag}")
    return dg.MaterializeResult(
        value=pl.DataFrame({"bento_tag": [made["bento_tag"]], "model_tag": [model_tag]}),
        metadata={
            "bento_tag": made["bento_tag"],
            "bentoml_model_tag": model_tag,
            "mlflow_version": str(bento_model["mlflow_version"][0]),
            "serve": f"./dev.sh serve {made['bento_tag']}",
        },
    )
