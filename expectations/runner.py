"""Runs a Great Expectations suite on a polars frame and summarizes what failed, with counts and examples.

GX 1.x has no polars engine: frames are validated through pandas (fast, see STACK_NOTES). Two checks run on the
polars frame instead: exact column dtypes, because GX sees timezone-aware datetimes only as `Timestamp`, and ids
that must exist in a reference table, because GX copies a value set of thousands of ids into every validation
(3.5 s a day of ad impressions against 20,000 users; a polars lookup takes milliseconds).

Each expectation carries a policy (`Rule`), as Delta Live Tables' expect / expect-or-drop / expect-or-fail do: a
violation fails the run, or quarantines the offending rows (the run fails only when they are more than the rule's
limit of the rows), or is only a warning. Schema, dtype and id problems always fail.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

_lock = threading.Lock()
_context = None


@dataclass(frozen=True)
class Policy:
    """What a violation does: `fail` the run; `quarantine` the offending rows (kept in the lake, out of what
    downstream reads), failing the run only when they are more than `limit` of the rows; or `warn`."""

    action: Literal["fail", "quarantine", "warn"] = "fail"
    limit: float = 0.0  # quarantine only: the largest share of the rows it may take

    def __post_init__(self):
        if self.action not in ("fail", "quarantine", "warn"):
            raise ValueError(f"policy action must be fail, quarantine or warn, not {self.action!r}")
        if self.action == "quarantine" and not 0 < self.limit < 1:
            raise ValueError(f"a quarantine limit is a share of the rows in (0, 1), not {self.limit!r}")

    def __str__(self) -> str:
        return f"quarantine up to {100 * self.limit:g}%" if self.action == "quarantine" else self.action


FAIL = Policy()
WARN = Policy("warn")


def quarantine(limit: float = 0.01) -> Policy:
    return Policy("quarantine", limit)


@dataclass(frozen=True)
class Rule:
    expectation: Any  # a great_expectations.expectations.Expectation
    policy: Policy = FAIL


def under(policy: Policy, *expectations) -> list[Rule]:
    return [Rule(e, policy) for e in expectations]


@dataclass(frozen=True)
class Suite:
    name: str
    expectations: list[Any]  # GX expectations (their policy is FAIL) or `Rule`s
    dtypes: dict[str, pl.DataType] = field(default_factory=dict)
    exact_columns: bool = True
    id_columns: tuple[str, ...] = ()  # shown next to each failing example row; a missing one always fails
    # column -> the ids it may hold (the referenced table's key); nulls are left to the not-null expectations
    references: dict[str, pl.Series] = field(default_factory=dict)
    reference_policy: Policy = FAIL

    def __post_init__(self):
        for rule in self.rules:
            if rule.policy.action == "fail":
                continue
            kind = type(rule.expectation).__name__
            if rule.policy.action == "quarantine" and not _row_level(rule.expectation):
                raise ValueError(f"{self.name}: {kind} judges the whole table, so it has no rows to quarantine")
            missing_id = kind == "ExpectColumnValuesToNotBeNull" and _columns_of(rule.expectation) & set(self.id_columns)
            if "Unique" in kind or missing_id:
                raise ValueError(f"{self.name}: {kind} on {sorted(_columns_of(rule.expectation))} is an id problem, "
                                 "which always fails")

    @property
    def rules(self) -> list[Rule]:
        return [e if isinstance(e, Rule) else Rule(e) for e in self.expectations]

    def policies(self) -> list[tuple[str, str]]:
        """(expectation, policy) for every rule: the policy table of the README and of the check's metadata."""
        rows = [(f"{column} has a known id", str(self.reference_policy)) for column in self.references]
        return rows + [(label(rule.expectation), str(rule.policy)) for rule in self.rules]


