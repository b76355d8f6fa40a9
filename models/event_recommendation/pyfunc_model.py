"""The event ranker as MLflow logs it from code (models-from-code): MLflow runs this file when it logs or loads the
model, instead of unpickling an object. The class lives in models.event_recommendation.pyfunc."""

import mlflow

from models.event_recommendation.pyfunc import EventRankerModel

mlflow.models.set_model(EventRankerModel())
