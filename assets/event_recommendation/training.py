"""The rankers (logistic regression, XGBoost, the MLP), the challenger chosen among XGBoost and the MLP on the
validation days, and the evaluation against popularity, distance and the generator's truth."""

import tempfile
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from assets.common import images_markdown, log_plots, metric_metadata, metrics_table, one_row, plot_links
from assets.continual import TRAINED_THROUGH_TAG
from assets.event_recommendation.raw import GROUP
from assets.event_recommendation.resources import EventRecommendationSource
from assets.release import register_challenger
from assets.resources import MlflowTracking
from models.event_recommendation.data import LABEL
from models.windows import refit_rows, split_rows

EXPERIMENT = GROUP
REGISTERED_MODEL = "event_recommendation_ranker"
CANDIDATES = ("xgboost", "mlp")  # what may become the challenger: the book's two models
REPORT_COLUMNS = ["map_at_10", "map_at_3", "map", "precision_at_10", "recall_at_3", "nce", "roc_auc", "calibration_error"]
APPROACH_NAMES = {
    "random": "random order",
    "popularity": "popularity: registrations so far (baseline)",
    "distance": "distance only (baseline)",
    "logistic": "logistic regression, same features (baseline)",
    "xgboost": "XGBoost",
    "mlp": "MLP (continual learner)",
    "oracle": "oracle: generator's P(register)",
}
BASELINES = ("popularity", "distance", "logistic")


def load_ranker(mlflow_tracking: MlflowTracking, run_id: str):
    from models.event_recommendation.pyfunc import load_ranker as load

    with tempfile.TemporaryDirectory() as tmp, mlflow_tracking.activated() as mlflow:
        return load(Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="ranker", dst_path=tmp)))


def load_version(mlflow_tracking: MlflowTracking, version: str):
    """A registered version's ranker."""
    return mlflow_tracking.load_pyfunc(f"models:/{REGISTERED_MODEL}/{version}").unwrap_python_model().ranker


def _log_ranker(ranker) -> None:
    import mlflow

    from models.event_recommendation.pyfunc import save_ranker

    with tempfile.TemporaryDirectory() as tmp:
        mlflow.log_artifacts(str(save_ranker(ranker, Path(tmp) / "ranker")), "ranker")


