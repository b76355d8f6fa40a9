"""The edge-formation models (XGBoost over pair features, GraphSAGE over the graph), the registered recommender and
the evaluation against mutual friends, Adamic-Adar and the oracle on the held-out snapshot."""

import tempfile
from pathlib import Path

import dagster as dg
import polars as pl

from assets.common import (
    frame_markdown,
    images_markdown,
    log_plots,
    metric_metadata,
    metrics_table,
    one_row,
    plot_links,
    suite_check,
)
from assets.continual import TRAINED_THROUGH_TAG
from assets.people_you_may_know.raw import GROUP, raw_ins
from assets.people_you_may_know.resources import PeopleYouMayKnowSource, PeopleYouMayKnowSplit, PeopleYouMayKnowTraining
from assets.release import register_challenger
from assets.resources import MlflowTracking
from expectations import people_you_may_know as suites

EXPERIMENT = GROUP
REGISTERED_MODEL = "people_you_may_know_recommender"
REPORT_COLUMNS = ["roc_auc", "map_at_10", "recall_at_10"]
AUDIT_SCHEMA = {"input": pl.String, "last_ts": pl.Datetime("us", "UTC"), "must_end_before": pl.Datetime("us", "UTC")}


def pymk_data(context, split: PeopleYouMayKnowSplit, users: pl.DataFrame, connections: pl.DataFrame,
              requests: pl.DataFrame, profile_views: pl.DataFrame):
    """The three labelled snapshots (training, validation, test)."""
    from models.people_you_may_know.training import PymkData

    try:
        cutoffs = split.cutoffs(connections)
    except ValueError as error:
        raise dg.Failure(str(error)) from None
    return PymkData.prepare(users, connections, requests, profile_views, cutoffs, split.candidate_cap,
                            progress=context.log.info)


def load_edge_model(mlflow_tracking: MlflowTracking, run_id: str, kind: str):
    from models.people_you_may_know.ranker import EdgeModel

    with tempfile.TemporaryDirectory() as tmp:
        return EdgeModel.from_bytes(kind, mlflow_tracking.download(run_id, "edge_model/edge_model.bin", tmp).read_bytes())


def load_recommender(mlflow_tracking: MlflowTracking, version: str):
    """The registered version's Recommender."""
    return mlflow_tracking.load_pyfunc(f"models:/{REGISTERED_MODEL}/{version}").unwrap_python_model().recommender


def _audit(data, model: str) -> pl.DataFrame:
    from models.people_you_may_know.training import leakage_audit

    return leakage_audit(data).with_columns(pl.concat_str(pl.lit(f"{model}: "), "input").alias("input"))


def _log_edge_model(model) -> None:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "edge_model.bin").write_bytes(model.to_bytes())
        mlflow.log_artifact(str(Path(tmp) / "edge_model.bin"), "edge_model")


