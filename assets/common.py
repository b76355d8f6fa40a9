"""Helpers shared by every case study's assets: check results, plot metadata, frame summaries."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import dagster as dg
import polars as pl

from expectations.runner import Suite, SuiteResult, policy_markdown, run_suite


def suite_check(frame: pl.DataFrame, suite: Suite, **extra_metadata: Any) -> dg.AssetCheckResult:
    """Validates a frame with a suite; the result names each failed expectation with counts and examples."""
    return check_result(run_suite(frame, suite), suite, **extra_metadata)


def check_result(result: SuiteResult, suite: Suite, *, asset_key: str | None = None, check_name: str | None = None,
                 **extra: Any) -> dg.AssetCheckResult:
    """A failure fails the check (blocking what is downstream); warnings alone show it as a warning, which blocks
    nothing; quarantined rows within their limits pass, counted. `asset_key` and `check_name` name the check when
    its asset yields it."""
    metadata: dict[str, Any] = result.metadata()
    for key in ("failed_expectations", "quarantined_by", "warnings"):
        metadata[key] = dg.MetadataValue.md(metadata[key])
    metadata["summary"] = result.summary()
    metadata["policies"] = dg.MetadataValue.md(policy_markdown([(suite.name, suite)]))
    metadata.update(extra)
    severity = dg.AssetCheckSeverity.ERROR if result.failures else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(passed=result.success and not result.warnings, metadata=metadata, severity=severity,
                               asset_key=asset_key, check_name=check_name)


def images_markdown(images: dict[str, bytes]) -> dg.MetadataValue:
    """PNG plots inline in the Dagster UI (the same files are MLflow artifacts)."""
    parts = []
    for name, png in images.items():
        encoded = base64.b64encode(png).decode()
        parts.append(f"**{name}**\n\n![{name}](data:image/png;base64,{encoded})")
    return dg.MetadataValue.md("\n\n".join(parts))


def metric_metadata(rows: dict[str, dict[str, float | None]]) -> dict[str, float]:
    """Every figure of an evaluation as numeric metadata named `<model>_<metric>`, the names its MLflow run logs:
    Dagster plots each one across materializations."""
    return {f"{model}_{metric}": float(value) for model, row in rows.items() for metric, value in row.items()
            if value is not None}


def plot_links(mlflow_tracking, run, images: dict[str, bytes], folder: str = "plots") -> dict[str, dg.MetadataValue]:
    """One link per plot to the image in its MLflow run: a click from the asset's overview opens it."""
    base = mlflow_tracking.run_url(run.info.experiment_id, run.info.run_id)
    return {f"plot_{name.rsplit('.', 1)[0]}": dg.MetadataValue.url(f"{base}/artifacts/{folder}/{name}") for name in images}