def build_training_assets() -> list:
    ins = {"training": dg.AssetIn("event_recommendation_training_data")}

    def candidate_asset(kind: str, title: str, description: str, kinds: set[str]):
        @dg.asset(name=f"event_recommendation_{kind}_model", group_name=GROUP, kinds=kinds, ins=ins, description=description)
        def model_asset(context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, training: pl.DataFrame
                        ) -> dg.MaterializeResult:
            import mlflow

            from models import plots
            from models.event_recommendation.evaluation import rank_users
            from models.event_recommendation.features import feature_matrix
            from models.event_recommendation.ranker import (
                MLPParams,
                XGBoostParams,
                train_logistic,
                train_mlp,
                train_xgboost,
            )
            from models.metrics import log_loss

            train, validation, test = (split_rows(training, s) for s in ("train", "validation", "test"))
            refit = refit_rows(training)
            x, y = (lambda d: feature_matrix(d)), (lambda d: d[LABEL].to_numpy())
            with mlflow_tracking.start_run(EXPERIMENT, kind, {"model": kind}) as run:
                if kind == "xgboost":
                    params = XGBoostParams()
                    chosen = train_xgboost(x(train), y(train), x(validation), y(validation), params, progress=context.log.info)
                    final = train_xgboost(x(refit), y(refit), None, None, params, rounds=chosen.best)
                    mlflow.log_params({**vars(params), "best_rounds": chosen.best})
                elif kind == "mlp":
                    params = MLPParams()
                    chosen = train_mlp(x(train), y(train), x(validation), y(validation), params, progress=context.log.info)
                    final = train_mlp(x(refit), y(refit), None, None, params, epochs=chosen.best)
                    mlflow.log_params({**{k: str(v) for k, v in vars(params).items()}, "best_epochs": chosen.best})
                    for step, value in enumerate(chosen.train_curve, 1):
                        mlflow.log_metric("train_log_loss", value, step=step)
                else:
                    chosen = train_logistic(x(train), y(train))
                    final = train_logistic(x(refit), y(refit))
                    mlflow.log_params({"C": 1.0, "features": x(train).shape[1]})
                for step, value in enumerate(chosen.curve, 1):
                    mlflow.log_metric("validation_log_loss", value, step=step)
                p_validation = chosen.ranker.predict(x(validation))
                validation_figures = {"validation_log_loss": log_loss(y(validation), p_validation),
                                      "validation_map_at_10": rank_users(validation, p_validation).report["map_at_10"]}
                p_test = final.ranker.predict(x(test))
                images = plots.classifier_curves(y(test), {kind: p_test})
                if chosen.curve:
                    images["validation_curve.png"] = plots.line_chart(
                        list(range(1, len(chosen.curve) + 1)), {"validation log loss": chosen.curve},
                        f"{title}: validation log loss", "round" if kind == "xgboost" else "epoch", "log loss")
                if kind == "xgboost":
                    images["feature_importance.png"] = plots.feature_importance(
                        final.ranker.booster.get_score(importance_type="total_gain"))
                mlflow.log_metrics({**validation_figures, "training_seconds": chosen.seconds + final.seconds,
                                    "train_rows": train.height, "refit_rows": refit.height})
                log_plots(images)
                _log_ranker(final.ranker)
            context.log.info(f"{title}: validation log loss {validation_figures['validation_log_loss']:.5f}, "
                             f"mAP@10 {validation_figures['validation_map_at_10']:.4f} ({chosen.best or '-'} rounds/epochs)")
            return dg.MaterializeResult(
                value=one_row(run_id=run.info.run_id, kind=kind, best=chosen.best, **validation_figures),
                metadata={**validation_figures, "best_rounds_or_epochs": chosen.best,
                          "training_seconds": round(chosen.seconds + final.seconds, 1), "refit_rows": refit.height,
                          **mlflow_tracking.run_link(run), **plot_links(mlflow_tracking, run, images),
                          "plots": images_markdown(images)},
            )

        return model_asset

    logistic = candidate_asset("logistic", "Logistic regression",
                               "A strong simple baseline: logistic regression on the same features (log-scaled, "
                               "standardized, missing-value indicators).", {"sklearn", "mlflow"})
    xgboost_model = candidate_asset("xgboost", "XGBoost",
                                    "The book's first model: XGBoost (binary:logistic) on the point-in-time features, "
                                    "its rounds chosen on the validation days, then refitted on every known label.",
                                    {"xgboost", "mlflow"})
    mlp = candidate_asset("mlp", "MLP",
                          "The book's continual learner: a PyTorch MLP on the same features, its epochs chosen on the "
                          "validation days, then refitted; the daily fine-tune trains it further.", {"pytorch", "mlflow"})

    @dg.asset(group_name=GROUP, kinds={"mlflow"}, ins={
        "xgboost_model": dg.AssetIn("event_recommendation_xgboost_model"), "mlp_model": dg.AssetIn("event_recommendation_mlp_model"),
        "training": dg.AssetIn("event_recommendation_training_data")})
    def event_recommendation_challenger(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, xgboost_model: pl.DataFrame,
        mlp_model: pl.DataFrame, training: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The candidate with the lower log loss on the validation days, registered as the challenger: what the
        service would serve if the gate promotes it."""
        import mlflow
        from datetime import datetime, timedelta

        from models.event_recommendation.pyfunc import log_event_ranker

        candidates = {str(f["kind"][0]): f.row(0, named=True) for f in (xgboost_model, mlp_model)}
        # Log loss uses every validation row; mAP@10 averages a few hundred users and moves by a hundredth between
        # two equal models, so it would pick by noise.
        kind = min(candidates, key=lambda k: candidates[k]["validation_log_loss"])
        chosen = candidates[kind]
        ranker = load_ranker(mlflow_tracking, chosen["run_id"])
        test = split_rows(training, "test")
        test_start = test["ts"].min().replace(hour=0, minute=0, second=0, microsecond=0)
        end = test["ts"].max().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        tags = {"model": "event_ranker", "model_kind": kind, "candidate_run": chosen["run_id"],
                "test_start": test_start.isoformat(), "test_end": end.isoformat(),
                TRAINED_THROUGH_TAG: (test_start - timedelta(days=1)).date().isoformat()}
        from models.event_recommendation.features import FEATURES

        with tempfile.TemporaryDirectory() as tmp, mlflow_tracking.start_run(EXPERIMENT, "challenger", tags) as run:
            mlflow.log_params({"model_kind": kind, **{f"{k}_{m}": v[m] for k, v in candidates.items()
                                                      for m in ("validation_log_loss", "validation_map_at_10")}})
            info = log_event_ranker(ranker, test.head(50).select(FEATURES).to_pandas(), Path(tmp) / "ranker")
            version = register_challenger(context, GROUP, mlflow_tracking, info.model_uri, REGISTERED_MODEL, tags)
        context.log.info(f"registered {REGISTERED_MODEL} v{version} ({kind}) as challenger")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, model_uri=info.model_uri, version=version, kind=kind,
                             registered_at=datetime.now().isoformat()),
            metadata={**mlflow_tracking.run_link(run), "registered_version": version, "model_kind": kind,
                      "mlflow_model": dg.MetadataValue.url(mlflow_tracking.model_url(REGISTERED_MODEL, version)),
                      **{f"{k}_validation_map_at_10": v["validation_map_at_10"] for k, v in candidates.items()}},
        )

    @dg.asset(group_name=GROUP, kinds={"mlflow", "polars"}, ins={
        "training": dg.AssetIn("event_recommendation_training_data"),
        "logistic_model": dg.AssetIn("event_recommendation_logistic_model"),
        "xgboost_model": dg.AssetIn("event_recommendation_xgboost_model"),
        "mlp_model": dg.AssetIn("event_recommendation_mlp_model"),
        "challenger": dg.AssetIn("event_recommendation_challenger")})
    def event_recommendation_evaluation(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, event_recommendation_source: EventRecommendationSource,
        training: pl.DataFrame, logistic_model: pl.DataFrame, xgboost_model: pl.DataFrame, mlp_model: pl.DataFrame,
        challenger: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The book's metric, mAP (at 10, at 3 and over all of a user's candidates), with precision, recall and NCE
        on the test days, per user, for popularity, distance, logistic regression, XGBoost, the MLP and, on
        simulated data, the generator's own probabilities."""
        import mlflow

        from models import plots
        from models.event_recommendation.evaluation import baseline_scores, evaluate
        from models.event_recommendation.features import feature_matrix
        from models.promotion import paired_bootstrap

        train, test = split_rows(training, "train"), split_rows(training, "test")
        background = float(train[LABEL].mean())
        scores: dict[str, tuple[np.ndarray, float | None]] = {n: (s, None) for n, s in baseline_scores(test).items()}
        scores = {"random": (np.random.default_rng(0).random(test.height), None), **scores}
        for reference in (logistic_model, xgboost_model, mlp_model):
            ranker = load_ranker(mlflow_tracking, str(reference["run_id"][0]))
            scores[str(reference["kind"][0])] = (ranker.predict(feature_matrix(test)), background)
        truth = event_recommendation_source.truth()
        if truth is not None:
            oracle = test.join(truth, on=["user_id", "event_id", "ts"], how="left", maintain_order="left")["p_register"]
            if oracle.null_count() == 0:
                scores["oracle"] = (oracle.to_numpy(), background)
        results = {name: evaluate(test, s, bg) for name, (s, bg) in scores.items()}
        served = str(challenger["kind"][0])
        # Both of the book's models against every baseline, the served one first.
        margins = {(model, baseline): paired_bootstrap(results[model].ap_at_10, results[baseline].ap_at_10, resamples=2000)
                   for model in sorted(CANDIDATES, key=lambda m: m != served) for baseline in BASELINES}
        rows = {APPROACH_NAMES[n]: r.report for n, r in results.items()}
        table = metrics_table(rows, REPORT_COLUMNS)
        margin_lines = [f"{APPROACH_NAMES[m]}{' (served)' if m == served else ''} minus {APPROACH_NAMES[b]}: mAP@10 "
                        f"{i.point:+.4f} [{i.low:+.4f}, {i.high:+.4f}] over {len(results[m].users)} users"
                        for (m, b), i in margins.items()]
        images = {
            "map_at_10.png": plots.bar_chart({APPROACH_NAMES[n]: r.report["map_at_10"] for n, r in results.items()},
                                             "mAP@10 on the test days (higher is better)"),
            **plots.classifier_curves(test[LABEL].to_numpy(), {n: s for n, (s, bg) in scores.items() if bg is not None}),
        }
        with mlflow_tracking.start_run(EXPERIMENT, "evaluation", {"model": "comparison",
                                                                 "registered_version": str(challenger["version"][0])}) as run:
            figures = metric_metadata({n: r.report for n, r in results.items()})
            mlflow.log_metrics(figures)
            mlflow.log_metrics({f"{m}_minus_{b}_map_at_10_{end}": getattr(i, end)
                                for (m, b), i in margins.items() for end in ("point", "low", "high")})
            mlflow.log_text(table, "comparison.md")
            log_plots(images)
        context.log.info(f"test days ({test.height} impressions, {len(results[served].users)} users who registered):\n"
                         f"{table}\n" + "\n".join(margin_lines))
        comparison = pl.DataFrame([
            {"approach": name, **{k: (float(v) if v is not None else None) for k, v in r.report.items()},
             "unit_ids": r.users, "unit_ap_at_10": r.ap_at_10.tolist()}
            for name, r in results.items()
        ])
        best = max(BASELINES, key=lambda name: results[name].report["map_at_10"])
        oracle_report = results.get("oracle")
        return dg.MaterializeResult(
            value=comparison,
            metadata={
                **mlflow_tracking.run_link(run),
                "comparison": dg.MetadataValue.md(table),
                "margins": dg.MetadataValue.md("\n".join(f"- {line}" for line in margin_lines)),
                "test_impressions": test.height,
                "test_users_with_registrations": len(results[served].users),
                "served_kind": served,
                "registered_version": str(challenger["version"][0]),
                # The front table's figures (README): the book's metric for the best baseline, the model and the oracle.
                "baseline": APPROACH_NAMES[best].split(" (")[0],
                "baseline_value": results[best].report["map_at_10"],
                "model_value": results[served].report["map_at_10"],
                "oracle_value": oracle_report.report["map_at_10"] if oracle_report else None,
                "evaluation_note": "\n".join([f"users who registered in the test days: {len(results[served].users)}", *margin_lines]),
                "oracle": "generator's P(register) of each impression" if oracle_report else "none: user-provided data",
                **plot_links(mlflow_tracking, run, images),
                **figures,
                "plots": images_markdown(images),
            },
        )

    return [logistic, xgboost_model, mlp, event_recommendation_challenger, event_recommendation_evaluation]
