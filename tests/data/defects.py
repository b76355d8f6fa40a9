"""Helpers of the raw-contract tests: where to inject a defect, and what its expectation's policy must do."""

import polars as pl


def spread(n: int) -> pl.Expr:
    """n rows spread over the table, 97 apart (neighbouring rows may share a time, a session or a pair: changing them
    together would make duplicates)."""
    row = pl.int_range(pl.len())
    return (row % 97 == 0) & (row < 97 * n)


def check_policy(result, broken: pl.DataFrame, column: str, policy: str) -> None:
    """The defect is reported where its policy says ("fail", "quarantine" or "warn"), and does what the policy says."""
    reported = {"fail": result.failures, "quarantine": result.quarantined, "warn": result.warnings}[policy]
    assert [f for f in reported if column in (f.column or f.expectation)], result.summary()
    if policy == "fail":
        assert not result.success
        return
    assert result.success, result.summary()
    kept, set_aside = result.split(broken)
    if policy == "quarantine":  # a handful of rows: well under the 1% a quarantine may take, so the run goes on
        assert 0 < set_aside.height < max(12, broken.height // 100) and kept.height + set_aside.height == broken.height
    else:  # a warning is only a note: every row goes on
        assert not result.quarantined and set_aside.height == 0 and kept.height == broken.height
