"""What every logged model ships with: this `models` package as code, and exact pip pins from this install."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

MODELS_PACKAGE = Path(__file__).resolve().parent


def pinned_requirements(*distributions: str) -> list[str]:
    """Explicit pip requirements from the versions installed here (inference by MLflow costs seconds)."""
    return [f"{d}=={metadata.version(d)}" for d in distributions]


def log_from_code(case: str, artifacts: dict[str, str], sample, output, packages: tuple[str, ...], params: dict | None = None,
                  input_example: bool = True):
    """Logs `models/<case>/pyfunc_model.py` in the active MLflow run (models from code: the class is loaded from the
    code shipped with the model, nothing is pickled) with its `artifacts`, a signature from `sample` and `output` (the
    model's prediction on it), this package as code and exact pins of `packages`; returns the ModelInfo."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    return mlflow.pyfunc.log_model(
        name="model",
        python_model=str(MODELS_PACKAGE / case / "pyfunc_model.py"),
        artifacts=artifacts,
        signature=infer_signature(sample, output, params=params),
        input_example=sample.head(3) if input_example else None,
        code_paths=[str(MODELS_PACKAGE)],
        pip_requirements=pinned_requirements(*packages),
    )
