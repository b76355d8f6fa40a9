"""The fixture case's service: one endpoint, x values in, predictions out."""

from __future__ import annotations

import bentoml
from pydantic import BaseModel, Field

from bentos.base import Strict, online_service, service_config

try:  # written by bentos/package.py into each build
    from tests.fixture_case.model_tag import MODEL_TAG
except ImportError:  # running from the source tree
    MODEL_TAG = "fixture_case_line:latest"


class PredictRequest(Strict):
    x: list[float] = Field(min_length=1, max_length=1_000)


class PredictResponse(BaseModel):
    predictions: list[float]
    model_version: str


@online_service(max_queue_ms=20, max_in_flight=10)
@bentoml.service(**service_config(workers=1))
class FixtureService:
    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        import bentoml.mlflow

        self.model = bentoml.mlflow.load_model(self.model_ref).unwrap_python_model()
        self.model_version = self.model_ref.info.labels.get("mlflow_version", str(self.model_ref.tag.version))

    @bentoml.api(input_spec=PredictRequest, output_spec=PredictResponse)
    async def predict(self, x: list[float]) -> PredictResponse:
        """Predictions of the champion line for each x."""
        return PredictResponse(predictions=[self.model.slope * v + self.model.intercept for v in x],
                               model_version=self.model_version)
