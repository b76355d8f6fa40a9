"""Shared pieces of the tabular models: counts as of each row's time, and the scaling the neural and linear models
read their features through."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl


def count_before(targets: pl.DataFrame, history: pl.DataFrame, by: list[str], name: str, sums: dict[str, str] | None = None,
                 on: str = "ts", at: str = "ts") -> pl.DataFrame:
    """Each target's running count (and sums) of `history` rows with the same `by` keys strictly before the target's
    `at` time (the history's time column is `on`). Counts and sums are 0 where there is none."""
    sums = sums or {}
    running = history.sort(on).select(
        *by, pl.col(on).alias("_at"), pl.int_range(1, pl.len() + 1).over(by).alias(name),
        *[pl.col(source).cum_sum().over(by).alias(target) for target, source in sums.items()],
    )
    joined = targets.sort(at).join_asof(running, left_on=at, right_on="_at", by=by, strategy="backward",
                                        allow_exact_matches=False, check_sortedness=False)
    return joined.drop("_at").with_columns(pl.col(name).fill_null(0), *[pl.col(t).fill_null(0) for t in sums])


def gender_codes(users: pl.DataFrame) -> dict[str, int]:
    """The three most common genders by their frequency rank (0, 1, 2); anything else, or none, is 3: whatever values
    your data uses, without a fixed list."""
    counts = users.drop_nulls("gender")["gender"].value_counts(sort=True)
    return {g: i for i, g in enumerate(counts["gender"].head(3).to_list())}


@dataclass
class Standardizer:
    """NaN-aware scaling: log1p of the `logged` columns (long-tailed counts and durations), then z-scores from the
    training rows; a missing value becomes 0 with an indicator column beside it."""

    mean: list[float]
    std: list[float]
    nullable: list[int]  # feature positions that had missing values in training
    logged: list[int] = field(default_factory=list)

    @classmethod
    def fit(cls, matrix: np.ndarray, logged: list[int]) -> Standardizer:
        x = cls._log(matrix, logged)
        mean = np.nanmean(x, axis=0)
        std = np.nanstd(x, axis=0)
        return cls(np.nan_to_num(mean).tolist(), np.where(std > 0, std, 1.0).tolist(),
                   np.flatnonzero(np.isnan(matrix).any(axis=0)).tolist(), list(logged))

    @staticmethod
    def _log(matrix: np.ndarray, logged: list[int]) -> np.ndarray:
        x = np.array(matrix, dtype=np.float32, copy=True)
        for i in logged:
            x[:, i] = np.log1p(np.maximum(x[:, i], 0))
        return x

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        x = (self._log(matrix, self.logged) - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        missing = np.isnan(x)
        indicators = missing[:, self.nullable].astype(np.float32)
        return np.concatenate([np.where(missing, 0.0, np.clip(x, -8, 8)).astype(np.float32), indicators], axis=1)

    @property
    def width(self) -> int:
        return len(self.mean) + len(self.nullable)


def cosine_rows(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity; 0 where either row is all zeros (no history, no text)."""
    norms = np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1)
    dots = np.einsum("ij,ij->i", left, right)
    return np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0)


def similarity_to_history(rows: pl.DataFrame, history: pl.DataFrame, vectors: np.ndarray, name: str, row_column: str,
                          by: str = "user_id") -> pl.DataFrame:
    """`rows` (by, ts, `row_column`: the item's row in `vectors`) with `name`: the cosine of the item's vector with the
    sum of the vectors of `history`'s items (by, ts, row_column) strictly before the row's ts."""
    ordered = history.select(by, "ts", row_column).sort(by, "ts").with_row_index("_pos")
    stacked = vectors[ordered[row_column].to_numpy()] if ordered.height else np.zeros((0, vectors.shape[1]), np.float32)
    cumulative = np.cumsum(stacked, axis=0, dtype=np.float64)
    first = ordered.select(pl.col("_pos").min().over(by))["_pos"].to_numpy().astype(np.int64)
    before_first = np.where(first[:, None] > 0, cumulative[np.maximum(first - 1, 0)], 0.0) if ordered.height else cumulative
    sums = (cumulative - before_first).astype(np.float32)
    # Ties in time keep the later history row (_pos), so the sum includes everything before the row.
    joined = rows.with_row_index("_order").sort("ts").join_asof(
        ordered.select(by, "_pos", _at="ts").sort("_at", "_pos"), left_on="ts", right_on="_at", by=by,
        strategy="backward", allow_exact_matches=False, check_sortedness=False).drop("_at")
    similarity = np.zeros(joined.height)
    position, item = joined["_pos"].to_numpy(), joined[row_column].to_numpy()
    known = np.flatnonzero(~np.isnan(position.astype(float)) & ~np.isnan(item.astype(float)))
    for start in range(0, len(known), 20_000):
        chunk = known[start : start + 20_000]
        similarity[chunk] = cosine_rows(sums[position[chunk].astype(int)], vectors[item[chunk].astype(int)])
    return joined.with_columns(pl.Series(name, similarity)).sort("_order").drop("_order", "_pos")
