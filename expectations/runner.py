"""Runs a Great Expectations suite on a polars frame and summarizes what failed, with counts and examples.

GX 1.x has no polars engine: frames are validated through pandas (fast, see STACK_NOTES). Two checks run on the
polars frame instead: exact column dtypes, because GX sees timezone-aware datetimes only as `Timestamp`, and ids
that must exist in a reference table, because GX copies a value set of thousands of ids into every validation
(3.5 s a day of ad impressions against 20,000 users; a polars lookup takes milliseconds).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import polars as pl

_lock = threading.Lock()
_context = None


@dataclass(frozen=True)
class Suite:
    name: str
    expectations: list[Any]  # great_expectations.expectations.Expectation instances
    dtypes: dict[str, pl.DataType] = field(default_factory=dict)
    exact_columns: bool = True
    id_columns: tuple[str, ...] = ()  # shown next to each failing example row
    # column -> the ids it may hold (the referenced table's key); nulls are left to the not-null expectations
    references: dict[str, pl.Series] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    expectation: str
    column: str | None
    problem: str
    unexpected_count: int | None = None
    examples: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    rows: int
    evaluated: int
    failures: list[Failure]

    @property
    def success(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        if self.success:
            return f"{self.suite}: all {self.evaluated} expectations passed on {self.rows} rows"
        first = "; ".join(f"{f.column or 'table'}: {f.problem}" for f in self.failures[:3])
        return f"{self.suite}: {len(self.failures)} of {self.evaluated} expectations failed ({first})"

    def markdown(self) -> str:
        lines = ["| expectation | column | problem | unexpected | examples |", "|---|---|---|---|---|"]
        for f in self.failures:
            examples = ", ".join(str(e) for e in f.examples[:5]).replace("|", "/")
            count = "" if f.unexpected_count is None else str(f.unexpected_count)
            lines.append(f"| {f.expectation} | {f.column or ''} | {f.problem} | {count} | {examples} |")
        return "\n".join(lines)

    def metadata(self) -> dict[str, Any]:
        """Plain values for Dagster metadata (the caller wraps the markdown)."""
        return {
            "suite": self.suite,
            "rows": self.rows,
            "expectations_evaluated": self.evaluated,
            "expectations_failed": len(self.failures),
            "failed_expectations": self.markdown() if self.failures else "none",
        }


def _gx_context():
    """One ephemeral context per process: creating one costs about a second, and it writes no files."""
    global _context
    with _lock:
        if _context is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            import expectations.custom  # noqa: F401  (registers the custom expectations)

            _context = gx.get_context(mode="ephemeral")
            _context.variables.progress_bars = ProgressBarsConfig(globally=False)
            _context.data_sources.add_pandas("mlsd")
        return _context


def _dtype_failures(frame: pl.DataFrame, suite: Suite) -> list[Failure]:
    failures = []
    schema = frame.schema
    expected = set(suite.dtypes)
    for column, dtype in suite.dtypes.items():
        if column not in schema:
            failures.append(Failure("column_exists", column, "column is missing"))
        elif schema[column] != dtype:
            failures.append(Failure("column_dtype", column, f"has type {schema[column]}, expected {dtype}"))
    if suite.exact_columns and suite.dtypes:
        for column in schema:
            if column not in expected:
                failures.append(Failure("no_unexpected_columns", column, "column is not in the contract"))
    return failures


def _reference_failures(frame: pl.DataFrame, suite: Suite) -> list[Failure]:
    failures = []
    id_columns = [c for c in suite.id_columns if c in frame.columns]
    for column, known in suite.references.items():
        if column not in frame.columns or frame.schema[column] != known.dtype:
            continue  # the dtype check names the problem
        unknown = frame.filter(pl.col(column).is_not_null() & ~pl.col(column).is_in(known.unique().implode()))
        if unknown.height:
            examples = unknown.head(5).select(*id_columns, column).to_dicts() if id_columns else unknown[column].head(5).to_list()
            problem = (f"{unknown.height} unexpected values ({100 * unknown.height / frame.height:.3g}%): "
                       f"not among the {known.n_unique()} known ids")
            failures.append(Failure("column_values_in_reference", column, problem, unknown.height, examples))
    return failures


def _verdict_forms(frame: pl.DataFrame, expectation) -> list:
    """Expectations with the same verdict that cost less: a numeric column's bounds hold for every value exactly
    when its min and max are inside them (60 ms a column for the row-wise check, a few ms for min and max).
    Kept row-wise where they could differ: a NaN (outside any bound, but skipped by min and max) or `mostly`."""
    import great_expectations.expectations as gxe

    if type(expectation) is not gxe.ExpectColumnValuesToBeBetween:
        return [expectation]
    kwargs = expectation.configuration.kwargs
    column = frame.get_column(kwargs["column"])
    if kwargs.get("mostly", 1) != 1 or not column.dtype.is_numeric() or (column.dtype.is_float() and column.is_nan().any()):
        return [expectation]
    forms = []
    if kwargs.get("min_value") is not None:
        forms.append(gxe.ExpectColumnMinToBeBetween(column=kwargs["column"], min_value=kwargs["min_value"],
                                                    strict_min=bool(kwargs.get("strict_min"))))
    if kwargs.get("max_value") is not None:
        forms.append(gxe.ExpectColumnMaxToBeBetween(column=kwargs["column"], max_value=kwargs["max_value"],
                                                    strict_max=bool(kwargs.get("strict_max"))))
    return forms or [expectation]


def run_suite(frame: pl.DataFrame, suite: Suite) -> SuiteResult:
    failures = _dtype_failures(frame, suite) + _reference_failures(frame, suite)
    # Expectations on missing columns would only repeat the schema failure as exceptions.
    present = set(frame.columns)
    runnable = [e for e in suite.expectations if _columns_of(e) <= present]
    evaluated = len(suite.dtypes) + len(suite.references) + len(runnable)
    if runnable:
        # Most validations pass: a verdict-only pass first, with the cheapest expectations of the same verdict,
        # then counts and example rows only for the expectations that failed.
        forms = [_verdict_forms(frame, e) for e in runnable]
        verdicts = iter(_validate(frame, suite.name, [f for group in forms for f in group], {"result_format": "BOOLEAN_ONLY"}))
        failed = [e for e, group in zip(runnable, forms) if not all([next(verdicts).success for _ in group])]
        if failed:
            id_columns = [c for c in suite.id_columns if c in present]
            result_format: dict[str, Any] = {"result_format": "SUMMARY"}
            if id_columns:
                result_format["unexpected_index_column_names"] = id_columns
            failures += [_failure(r) for r in _validate(frame, suite.name, failed, result_format) if not r.success]
    return SuiteResult(suite=suite.name, rows=frame.height, evaluated=evaluated, failures=failures)


def _validate(frame: pl.DataFrame, name: str, expectations: list, result_format: dict) -> list:
    """One result per expectation, in order."""
    import great_expectations as gx

    context = _gx_context()
    with _lock:
        source = context.data_sources.get("mlsd")
        asset_name = f"{name}-{id(frame)}"
        asset = source.add_dataframe_asset(asset_name)
        try:
            batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
                batch_parameters={"dataframe": frame.to_pandas()}
            )
            validation = batch.validate(
                gx.ExpectationSuite(name=name, expectations=[e.copy() for e in expectations]), result_format=result_format
            )
        finally:
            source.delete_asset(asset_name)
    # GX groups its results by column: give each expectation back the result of its own configuration.
    buckets: dict[tuple, list] = {}
    for result in validation.results:
        theirs = result.expectation_config
        buckets.setdefault(_bucket(theirs.type, theirs.kwargs), []).append((theirs.kwargs, result))
    ordered = []
    for expectation in expectations:
        config = expectation.configuration
        kwargs = config.kwargs
        candidates = buckets.get(_bucket(config.type, kwargs), [])
        for i, (theirs, result) in enumerate(candidates):
            if all(theirs.get(k) == v for k, v in kwargs.items()):
                ordered.append(candidates.pop(i)[1])
                break
        else:
            raise RuntimeError(f"{name}: no validation result for {config.type} {dict(kwargs)}")
    return ordered


def _bucket(kind: str, kwargs) -> tuple:
    return (kind, *(kwargs.get(k) for k in ("column", "column_A", "column_B", "label_column")))


def _columns_of(expectation) -> set[str]:
    kwargs = expectation.configuration.kwargs
    names = {kwargs.get(k) for k in ("column", "column_A", "column_B", "label_column")}
    names |= set(kwargs.get("column_list") or [])
    return {n for n in names if isinstance(n, str)}


def _failure(result) -> Failure:
    config = result.expectation_config
    kwargs = config.kwargs
    column = kwargs.get("column") or (
        f"{kwargs['column_A']} > {kwargs['column_B']}" if "column_A" in kwargs else None
    )
    info = result.exception_info or {}
    if info.get("raised_exception"):
        return Failure(config.type, column, f"raised: {info.get('exception_message')}")
    details = result.result or {}
    count = details.get("unexpected_count")
    examples = details.get("partial_unexpected_index_list") or details.get("partial_unexpected_list") or []
    if count is not None:
        percent = details.get("unexpected_percent") or 0.0
        problem = f"{count} unexpected values ({percent:.3g}%)"
    else:
        problem = f"observed {details.get('observed_value')!r}"
        extra = details.get("details")
        if extra:
            problem += f" {extra}"
    return Failure(config.type, column, problem, count, [_plain(e) for e in examples[:5]])


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else str(value) if not isinstance(value, (str, int, float)) else value
