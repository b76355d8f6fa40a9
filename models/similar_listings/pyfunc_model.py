"""The similar-listings model as MLflow logs it from code (models-from-code): MLflow runs this file when it logs or
loads the model, instead of unpickling an object. The class lives in models.similar_listings.pyfunc."""

import mlflow

from models.similar_listings.pyfunc import SimilarListingsModel

mlflow.models.set_model(SimilarListingsModel())
