"""Helpers of the bring-your-own-data tests: turn a simulated world into data not shaped like the simulator's."""

from datetime import datetime

import polars as pl


def stretched(column: str, start: datetime, factor: float) -> pl.Expr:
    """The column's times spread `factor` times further from `start` (days become weeks or months)."""
    return (start + (pl.col(column) - start) * factor).alias(column)


def renamed(column: str, prefix: str, suffix: str = "") -> pl.Expr:
    """Ids of another form: the simulator's first character replaced by `prefix`, `suffix` appended."""
    return pl.concat_str(pl.lit(prefix), pl.col(column).str.slice(1), pl.lit(suffix)).alias(column)


def every(n: int) -> pl.Expr:
    """Every n-th row (for sprinkling a defect or a variant over a table)."""
    return pl.int_range(pl.len()) % n == 0
