"""The fixture case's trivial model (no Dagster): y = slope * x + intercept by least squares, against the mean."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd


def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


class LineModel(mlflow.pyfunc.PythonModel):
    """Module-level, so MLflow pickles a reference and the bento imports this code."""

    def __init__(self, slope: float = 0.0, intercept: float = 0.0):
        self.slope, self.intercept = slope, intercept

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.slope * model_input["x"].to_numpy(dtype=float) + self.intercept
