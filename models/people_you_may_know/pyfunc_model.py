"""The people-you-may-know recommender as MLflow logs it from code (models-from-code): MLflow runs this file when it
logs or loads the model, instead of unpickling an object. The class lives in models.people_you_may_know.pyfunc."""

import mlflow

from models.people_you_may_know.pyfunc import PeopleYouMayKnowModel

mlflow.models.set_model(PeopleYouMayKnowModel())