def build_training_assets() -> list:
    @dg.asset(group_name=GROUP, kinds={"xgboost", "mlflow"},
              ins={**raw_ins, "snapshots": dg.AssetIn("people_you_may_know_snapshots")})
    def people_you_may_know_xgboost(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, people_you_may_know_split: PeopleYouMayKnowSplit,
        users: pl.DataFrame, connections: pl.DataFrame, requests: pl.DataFrame, profile_views: pl.DataFrame,
        snapshots: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """Edge formation from the pair's features (mutual friends, Adamic-Adar, time-discounted mutual friends,
        shared standardized attributes, views, ignored requests) and both members' activity, trained on the training
        snapshot and early-stopped on the validation snapshot."""
        import mlflow

        from models import plots
        from models.people_you_may_know.ranker import XGB_FEATURES, XGBoostParams
        from models.people_you_may_know.training import fit_xgboost

        data = pymk_data(context, people_you_may_know_split, users, connections, requests, profile_views)
        params = XGBoostParams()
        with mlflow_tracking.start_run(EXPERIMENT, "xgboost", {"model": "xgboost"}) as run:
            fitted = fit_xgboost(data, params, progress=context.log.info)
            validation_map = data.map_at_10("validation", fitted.model)
            mlflow.log_params({**vars(params), "candidate_cap": data.candidate_cap, "label_days": data.cutoffs.label_days})
            for step, (train, valid) in enumerate(zip(fitted.train_loss, fitted.validation), 1):
                mlflow.log_metrics({"train_logloss": train, "validation_logloss": valid}, step=step)
            mlflow.log_metrics({"best_rounds": fitted.best, "validation_map_at_10": validation_map,
                                "training_seconds": fitted.seconds})
            importance = fitted.model.booster.get_score(importance_type="gain")
            images = {
                "loss.png": plots.line_chart(list(range(1, len(fitted.validation) + 1)),
                                             {"training": fitted.train_loss, "validation": fitted.validation},
                                             "XGBoost log loss by round", "round", "log loss"),
                "importance.png": plots.feature_importance({f: importance.get(f, 0.0) for f in XGB_FEATURES}),
            }
            log_plots(images)
            _log_edge_model(fitted.model)
        return dg.MaterializeResult(
            value=pl.concat([_audit(data, "xgboost")]).with_columns(run_id=pl.lit(run.info.run_id),
                                                                    validation_map_at_10=pl.lit(validation_map)),
            metadata={**mlflow_tracking.run_link(run), "rounds": fitted.best, "validation_map_at_10": validation_map,
                      "training_pairs": fitted.pairs, "training_seconds": round(fitted.seconds, 1),
                      **plot_links(mlflow_tracking, run, images), "plots": images_markdown(images)},
        )

    @dg.asset(group_name=GROUP, kinds={"pytorch", "mlflow"},
              ins={**raw_ins, "snapshots": dg.AssetIn("people_you_may_know_snapshots")})
    def people_you_may_know_graphsage(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, people_you_may_know_split: PeopleYouMayKnowSplit,
        people_you_may_know_training: PeopleYouMayKnowTraining, users: pl.DataFrame, connections: pl.DataFrame,
        requests: pl.DataFrame, profile_views: pl.DataFrame, snapshots: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The book's GNN: GraphSAGE member vectors over the training snapshot's graph (standardized attributes and
        activity as node features), a pair scored by the dot product of its two vectors plus its pair features,
        trained on link prediction with negatives sampled among friends of friends; the epoch is chosen by the
        validation snapshot's mAP@10."""
        import mlflow
        import torch

        from models import plots
        from models.people_you_may_know.ranker import GraphSageParams
        from models.people_you_may_know.training import fit_graphsage

        torch.set_num_threads(2)
        data = pymk_data(context, people_you_may_know_split, users, connections, requests, profile_views)
        params = GraphSageParams(dim=people_you_may_know_training.dim, epochs=people_you_may_know_training.epochs)
        with mlflow_tracking.start_run(EXPERIMENT, "graphsage", {"model": "graphsage"}) as run:
            try:
                fitted = fit_graphsage(data, params, progress=context.log.info)
            except ValueError as error:
                raise dg.Failure(str(error)) from None
            mlflow.log_params({**vars(params), "candidate_cap": data.candidate_cap, "label_days": data.cutoffs.label_days,
                               "training_pairs_per_epoch": fitted.pairs})
            for epoch, (loss, score) in enumerate(zip(fitted.train_loss, fitted.validation), 1):
                mlflow.log_metrics({"train_loss": loss, "validation_map_at_10": score}, step=epoch)
            mlflow.log_metrics({"best_epoch": fitted.best, "best_validation_map_at_10": max(fitted.validation),
                                "training_seconds": fitted.seconds})
            epochs = list(range(1, len(fitted.train_loss) + 1))
            images = {
                "loss.png": plots.line_chart(epochs, {"binary cross-entropy": fitted.train_loss},
                                             "GraphSAGE training loss", "epoch", "loss"),
                "validation.png": plots.line_chart(epochs, {"mAP@10": fitted.validation},
                                                   "Validation snapshot: mAP@10", "epoch", "mAP@10"),
            }
            log_plots(images)
            _log_edge_model(fitted.model)
        best = max(fitted.validation)
        return dg.MaterializeResult(
            value=_audit(data, "graphsage").with_columns(run_id=pl.lit(run.info.run_id), validation_map_at_10=pl.lit(best)),
            metadata={**mlflow_tracking.run_link(run), "best_epoch": fitted.best, "epochs_run": len(fitted.train_loss),
                      "validation_map_at_10": best, "training_pairs_per_epoch": fitted.pairs,
                      "training_seconds": round(fitted.seconds, 1), **plot_links(mlflow_tracking, run, images),
                      "plots": images_markdown(images)},
        )

    @dg.asset(group_name=GROUP, kinds={"mlflow"},
              ins={**raw_ins, "xgboost": dg.AssetIn("people_you_may_know_xgboost"),
                   "graphsage": dg.AssetIn("people_you_may_know_graphsage")})
    def people_you_may_know_model(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, people_you_may_know_split: PeopleYouMayKnowSplit,
        users: pl.DataFrame, connections: pl.DataFrame, requests: pl.DataFrame, profile_views: pl.DataFrame,
        xgboost: pl.DataFrame, graphsage: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The challenger: whichever edge model ranks the validation snapshot's members better (mAP@10), with the
        attribute standardizer and the vocabulary it was trained with, as one registered model version."""
        import mlflow
        import pandas as pd
        from datetime import timedelta

        from models.people_you_may_know.pyfunc import log_recommender
        from models.people_you_may_know.recommend import Recommender
        from models.people_you_may_know.standardize import Standardizer
        from models.people_you_may_know.training import APPROACHES

        figures = {"xgboost": float(xgboost["validation_map_at_10"][0]), "graphsage": float(graphsage["validation_map_at_10"][0])}
        kind = max(figures, key=figures.get)
        run_id = str((xgboost if kind == "xgboost" else graphsage)["run_id"][0])
        cutoffs = people_you_may_know_split.cutoffs(connections)
        standardizer = Standardizer.fit(users)
        vocabulary = {a: sorted(names) for a, names in standardizer.names.items()}
        recommender = Recommender(load_edge_model(mlflow_tracking, run_id, kind), standardizer, vocabulary,
                                  people_you_may_know_split.candidate_cap)
        context.log.info(f"challenger: {APPROACHES[kind]} (validation mAP@10 {figures[kind]:.4f} against "
                         + ", ".join(f"{APPROACHES[k]} {v:.4f}" for k, v in figures.items() if k != kind) + ")")
        tags = {"model": "people_you_may_know", "model_kind": kind, "edge_model_run": run_id,
                "test_start": cutoffs.test.isoformat(), "test_end": cutoffs.end.isoformat(),
                TRAINED_THROUGH_TAG: (cutoffs.test - timedelta(days=1)).date().isoformat()}
        sample = pd.DataFrame({"user_a": ["a", "a", "b", "c"], "user_b": ["b", "c", "d", "d"],
                               "ts": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"])})  # UTC
        with tempfile.TemporaryDirectory() as tmp, \
                mlflow_tracking.start_run(EXPERIMENT, "recommender", tags) as run:
            mlflow.log_params({"kind": kind, "candidate_cap": recommender.candidate_cap,
                               **{f"validation_map_at_10_{k}": v for k, v in figures.items()}})
            info = log_recommender(recommender, Path(tmp) / "bundle", sample)
            version = register_challenger(context, GROUP, mlflow_tracking, info.model_uri, REGISTERED_MODEL, tags)
        context.log.info(f"registered {REGISTERED_MODEL} v{version} ({kind}) as challenger")
        audit = pl.concat([xgboost.select(list(AUDIT_SCHEMA)), graphsage.select(list(AUDIT_SCHEMA))])
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, model_uri=info.model_uri, version=version, kind=kind,
                          xgboost_run=str(xgboost["run_id"][0]), graphsage_run=str(graphsage["run_id"][0])).join(
                audit, how="cross"),
            metadata={**mlflow_tracking.run_link(run), "registered_version": version, "model_kind": kind,
                      "mlflow_model": dg.MetadataValue.url(mlflow_tracking.model_url(REGISTERED_MODEL, version)),
                      **{f"validation_map_at_10_{k}": v for k, v in figures.items()}},
        )

    @dg.asset_check(asset=people_you_may_know_model, blocking=True,
                    description="No model saw its labels: every snapshot a model was trained, tuned or judged on was "
                    "built from connections, requests and views strictly before its label window (encoding with the "
                    "full edge set is the classic leak of link prediction).")
    def people_you_may_know_no_leakage(people_you_may_know_model: pl.DataFrame) -> dg.AssetCheckResult:
        audit = people_you_may_know_model.select(list(AUDIT_SCHEMA))
        return suite_check(audit, suites.leakage_suite(), audit=dg.MetadataValue.md(frame_markdown(audit)))

    @dg.asset(group_name=GROUP, kinds={"mlflow", "polars"}, ins=raw_ins)
    def people_you_may_know_evaluation(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, people_you_may_know_split: PeopleYouMayKnowSplit,
        people_you_may_know_source: PeopleYouMayKnowSource, people_you_may_know_model: pl.DataFrame,
        users: pl.DataFrame, connections: pl.DataFrame, requests: pl.DataFrame, profile_views: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The book's metrics on the test snapshot (the graph before the last label window, judged by the connections
        made in it): ROC-AUC over friends-of-friends pairs, mAP@10 and recall@10 of each member's list, for mutual
        friends, Adamic-Adar, XGBoost, GraphSAGE and, on simulated data, the generator's probability."""
        import mlflow

        from models import plots
        from models.people_you_may_know.evaluation import per_member
        from models.people_you_may_know.training import APPROACHES, BASELINES, compare

        version = str(people_you_may_know_model["version"][0])
        chosen = str(people_you_may_know_model["kind"][0])
        runs = {kind: str(people_you_may_know_model[f"{kind}_run"][0]) for kind in ("xgboost", "graphsage")}
        models = {kind: load_edge_model(mlflow_tracking, run_id, kind) for kind, run_id in runs.items()}
        data = pymk_data(context, people_you_may_know_split, users, connections, requests, profile_views)
        result = compare(data, models, people_you_may_know_source.truth())
        names = {n: APPROACHES[n] + (" (served)" if n == chosen else "") for n in result.reports}
        table = metrics_table({names[n]: r for n, r in result.reports.items()}, REPORT_COLUMNS)
        test = data.labelled["test"]
        ks = list(range(1, 21))

        def recall_curve(scores):  # per member, then averaged, as the table's recall@10
            return [float(per_member(test.pairs["u"], test.y, scores, test.extra["new_per_member"], k=k)[2].mean())
                    for k in ks]

        images = {
            "map_at_10.png": plots.bar_chart({names[n]: r["map_at_10"] or 0.0 for n, r in result.reports.items()},
                                             "mAP@10 on the test snapshot (higher is better)"),
            "recall_at_k.png": plots.line_chart(ks, {names[n]: recall_curve(s) for n, s in result.scores.items()},
                                                "A member's new connections in their top k (mean over members)", "k", "recall@k"),
            # ROC and precision-recall only: counts of mutual friends have no calibration to plot.
            **{name: image for name, image in plots.classifier_curves(
                test.y, {names[n]: s for n, s in result.scores.items()}).items() if name != "calibration.png"},
        }
        figures = metric_metadata(result.reports)
        with mlflow_tracking.start_run(EXPERIMENT, "evaluation", {"model": "comparison", "registered_version": version}) as run:
            mlflow.log_metrics(figures)
            mlflow.log_metrics({"friends_of_friends_coverage": result.coverage})
            mlflow.log_text(table, "comparison.md")
            log_plots(images)
        margins = result.margin_lines()
        context.log.info(f"test snapshot ({len(result.judged)} members with new connections, "
                         f"{result.coverage:.0%} of new connections among friends of friends):\n{table}\n" + "\n".join(margins))
        comparison = pl.DataFrame([{"approach": name, **report, "unit_ids": result.judged.tolist(),
                                    "unit_average_precision": result.units[name].tolist()}
                                   for name, report in result.reports.items()])
        served = result.reports[chosen]
        best = max(BASELINES, key=lambda n: result.reports[n]["map_at_10"] or 0.0)
        oracle = result.reports.get("oracle")
        return dg.MaterializeResult(
            value=comparison,
            metadata={
                **mlflow_tracking.run_link(run),
                "comparison": dg.MetadataValue.md(table),
                "margins": dg.MetadataValue.md("\n".join(f"- {line}" for line in margins) or "- too few members"),
                "members_judged": len(result.judged),
                "friends_of_friends_coverage": result.coverage,
                "served_model": APPROACHES[chosen],
                "map_at_10": served["map_at_10"],
                # The front table's figures (README): the book's metric for the best baseline, the model, the oracle.
                "baseline": APPROACHES[best].removesuffix(" (baseline)"),
                "baseline_value": result.reports[best]["map_at_10"],
                "model_value": served["map_at_10"],
                "oracle_value": oracle["map_at_10"] if oracle else None,
                "evaluation_note": "\n".join([f"members judged: {len(result.judged)}; served: {APPROACHES[chosen]}",
                                              f"new connections among friends of friends: {result.coverage:.0%}",
                                              *margins]),
                "oracle": "generator's probability" if oracle else "none: user-provided data",
                "registered_version": version,
                **plot_links(mlflow_tracking, run, images),
                **figures,
                "plots": images_markdown(images),
            },
        )

    return [people_you_may_know_xgboost, people_you_may_know_graphsage, people_you_may_know_model,
            people_you_may_know_no_leakage, people_you_may_know_evaluation]
