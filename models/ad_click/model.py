"""The ad click model as MLflow logs and serves it: feature rows in, click probabilities out."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
import polars as pl

from models.ad_click.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from models.ad_click.train import predict_xgboost
from models.packaging import MODELS_PACKAGE, pinned_requirements


def model_input(features: pl.DataFrame) -> pd.DataFrame:
    """The served model's input: categoricals as strings, numerics as float64 (missing = NaN)."""
    return features.select(
        *[pl.col(c).cast(pl.String) for c in CATEGORICAL_FEATURES],
        *[pl.col(c).cast(pl.Float64) for c in NUMERIC_FEATURES],
    ).to_pandas()


def log_xgboost_model(booster, encoder, example: pl.DataFrame):
    """Logs the booster as a pyfunc model in the active MLflow run; returns the ModelInfo."""
    import mlflow
    from mlflow.models import infer_signature

    with tempfile.TemporaryDirectory() as tmp:
        booster_path = Path(tmp) / "booster.ubj"
        booster.save_model(booster_path)
        encoder_path = Path(tmp) / "encoder.json"
        encoder_path.write_text(
            json.dumps({"vocabularies": encoder.vocabularies, "best_iteration": booster.best_iteration})
        )
        sample = model_input(example)
        predictions = predict_xgboost(booster, encoder, example)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODELS_PACKAGE / "ad_click" / "pyfunc_model.py"),  # models from code: nothing pickled
            artifacts={"booster": str(booster_path), "encoder": str(encoder_path)},
            signature=infer_signature(sample, predictions),
            input_example=sample.head(3),
            code_paths=[str(MODELS_PACKAGE)],
            pip_requirements=pinned_requirements("mlflow", "xgboost-cpu", "polars", "pandas", "numpy"),
        )
