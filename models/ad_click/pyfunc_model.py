"""The ad click model as MLflow logs it from code (models-from-code): MLflow runs this file when it logs or loads
the model, instead of unpickling an object. The class lives in models.ad_click.pyfunc, shipped as code_paths."""

import mlflow

from models.ad_click.pyfunc import AdClickModel

mlflow.models.set_model(AdClickModel())
