"""Suites every case's time split shares: the windows hold data and follow each other in order, and each training
input ends before the window it must not see."""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations.runner import Suite


def ordered_windows_suite(name: str, counted: tuple[str, ...]) -> Suite:
    """One row per window (window, start, end, last_ts, next_start and the `counted` columns): each holds at least one
    of every counted thing, ends after it starts and after its last event, and the next starts no earlier."""
    return Suite(
        name=name,
        dtypes={},
        exact_columns=False,
        id_columns=("window",),
        expectations=[
            *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in ("start", "end")],
            *[gxe.ExpectColumnValuesToBeBetween(column=c, min_value=1) for c in counted],
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="end", column_B="start", or_equal=False),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="next_start", column_B="end", or_equal=True, ignore_row_if="either_value_is_missing"),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="end", column_B="last_ts", or_equal=False, ignore_row_if="either_value_is_missing"),
        ],
    )


def ends_before_suite(name: str) -> Suite:
    """One row per training input (input, last_ts, must_end_before): each ends before the window it must not see."""
    return Suite(
        name=name,
        dtypes={},
        exact_columns=False,
        id_columns=("input",),
        expectations=[
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="must_end_before", column_B="last_ts", or_equal=False, ignore_row_if="either_value_is_missing"),
        ],
    )