def metrics_table(rows: dict[str, dict[str, float]], columns: list[str]) -> str:
    """Markdown table: one row per model, one column per metric."""
    lines = ["| model | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, values in rows.items():
        cells = [_fmt(values.get(c)) for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def time_split_result(context, cutoffs_of: Callable[[], Any], rows: pl.DataFrame, rates: dict[str, str]) -> dg.MaterializeResult:
    """The rows of a label-delay time split (models.windows.LabelDelayCutoffs) that fall in a window, with each
    window's bounds, rows and `rates` (metadata name: a 0/1 column) as metadata; rows whose label was not yet known at
    the next cutoff are left out and counted. `cutoffs_of()` gives the cutoffs; its ValueError (too little data,
    naming the setting) fails the asset with that message."""
    try:
        cutoffs = cutoffs_of()
    except ValueError as error:
        raise dg.Failure(str(error)) from None
    split = cutoffs.split(rows)
    windows = cutoffs.windows(rows)
    context.log.info(f"time split:\n{windows}")
    kept = split.filter(pl.col("split").is_not_null())
    metadata: dict[str, Any] = {
        **frame_metadata(kept), "rows_left_out_label_unknown": split.height - kept.height,
        "windows": dg.MetadataValue.md(frame_markdown(windows.drop("next_start"))),
        "validation_start": cutoffs.validation_start.isoformat(), "test_start": cutoffs.test_start.isoformat(),
        "end": cutoffs.end.isoformat()}
    for name in ("train", "validation", "test"):
        part = kept.filter(pl.col("split") == name)
        metadata[f"{name}_rows"] = part.height
        metadata.update({f"{name}_{rate}": float(part[column].mean() or 0.0) for rate, column in rates.items()})
    return dg.MaterializeResult(value=kept, metadata=metadata)


def one_row(**values) -> pl.DataFrame:
    """A frame of one row: what a model asset hands downstream (its MLflow run, registered version, figures)."""
    return pl.DataFrame({k: [v] for k, v in values.items()})


def frame_markdown(frame: pl.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def partition_frames(loaded: pl.DataFrame | dict[str, pl.DataFrame] | None) -> list[pl.DataFrame]:
    """Frames of a partitioned input in partition order (Dagster passes one frame when the range has one)."""
    if isinstance(loaded, pl.DataFrame):
        return [loaded]
    if not loaded:  # None (the one partition is missing) or an empty dict
        raise ValueError("no partition of the upstream asset has been materialized yet")
    return [loaded[key] for key in sorted(loaded)]


def time_partitions(context, partitions_def: dg.TimeWindowPartitionsDefinition) -> dict[str, tuple]:
    """Each partition of the run (one, or every day of a single-run backfill) with its [start, end) window."""
    windows = {}
    for key in context.partition_keys:
        window = partitions_def.time_window_for_partition_key(key)
        windows[key] = (window.start, window.end)
    return windows


def span(windows: dict[str, tuple]) -> tuple:
    """[start, end) of all of the run's partitions together."""
    windows = list(windows.values())
    return windows[0][0], windows[-1][1]


def split_by_time(frame: pl.DataFrame, windows: dict[str, tuple], ts: str = "ts") -> dict[str, pl.DataFrame]:
    """The rows of each window; a frame read for one window is that window's, whatever its timestamps say (the
    blocking suite judges them)."""
    if len(windows) == 1:
        return {next(iter(windows)): frame}
    column = pl.col(ts)
    if frame.schema[ts].time_zone is None:  # naive timestamps are read as UTC, as the source does
        column = column.dt.replace_time_zone("UTC")
    return {key: frame.filter((column >= start) & (column < end)) for key, (start, end) in windows.items()}


def partition_label(keys) -> str:
    keys = list(keys)
    return keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"


def per_partition_result(
    context, frames: dict[str, pl.DataFrame], metadata_of: Callable[[str, pl.DataFrame], dict],
    asset_key: dg.AssetKey | None = None,
) -> dg.MaterializeResult:
    """A partitioned asset's frames, each partition with metadata of its own rows (a range run writes many);
    `metadata_of(partition_key, frame)`. `asset_key` names which asset of a multi-asset they are."""
    for key, frame in frames.items():
        context.add_asset_metadata(metadata_of(key, frame), partition_key=key, asset_key=asset_key)
    return dg.MaterializeResult(value=frames, asset_key=asset_key)


def frame_metadata(frame: pl.DataFrame) -> dict[str, Any]:
    return {"dagster/row_count": frame.height, "columns": frame.width}


def log_plots(images: dict[str, bytes], folder: str = "plots") -> None:
    """The PNG plots as images of the active MLflow run (shown in the MLflow UI next to its metrics)."""
    import io

    import mlflow
    from PIL import Image

    for name, png in images.items():
        mlflow.log_image(Image.open(io.BytesIO(png)), f"{folder}/{name}")


# --- Jobs and runs: what the Dagster UI shows about each run ----------------------------------------------------

CASE_TAG = "mlsd/case"
TRIGGER_TAG = "mlsd/trigger"  # manual, schedule or drift
MODEL_VERSION_TAG = "mlsd/model_version"  # <registered model>/v<version>, on the run that registered it


def case_job(case: str, name: str, *, selection, description: str, run_tags: dict[str, str] | None = None,
             **kwargs) -> dg.UnresolvedAssetJobDefinition:
    """A case's asset job: its runs carry the case and, unless a schedule or sensor says otherwise, a manual trigger
    (and `run_tags`)."""
    return dg.define_asset_job(name, selection=selection, description=description,
                               run_tags={CASE_TAG: case, TRIGGER_TAG: "manual", **(run_tags or {})}, **kwargs)


def case_definitions(parts: list, **definitions) -> dg.Definitions:
    """A case's Definitions from its assets and asset checks in one list (as its builders return them), with its
    jobs, sensors, schedules and resources."""
    checks = [d for d in parts if isinstance(d, dg.AssetChecksDefinition)]
    return dg.Definitions(assets=[d for d in parts if not isinstance(d, dg.AssetChecksDefinition)], asset_checks=checks,
                          **definitions)


def tag_run(context, case: str, **tags: str) -> None:
    """Adds tags to the running run; a run launched from an asset's page (no job of ours) also gets its case and its
    manual trigger here."""
    existing = context.run.tags
    added = {CASE_TAG: case} if CASE_TAG not in existing else {}
    if TRIGGER_TAG not in existing:
        added[TRIGGER_TAG] = "manual"
    context.instance.add_run_tags(context.run.run_id, {**added, **tags})
