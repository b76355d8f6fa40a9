"""The news-feed model as MLflow logs it from code (models-from-code): MLflow runs this file when it logs or loads
the model, instead of unpickling an object. The class lives in models.news_feed.pyfunc."""

import mlflow

from models.news_feed.pyfunc import NewsFeedModel

mlflow.models.set_model(NewsFeedModel())
