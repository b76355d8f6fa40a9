"""What every logged model ships with: this `models` package as code, and exact pip pins from this install."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

MODELS_PACKAGE = Path(__file__).resolve().parent


def pinned_requirements(*distributions: str) -> list[str]:
    """Explicit pip requirements from the versions installed here (inference by MLflow costs seconds)."""
    return [f"{d}=={metadata.version(d)}" for d in distributions]
