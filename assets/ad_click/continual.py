"""Ad click's part of the continual-learning kit (assets/continual.py): the champion network trained one more pass
at a lower rate on the days since it last learned, judged on the newest day by NCE per impression."""

import polars as pl

from assets.ad_click.raw import GROUP
from assets.ad_click.training import EXPERIMENT, REGISTERED_MODEL, matured
from assets.continual import FineTuning, Tuned
from assets.release import Scores
from models.ad_click.features import LABEL

NETWORKS = ("deepfm", "dcn")


def _known(context, rows: pl.DataFrame) -> pl.DataFrame:
    return matured(rows, context.resources.ad_click_source)[0]


def _tune(context, champion_uri: str, fresh: pl.DataFrame, holdout: pl.DataFrame) -> Tuned:
    import mlflow

    from models.ad_click.deep import fine_tune
    from models.ad_click.model import log_deep_model
    from models.ad_click.train import evaluate_predictions

    network = context.resources.mlflow_tracking.load_pyfunc(champion_uri).unwrap_python_model().network

    def progress(epoch):
        context.log.info(f"fine-tune epoch {epoch.epoch}: train log loss {epoch.train_log_loss:.5f} ({epoch.seconds:.1f} s)")
        mlflow.log_metric("train_log_loss", epoch.train_log_loss, step=round(epoch.epoch * 100))  # hundredths

    tuned, curve = fine_tune(network, fresh, on_epoch=progress)
    mlflow.log_params({"learning_rate": network.params.fine_tune_learning_rate, "epochs": network.params.fine_tune_epochs})
    p = tuned.predict_frame(holdout)
    report = evaluate_predictions(fresh, holdout, p)
    mlflow.log_metrics({f"holdout_{k}": v for k, v in report.items()})
    info = log_deep_model(tuned, holdout.head(200))
    return Tuned(info.model_uri, {"seconds": sum(e.seconds for e in curve), **{f"holdout_{k}": v for k, v in report.items()}})


def _score(context, version: str, holdout: pl.DataFrame, last_learned: pl.DataFrame) -> Scores:
    from models.ad_click.model import model_input
    from models.ad_click.train import evaluate_predictions
    from models.metrics import nce_units

    # NCE's background rate: the CTR of the last day the challenger learned from (known before the holdout).
    p = context.resources.mlflow_tracking.load_pyfunc(f"models:/{REGISTERED_MODEL}/{version}").predict(model_input(holdout))
    report = evaluate_predictions(last_learned, holdout, p)
    return Scores({k: report[k] for k in ("nce", "log_loss", "calibration_error")},
                  nce_units(holdout[LABEL].to_numpy(), p, float(last_learned[LABEL].mean())))


def fine_tuning(retrain_job: str) -> FineTuning:
    from assets.ad_click.serving import PROMOTION_POLICY

    return FineTuning(
        case=GROUP, registered_model=REGISTERED_MODEL, rows_asset="ad_click_features", tunable_kinds=NETWORKS,
        experiment=EXPERIMENT, retrain_job=retrain_job, known=_known, tune=_tune, score=_score,
        policy=PROMOTION_POLICY, unit="impression", resources=frozenset({"ad_click_source"}),
    )