def policy_markdown(tables: list[tuple[str, Suite]]) -> str:
    """The policy of every expectation of the given (table, suite) pairs: the README's tables, and each check's."""
    lines = ["| table | expectation | on violation |", "|---|---|---|"]
    lines += [f"| {table} | `{rule}` | {policy} |" for table, suite in tables for rule, policy in suite.policies()]
    return "\n".join(lines)


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
    failures: list[Failure]  # each one fails the run
    quarantined: list[Failure] = field(default_factory=list)  # within their limits: the rows leave, the run goes on
    warnings: list[Failure] = field(default_factory=list)
    # row number -> the expectations its row violated, for every quarantined row
    quarantined_rows: dict[int, list[str]] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        notes = []
        if self.quarantined_rows:
            notes.append(f"{len(self.quarantined_rows)} rows quarantined ({100 * len(self.quarantined_rows) / self.rows:.3g}%)")
        if self.warnings:
            notes.append(f"{len(self.warnings)} warnings")
        tail = f"; {', '.join(notes)}" if notes else ""
        if self.success:
            return f"{self.suite}: all {self.evaluated} expectations passed on {self.rows} rows{tail}"
        first = "; ".join(f"{f.column or 'table'}: {f.problem}" for f in self.failures[:3])
        return f"{self.suite}: {len(self.failures)} of {self.evaluated} expectations failed ({first}){tail}"

    def markdown(self, failures: list[Failure] | None = None) -> str:
        lines = ["| expectation | column | problem | unexpected | examples |", "|---|---|---|---|---|"]
        for f in self.failures if failures is None else failures:
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
            "quarantined_rows": len(self.quarantined_rows),
            "quarantined_by": self.markdown(self.quarantined) if self.quarantined else "none",
            "warnings": self.markdown(self.warnings) if self.warnings else "none",
        }

    def split(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(kept rows, quarantined rows with a `failed_expectations` column) of the frame that was validated."""
        if not self.quarantined_rows:
            return frame, frame.clear().with_columns(failed_expectations=pl.lit(None, pl.String))
        rows = sorted(self.quarantined_rows)
        reasons = pl.DataFrame({"__row": rows, "failed_expectations": ["; ".join(self.quarantined_rows[r]) for r in rows]},
                               schema={"__row": pl.UInt32, "failed_expectations": pl.String})
        numbered = frame.with_row_index("__row")
        kept = numbered.join(reasons, on="__row", how="anti", maintain_order="left").drop("__row")
        bad = numbered.join(reasons, on="__row", how="inner", maintain_order="left").drop("__row")
        return kept, bad


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


def _reference_violations(frame: pl.DataFrame, suite: Suite) -> list[tuple[Failure, list[int]]]:
    violations = []
    id_columns = [c for c in suite.id_columns if c in frame.columns]
    for column, known in suite.references.items():
        if column not in frame.columns or frame.schema[column] != known.dtype:
            continue  # the dtype check names the problem
        unknown = frame.with_row_index("__row").filter(
            pl.col(column).is_not_null() & ~pl.col(column).is_in(known.unique().implode())
        )
        if unknown.height:
            shown = [*id_columns, *([] if column in id_columns else [column])]
            examples = unknown.head(5).select(shown).to_dicts() if id_columns else unknown[column].head(5).to_list()
            problem = (f"{unknown.height} unexpected values ({100 * unknown.height / frame.height:.3g}%): "
                       f"not among the {known.n_unique()} known ids")
            failure = Failure("column_values_in_reference", column, problem, unknown.height, examples)
            violations.append((failure, unknown["__row"].to_list()))
    return violations


def label(expectation) -> str:
    """How a rule is named in metadata and in the quarantine table: its columns and its kind."""
    columns = ", ".join(sorted(_columns_of(expectation))) or "table"
    return f"{columns}: {expectation.configuration.type}"


def _row_level(expectation) -> bool:
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    return isinstance(expectation, (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation))


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
    failures, warnings, quarantined = _dtype_failures(frame, suite), [], []
    offending: dict[int, list[str]] = {}

    def judge(policy: Policy, failure: Failure, rows: list[int] | None, name: str) -> None:
        if policy.action == "warn":
            warnings.append(failure)
        elif policy.action == "fail":
            failures.append(failure)
        elif failure.unexpected_count is None or rows is None:
            failures.append(failure)  # raised, or no rows to point at: nothing can be set aside
        elif len(rows) > policy.limit * frame.height:
            failures.append(dataclasses.replace(
                failure, problem=f"{failure.problem}: more than the quarantine limit of {100 * policy.limit:g}%"))
        else:
            quarantined.append(failure)
            for row in rows:
                offending.setdefault(row, []).append(name)

    for failure, rows in _reference_violations(frame, suite):
        judge(suite.reference_policy, failure, rows, f"{failure.column}: known id")
    # Expectations on missing columns would only repeat the schema failure as exceptions.
    present = set(frame.columns)
    runnable = [r for r in suite.rules if _columns_of(r.expectation) <= present]
    evaluated = len(suite.dtypes) + len(suite.references) + len(runnable)
    if runnable:
        # Most validations pass: a verdict-only pass first, with the cheapest expectations of the same verdict,
        # then counts and example rows only for the expectations that failed.
        forms = [_verdict_forms(frame, r.expectation) for r in runnable]
        verdicts = iter(_validate(frame, suite.name, [f for group in forms for f in group], {"result_format": "BOOLEAN_ONLY"}))
        failed = [r for r, group in zip(runnable, forms) if not all([next(verdicts).success for _ in group])]
        id_columns = [c for c in suite.id_columns if c in present]
        reported = [r for r in failed if r.policy.action != "quarantine"]
        if reported:
            result_format: dict[str, Any] = {"result_format": "SUMMARY"}
            if id_columns:
                result_format["unexpected_index_column_names"] = id_columns
            for rule, result in zip(reported, _validate(frame, suite.name, [r.expectation for r in reported], result_format)):
                if not result.success:
                    judge(rule.policy, _failure(result), None, label(rule.expectation))
        to_quarantine = [r for r in failed if r.policy.action == "quarantine"]
        if to_quarantine:
            # Every offending row, by its row number (the frame's pandas index).
            results = _validate(frame, suite.name, [r.expectation for r in to_quarantine], {"result_format": "COMPLETE"})
            for rule, result in zip(to_quarantine, results):
                if result.success:
                    continue
                rows = [int(i) for i in (result.result or {}).get("unexpected_index_list") or []]
                failure = _failure(result)
                if rows and id_columns:
                    examples = frame[rows[:5]].select(id_columns).to_dicts()
                    failure = dataclasses.replace(failure, examples=[_plain(e) for e in examples])
                judge(rule.policy, failure, rows if failure.unexpected_count is not None else None, label(rule.expectation))
    return SuiteResult(suite=suite.name, rows=frame.height, evaluated=evaluated, failures=failures,
                       quarantined=quarantined, warnings=warnings, quarantined_rows=offending)


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
