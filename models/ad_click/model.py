"""The ad click model as MLflow logs and serves it: feature rows (and the ids, for a network) in, click
probabilities out."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from models.ad_click.features import CATEGORICAL_FEATURES, ID_COLUMNS, NUMERIC_FEATURES
from models.packaging import MODELS_PACKAGE, pinned_requirements


def model_input(features: pl.DataFrame) -> pd.DataFrame:
    """The served model's input: categoricals as strings, numerics as float64 (missing = NaN), and the ids a
    network embeds (the booster and the baseline ignore them)."""
    return features.select(
        *[pl.col(c).cast(pl.String) for c in CATEGORICAL_FEATURES],
        *[pl.col(c).cast(pl.Float64) for c in NUMERIC_FEATURES],
        *[pl.col(c).cast(pl.String) for c in ID_COLUMNS if c in features.columns],
    ).to_pandas()


def log_xgboost_model(booster, encoder, example: pl.DataFrame):
    """Logs the booster as a pyfunc model in the active MLflow run; returns the ModelInfo."""
    from models.ad_click.train import predict_xgboost

    with tempfile.TemporaryDirectory() as tmp:
        booster_path = Path(tmp) / "booster.ubj"
        booster.save_model(booster_path)
        encoder_path = Path(tmp) / "encoder.json"
        encoder_path.write_text(
            json.dumps({"vocabularies": encoder.vocabularies, "best_iteration": booster.best_iteration})
        )
        return _log({"booster": str(booster_path), "encoder": str(encoder_path)}, example,
                    predict_xgboost(booster, encoder, example), "xgboost-cpu")


def log_deep_model(network, example: pl.DataFrame):
    """Logs a DeepFM/DCN network (models.ad_click.deep.DeepClickModel) as a pyfunc model; returns the ModelInfo."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "network"
        network.save(folder)
        predictions = network.predict_frame(example)
        return _log({"network": str(folder)}, example, predictions, "torch")


def _log(artifacts: dict[str, str], example: pl.DataFrame, predictions: np.ndarray, library: str):
    import mlflow
    from mlflow.models import infer_signature

    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    sample = model_input(example)
    inferred = infer_signature(sample, predictions)
    # The ids are optional inputs: rows without them (or with an unknown ad's null advertiser) still score.
    inputs = Schema([ColSpec(c.type, c.name, required=c.required and c.name not in ID_COLUMNS)
                     for c in inferred.inputs.inputs])
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(MODELS_PACKAGE / "ad_click" / "pyfunc_model.py"),  # models from code: nothing pickled
        artifacts=artifacts,
        signature=ModelSignature(inputs, inferred.outputs),
        input_example=sample.head(3),
        code_paths=[str(MODELS_PACKAGE)],
        pip_requirements=pinned_requirements("mlflow", library, "polars", "pandas", "numpy"),
    )
