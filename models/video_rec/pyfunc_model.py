"""The video recommender as MLflow logs it from code (models-from-code): MLflow runs this file when it logs or loads
the model, instead of unpickling an object. The class lives in models.video_rec.pyfunc, shipped as code_paths."""

import mlflow

from models.video_rec.pyfunc import VideoRecommenderModel

mlflow.models.set_model(VideoRecommenderModel())
