"""Custom expectations: target leakage by correlation with the label (GX has no built-in one)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import BatchExpectation
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider


class TableLabelCorrelations(TableMetricProvider):
    """|Pearson correlation| of every numeric column with the label column."""

    metric_name = "table.label_correlations"
    value_keys = ("label_column",)

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration):
        df, _, _ = execution_engine.get_compute_domain(
            domain_kwargs=metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE
        )
        label_column = metric_value_kwargs["label_column"]
        label = df[label_column].to_numpy(dtype=np.float64)
        correlations: dict[str, float] = {}
        for column in df.columns:
            if column == label_column or not (
                df[column].dtype.kind in "biuf"
            ):
                continue
            values = df[column].to_numpy(dtype=np.float64)
            mask = ~np.isnan(values)
            if mask.sum() < 2 or np.std(values[mask]) == 0 or np.std(label[mask]) == 0:
                continue
            correlations[column] = float(abs(np.corrcoef(values[mask], label[mask])[0, 1]))
        return correlations


class ExpectNoColumnToCorrelateWithLabel(BatchExpectation):
    """No numeric column's |correlation| with the label may exceed `max_abs_correlation`.

    A feature that predicts the label this well is almost always the label itself, or computed after it.
    """

    label_column: str
    max_abs_correlation: float = 0.5

    metric_dependencies = ("table.label_correlations",)
    domain_keys: ClassVar[tuple[str, ...]] = ("row_condition", "condition_parser")
    success_keys = ("label_column", "max_abs_correlation")

    def _validate(self, metrics: dict, runtime_configuration=None, execution_engine=None) -> dict[str, Any]:
        correlations = metrics["table.label_correlations"]
        threshold = self.max_abs_correlation
        offenders = {c: round(v, 4) for c, v in sorted(correlations.items(), key=lambda kv: -kv[1]) if v > threshold}
        strongest = max(correlations.items(), key=lambda kv: kv[1], default=(None, 0.0))
        return {
            "success": not offenders,
            "result": {
                "observed_value": {"strongest": strongest[0], "abs_correlation": round(strongest[1], 4)},
                "details": {"above_threshold": offenders} if offenders else {},
            },
        }
