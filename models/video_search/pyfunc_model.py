"""The video search model as MLflow logs it from code (models-from-code): MLflow runs this file when it logs or loads
the model, instead of unpickling an object. The class lives in models.video_search.pyfunc."""

import mlflow

from models.video_search.pyfunc import VideoSearchModel

mlflow.models.set_model(VideoSearchModel())
