"""The raw-table asset every case study starts from: one table of its source (your files or its simulator),
contract columns only, and the blocking suite that stops bad data before anything downstream reads it."""

import inspect
from collections.abc import Callable
from typing import Any

import dagster as dg
import polars as pl

from assets.common import (
    frame_metadata,
    partition_frames,
    partition_label,
    per_partition_result,
    span,
    split_by_time,
    suite_check,
    time_partitions,
)
from expectations.runner import Suite


def build_raw_table(
    case: str,
    table: str,
    columns: dict,
    description: str,
    suite: Callable[..., tuple[pl.DataFrame, Suite]],
    check_description: str,
    references: dict[str, str] | None = None,
    partitions_def: dg.PartitionsDefinition | None = None,
    summary: Callable[[pl.DataFrame], dict[str, Any]] | None = None,
) -> list:
    """`<case>_<table>` read from the resource `<case>_source`, and its blocking check `<case>_<table>_valid`.

    `suite(frame, window, **references)` returns the frame to validate and the suite; `window` is the partition's
    (start, end) or None, and `references` maps argument names to the assets the suite checks ids against.
    A partitioned table holds the events of its partition's time window; re-running a partition replaces it. A run
    over many partitions (a single-run backfill) reads the source once and validates the days together.
    """
    name, source_key = f"{case}_{table}", f"{case}_source"
    references = references or {}

    backfill = dg.BackfillPolicy.single_run() if partitions_def is not None else None

    @dg.asset(name=name, group_name=case, kinds={"polars", "parquet"}, partitions_def=partitions_def,
              backfill_policy=backfill, required_resource_keys={source_key}, description=description)
    def raw_table(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        source = getattr(context.resources, source_key)

        def metadata_of(_, frame: pl.DataFrame) -> dict[str, Any]:
            metadata = {**frame_metadata(frame), "source": source.description}
            if summary is not None and frame.height:
                metadata.update(summary(frame))
            return metadata

        if partitions_def is None:
            frame = source.table(table, columns)
            return dg.MaterializeResult(value=frame, metadata=metadata_of(None, frame))
        windows = time_partitions(context, partitions_def)
        frame = source.events_between(table, columns, *span(windows))
        return per_partition_result(context, split_by_time(frame, windows), metadata_of)

    def check(context: dg.AssetCheckExecutionContext, **inputs) -> dg.AssetCheckResult:
        loaded = inputs.pop(name)
        if partitions_def is None:
            validated, chosen = suite(loaded, None, **inputs)
            return suite_check(validated, chosen)
        windows = time_partitions(context, partitions_def)
        frame = pl.concat(partition_frames(loaded), how="vertical")
        validated, chosen = suite(frame, span(windows), **inputs)
        return suite_check(validated, chosen, partition=partition_label(windows))

    # Dagster reads a check's inputs from its signature: declare the table and each reference by name.
    parameters = [inspect.Parameter("context", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    parameters += [inspect.Parameter(arg, inspect.Parameter.POSITIONAL_OR_KEYWORD) for arg in (name, *references)]
    check.__signature__ = inspect.Signature(parameters)
    check.__annotations__ = {}
    check.__name__ = f"{name}_valid"
    valid = dg.asset_check(
        asset=raw_table, name=f"{name}_valid", blocking=True, partitions_def=partitions_def,
        additional_ins={arg: dg.AssetIn(asset) for arg, asset in references.items()}, description=check_description,
    )(check)
    return [raw_table, valid]
