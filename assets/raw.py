"""The raw-table asset every case study starts from: one table of its source (your files or its simulator),
contract columns only, validated by its suite's policies: rows a policy quarantines go to the table's quarantine
asset (kept in the lake with the expectations they broke and the run), and the blocking check stops anything
downstream when an expectation that must hold fails or a quarantine takes more than its limit."""

import inspect
from collections.abc import Callable
from typing import Any

import dagster as dg
import polars as pl

from assets.common import (
    check_result,
    frame_metadata,
    partition_label,
    per_partition_result,
    span,
    split_by_time,
    time_partitions,
)
from expectations.runner import Suite, run_suite


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
    """`<case>_<table>` read from the resource `<case>_source`, `<case>_<table>_quarantine`, and the blocking check
    `<case>_<table>_valid`.

    `suite(frame, window, **references)` returns the frame to validate (the table's rows in order, perhaps with
    columns joined on) and the suite; `window` is the partition's (start, end) or None, and `references` maps
    argument names to the assets the suite checks ids against.
    A partitioned table holds the events of its partition's time window; re-running a partition replaces it. A run
    over many partitions (a single-run backfill) reads the source once and validates the days together.
    """
    name, source_key = f"{case}_{table}", f"{case}_source"
    quarantine_name, check_name = f"{name}_quarantine", f"{name}_valid"
    references = references or {}
    backfill = dg.BackfillPolicy.single_run() if partitions_def is not None else None

    def raw_table(context: dg.AssetExecutionContext, **inputs):
        source = getattr(context.resources, source_key)
        windows = time_partitions(context, partitions_def) if partitions_def is not None else None
        if windows is None:
            frame = source.table(table, columns)
        else:
            frame = source.events_between(table, columns, *span(windows))
        validated, chosen = suite(frame, span(windows) if windows else None, **inputs)
        result = run_suite(validated, chosen)
        kept, quarantined = result.split(validated)
        kept = kept.select(frame.columns)
        quarantined = quarantined.select(*frame.columns, "failed_expectations").with_columns(run_id=pl.lit(context.run.run_id))
        if quarantined.height:
            context.log.warning(f"{name}: {quarantined.height} of {validated.height} rows quarantined to {quarantine_name}")

        def metadata_of(_, part: pl.DataFrame) -> dict[str, Any]:
            metadata = {**frame_metadata(part), "source": source.description}
            if summary is not None and part.height:
                metadata.update(summary(part))
            return metadata

        def quarantine_metadata(_, part: pl.DataFrame) -> dict[str, Any]:
            counts = part.get_column("failed_expectations").str.split("; ").explode().value_counts(sort=True)
            return {**frame_metadata(part), "by_expectation": dg.MetadataValue.md(
                "| expectation | rows |\n|---|---|\n" + "\n".join(f"| {e} | {n} |" for e, n in counts.iter_rows()))}

        def counted(part: pl.DataFrame, set_aside: pl.DataFrame) -> dict[str, Any]:
            return {"quarantined_rows": set_aside.height,
                    "quarantine_share": set_aside.height / max(part.height + set_aside.height, 1)}

        if windows is None:
            yield dg.MaterializeResult(asset_key=name, value=kept,
                                       metadata={**metadata_of(None, kept), **counted(kept, quarantined)})
            yield dg.MaterializeResult(asset_key=quarantine_name, value=quarantined,
                                       metadata=quarantine_metadata(None, quarantined))
            yield check_result(result, chosen, asset_key=name, check_name=check_name)
            return
        set_aside = split_by_time(quarantined, windows)
        yield per_partition_result(context, split_by_time(kept, windows),
                                   lambda key, part: {**metadata_of(key, part), **counted(part, set_aside[key])},
                                   dg.AssetKey(name))
        yield per_partition_result(context, set_aside, quarantine_metadata, dg.AssetKey(quarantine_name))
        yield check_result(result, chosen, asset_key=name, check_name=check_name, partition=partition_label(windows))

    # Dagster reads the inputs from the signature: declare each reference by name.
    parameters = [inspect.Parameter("context", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    parameters += [inspect.Parameter(arg, inspect.Parameter.POSITIONAL_OR_KEYWORD) for arg in references]
    raw_table.__signature__ = inspect.Signature(parameters)
    raw_table.__annotations__ = {}
    raw_table.__name__ = name
    asset = dg.multi_asset(
        name=name,
        group_name=case,
        outs={
            name: dg.AssetOut(kinds={"polars", "parquet"}, description=description),
            quarantine_name: dg.AssetOut(
                kinds={"polars", "parquet"},
                description=f"Rows of {name} that its suite's policies set aside, with the expectations they broke "
                "and the run: kept, never read downstream."),
        },
        ins={arg: dg.AssetIn(asset) for arg, asset in references.items()},
        check_specs=[dg.AssetCheckSpec(check_name, asset=name, blocking=True, description=check_description)],
        partitions_def=partitions_def,
        backfill_policy=backfill,
        required_resource_keys={source_key},
    )(raw_table)
    return [asset]

