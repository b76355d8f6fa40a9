"""The engagement models (one XGBoost model per head, the multi-task network), the challenger chosen on the validation
days, and the evaluation: each head's ROC-AUC and PR-AUC, and the feed's nDCG@10 against chronological order, author
affinity and the generator's truth."""

import tempfile
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from assets.common import images_markdown, log_plots, metric_metadata, metrics_table, one_row, plot_links
from assets.continual import TRAINED_THROUGH_TAG
from assets.news_feed.raw import GROUP
from assets.news_feed.resources import NewsFeedObjective, NewsFeedSource
from assets.release import register_challenger
from assets.resources import MlflowTracking
from models.news_feed.data import DWELL, HEADS
from models.windows import refit_rows, split_rows

EXPERIMENT = GROUP
REGISTERED_MODEL = "news_feed_ranker"
CANDIDATES = ("xgboost", "multitask")
APPROACH_NAMES = {
    "random": "random order",
    "chronological": "reverse chronological (baseline)",
    "affinity": "author affinity: past engagement with the author (baseline)",
    "xgboost": "XGBoost per head, weighted (baseline)",
    "multitask": "multi-task network, weighted",
    "oracle": "oracle: generator's probabilities, weighted",
}
FEED_COLUMNS = ["ndcg_at_10", "hide_or_block_in_top_3", "sessions"]


def _short(approach: str) -> str:
    """An approach's name without its explanation: "XGBoost per head", "reverse chronological"."""
    return APPROACH_NAMES[approach].split(" (")[0].split(":")[0].split(",")[0]


def load_model(mlflow_tracking: MlflowTracking, run_id: str):
    from models.news_feed.pyfunc import load_model as load

    with tempfile.TemporaryDirectory() as tmp, mlflow_tracking.activated() as mlflow:
        return load(Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model", dst_path=tmp)))


def load_version(mlflow_tracking: MlflowTracking, version: str):
    """A registered version's engagement model."""
    return mlflow_tracking.load_pyfunc(f"models:/{REGISTERED_MODEL}/{version}").unwrap_python_model().model


def feed_of(model, rows: pl.DataFrame, weights: dict[str, float]):
    """The feed's per-session nDCG@10 of a model on rows: every post scored at the top, ordered by the weighted score."""
    from models.news_feed.evaluation import feed_gains, feed_ndcg, weighted_score
    from models.news_feed.features import feature_matrix

    return feed_ndcg(rows, weighted_score(model.predict(feature_matrix(rows, position=1.0)), weights), feed_gains(rows, weights))


def _log_model(model) -> None:
    import mlflow

    from models.news_feed.pyfunc import save_model

    with tempfile.TemporaryDirectory() as tmp:
        mlflow.log_artifacts(str(save_model(model, Path(tmp) / "model")), "model")


def build_training_assets() -> list:
    ins = {"training": dg.AssetIn("news_feed_training_data")}

    def candidate_asset(kind: str, title: str, description: str, kinds: set[str]):
        @dg.asset(name=f"news_feed_{kind}_model", group_name=GROUP, kinds=kinds, ins=ins, description=description)
        def model_asset(context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking,
                        news_feed_objective: NewsFeedObjective, training: pl.DataFrame) -> dg.MaterializeResult:
            import mlflow

            from models import plots
            from models.news_feed.features import feature_matrix
            from models.news_feed.ranker import (
                MultiTaskParams,
                XGBoostParams,
                labels_of,
                train_multitask,
                train_xgboost,
                validation_loss,
            )

            train, validation, test = (split_rows(training, s) for s in ("train", "validation", "test"))
            refit = refit_rows(training)
            x = feature_matrix
            with mlflow_tracking.start_run(EXPERIMENT, kind, {"model": kind}) as run:
                if kind == "xgboost":
                    params = XGBoostParams()
                    chosen = train_xgboost(x(train), labels_of(train), x(validation), labels_of(validation), params,
                                           progress=context.log.info)
                    final = train_xgboost(x(refit), labels_of(refit), None, None, params, rounds=chosen.best)
                    mlflow.log_params({**vars(params), **{f"best_rounds_{h}": n for h, n in chosen.best.items()}})
                    for head, curve in chosen.head_curves.items():
                        for step, value in enumerate(curve, 1):
                            mlflow.log_metric(f"validation_loss_{head}", value, step=step)
                else:
                    params = MultiTaskParams()
                    chosen = train_multitask(x(train), labels_of(train), x(validation), labels_of(validation), params,
                                             progress=context.log.info)
                    final = train_multitask(x(refit), labels_of(refit), None, None, params, epochs=chosen.best)
                    mlflow.log_params({**{k: str(v) for k, v in vars(params).items() if k not in ("loss_weights", "negative_rates")},
                                       **{f"loss_weight_{h}": w for h, w in params.loss_weights.items()},
                                       **{f"negative_rate_{h}": r for h, r in params.negative_rates.items()},
                                       "best_epochs": chosen.best})
                    for step, value in enumerate(chosen.curve, 1):
                        mlflow.log_metric("validation_loss", value, step=step)
                    for step, value in enumerate(chosen.train_curve, 1):
                        mlflow.log_metric("train_loss", value, step=step)
                    for head, curve in chosen.head_curves.items():
                        for step, value in enumerate(curve, 1):
                            mlflow.log_metric(f"validation_loss_{head}", value, step=step)
                loss, per_head = validation_loss(chosen.model, x(validation), labels_of(validation))
                validation_feeds = feed_of(chosen.model, validation, news_feed_objective.resolved)
                figures = {"validation_loss": loss, **{f"validation_loss_{h}": v for h, v in per_head.items()},
                           "validation_ndcg_at_10": validation_feeds.report["ndcg_at_10"]}
                images = {"validation_loss_per_head.png": plots.bar_chart(
                    per_head, f"{title}: validation loss per head (normalized; lower is better)", threshold=1.0)}
                if kind == "multitask":
                    images["validation_curve.png"] = plots.line_chart(
                        list(range(1, len(chosen.curve) + 1)),
                        {"validation (mean over heads)": chosen.curve, **{h: c for h, c in chosen.head_curves.items() if h in ("like", "comment", "skip", DWELL)}},
                        f"{title}: validation loss", "epoch", "normalized loss")
                else:
                    images["feature_importance.png"] = plots.feature_importance(
                        final.model.boosters["like"].get_score(importance_type="total_gain"))
                mlflow.log_metrics({**figures, "training_seconds": chosen.seconds + final.seconds,
                                    "train_rows": train.height, "refit_rows": refit.height})
                log_plots(images)
                _log_model(final.model)
            context.log.info(f"{title}: validation loss {loss:.4f}, feed nDCG@10 {figures['validation_ndcg_at_10']:.4f}")
            best = chosen.best if isinstance(chosen.best, int) else ", ".join(f"{h} {n}" for h, n in chosen.best.items())
            return dg.MaterializeResult(
                value=one_row(run_id=run.info.run_id, kind=kind, **figures, validation_sessions=validation_feeds.sessions,
                              validation_session_ndcg=validation_feeds.ndcg.tolist()),
                metadata={**figures, "rounds_or_epochs": str(best), "training_seconds": round(chosen.seconds + final.seconds, 1),
                          "refit_rows": refit.height, **mlflow_tracking.run_link(run), **plot_links(mlflow_tracking, run, images),
                          "plots": images_markdown(images)},
            )

        return model_asset

    xgboost_model = candidate_asset(
        "xgboost", "XGBoost per head",
        "The baseline the book improves on: one XGBoost model per reaction (binary:logistic) and one for dwell "
        "(squared error), each with its rounds chosen on the validation days, then refitted on every known label.",
        {"xgboost", "mlflow"})
    multitask = candidate_asset(
        "multitask", "Multi-task network",
        "The book's model: a PyTorch network with a shared tower and one head per reaction, a skip head and a dwell "
        "regression, trained on the weighted sum of the heads' losses with each rare head's negatives downsampled; its "
        "epochs chosen on the validation days, then refitted.", {"pytorch", "mlflow"})

    @dg.asset(group_name=GROUP, kinds={"mlflow"}, ins={
        "xgboost_model": dg.AssetIn("news_feed_xgboost_model"), "multitask_model": dg.AssetIn("news_feed_multitask_model"),
        "training": dg.AssetIn("news_feed_training_data")})
    def news_feed_challenger(context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking,
                             xgboost_model: pl.DataFrame, multitask_model: pl.DataFrame, training: pl.DataFrame
                             ) -> dg.MaterializeResult:
        """The book's multi-task network, registered as the challenger (what the service would serve if the gate
        promotes it), unless XGBoost per head makes better feeds on the validation days by more than noise."""
        import mlflow
        from datetime import datetime, timedelta

        from models.news_feed.features import FEATURES
        from models.news_feed.pyfunc import log_news_feed_model
        from models.promotion import paired_bootstrap

        candidates = {str(f["kind"][0]): f.row(0, named=True) for f in (xgboost_model, multitask_model)}
        # The two tie on these features (README "News feed: results"), and a tie goes to the network: one model for
        # every head, trained further day by day, and the cheaper of the two to serve. XGBoost wins only when its
        # validation feeds are better beyond the paired bootstrap's 95% interval.
        xgb, network = candidates["xgboost"], candidates["multitask"]
        by_session = dict(zip(network["validation_sessions"], network["validation_session_ndcg"]))
        shared = [(v, by_session[s]) for s, v in zip(xgb["validation_sessions"], xgb["validation_session_ndcg"]) if s in by_session]
        margin = paired_bootstrap([a for a, _ in shared], [b for _, b in shared], resamples=2000)
        kind = "xgboost" if margin.low > 0 else "multitask"
        context.log.info(f"validation feed nDCG@10, XGBoost minus the multi-task network: {margin.point:+.4f} "
                         f"[{margin.low:+.4f}, {margin.high:+.4f}] over {margin.units} sessions: {kind}")
        chosen = candidates[kind]
        model = load_model(mlflow_tracking, chosen["run_id"])
        test = split_rows(training, "test")
        test_start = test["ts"].min().replace(hour=0, minute=0, second=0, microsecond=0)
        end = test["ts"].max().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        tags = {"model": "news_feed_ranker", "model_kind": kind, "candidate_run": chosen["run_id"],
                "test_start": test_start.isoformat(), "test_end": end.isoformat(),
                TRAINED_THROUGH_TAG: (test_start - timedelta(days=1)).date().isoformat()}
        with tempfile.TemporaryDirectory() as tmp, mlflow_tracking.start_run(EXPERIMENT, "challenger", tags) as run:
            mlflow.log_params({"model_kind": kind, **{f"{k}_{m}": v[m] for k, v in candidates.items()
                                                      for m in ("validation_loss", "validation_ndcg_at_10")}})
            mlflow.log_metrics({f"validation_xgboost_minus_multitask_ndcg_at_10_{end}": getattr(margin, end)
                                for end in ("point", "low", "high")})
            info = log_news_feed_model(model, test.head(50).select(FEATURES).to_pandas(), Path(tmp) / "model")
            version = register_challenger(context, GROUP, mlflow_tracking, info.model_uri, REGISTERED_MODEL, tags)
        context.log.info(f"registered {REGISTERED_MODEL} v{version} ({kind}) as challenger")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, model_uri=info.model_uri, version=version, kind=kind,
                          registered_at=datetime.now().isoformat()),
            metadata={**mlflow_tracking.run_link(run), "registered_version": version, "model_kind": kind,
                      "mlflow_model": dg.MetadataValue.url(mlflow_tracking.model_url(REGISTERED_MODEL, version)),
                      **{f"{k}_validation_loss": v["validation_loss"] for k, v in candidates.items()},
                      **{f"{k}_validation_ndcg_at_10": v["validation_ndcg_at_10"] for k, v in candidates.items()},
                      "validation_xgboost_minus_multitask": f"{margin.point:+.4f} [{margin.low:+.4f}, {margin.high:+.4f}]"},
        )

    @dg.asset(group_name=GROUP, kinds={"mlflow", "polars"}, ins={
        "training": dg.AssetIn("news_feed_training_data"),
        "xgboost_model": dg.AssetIn("news_feed_xgboost_model"),
        "multitask_model": dg.AssetIn("news_feed_multitask_model"),
        "challenger": dg.AssetIn("news_feed_challenger")})
    def news_feed_evaluation(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, news_feed_source: NewsFeedSource,
        news_feed_objective: NewsFeedObjective, training: pl.DataFrame, xgboost_model: pl.DataFrame,
        multitask_model: pl.DataFrame, challenger: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The book's metrics on the test days: each head's ROC-AUC and PR-AUC (XGBoost per head, the multi-task
        network, the generator's probabilities), and the feed's nDCG@10 of the weighted engagement users gave, for
        random and reverse chronological order, author affinity, both models' weighted scores and the oracle's; with
        bootstrap intervals of the margins, and what the dwell and skip heads do to passive users' feeds."""
        import mlflow

        from models import plots
        from models.news_feed.evaluation import (
            feed_gains,
            feed_ndcg,
            head_report,
            passive_effect,
            passive_users,
            pr_auc_margin,
            weighted_score,
        )
        from models.news_feed.features import feature_matrix
        from models.news_feed.ranker import labels_of
        from models.promotion import paired_bootstrap

        weights = news_feed_objective.resolved
        test = split_rows(training, "test")
        served = str(challenger["kind"][0])
        logged, top = feature_matrix(test), feature_matrix(test, position=1.0)
        models = {str(r["kind"][0]): load_model(mlflow_tracking, str(r["run_id"][0])) for r in (xgboost_model, multitask_model)}
        heads = {kind: model.predict(logged) for kind, model in models.items()}  # at the logged position: what happened
        at_top = {kind: model.predict(top) for kind, model in models.items()}  # as if at the top: what the feed ranks
        truth = news_feed_source.truth()
        if truth is not None:
            joined = test.select("impression_id").join(truth, on="impression_id", how="left", maintain_order="left")
            if joined["p_like"].null_count() == 0:
                heads["oracle"] = {h: joined[f"p_{h}"].to_numpy() for h in (*HEADS, DWELL)}
                at_top["oracle"] = {h: joined[f"top_{h}"].to_numpy() for h in (*HEADS, DWELL)}
        labels = labels_of(test)
        head_rows = {kind: head_report(labels, p) for kind, p in heads.items()}
        sessions = test["session_id"].to_numpy()
        head_margins = {h: pr_auc_margin(labels[h], heads["multitask"][h], heads["xgboost"][h], sessions) for h in HEADS}

        gains = feed_gains(test, weights)
        scores = {"random": np.random.default_rng(0).random(test.height),
                  "chronological": -test["post_age_hours"].to_numpy(),
                  "affinity": test["affinity_engaged_rate"].to_numpy(),
                  **{kind: weighted_score(p, weights) for kind, p in at_top.items()}}
        feeds = {name: feed_ndcg(test, s, gains) for name, s in scores.items()}
        other = "xgboost" if served == "multitask" else "multitask"
        # Both models against the book's baseline and author affinity, the served one first, then against each other.
        pairs = [(m, b) for m in (served, other) for b in ("chronological", "affinity")] + [(served, other)]
        feed_margins = {(m, b): paired_bootstrap(feeds[m].ndcg, feeds[b].ndcg, resamples=2000) for m, b in pairs}
        passive = passive_effect(test, at_top[served], weights, passive_users(refit_rows(training)))

        head_table = metrics_table(
            {_short(k): {f"{h} pr_auc": r[f"{h}_pr_auc"] for h in HEADS} for k, r in head_rows.items()},
            [f"{h} pr_auc" for h in HEADS])
        roc_table = metrics_table(
            {_short(k): {f"{h} roc_auc": r[f"{h}_roc_auc"] for h in HEADS} for k, r in head_rows.items()},
            [f"{h} roc_auc" for h in HEADS])
        feed_table = metrics_table({APPROACH_NAMES[n]: f.report for n, f in feeds.items()}, FEED_COLUMNS)
        margin_lines = [
            *[f"multi-task minus XGBoost, {h} PR-AUC: {m.point:+.4f} [{m.low:+.4f}, {m.high:+.4f}]"
              f"{' (outside the interval)' if m.significant else ' (within noise)'}" for h, m in head_margins.items()],
            *[f"{_short(m)}{' (served)' if m == served else ''} minus {_short(b)}: feed nDCG@10 "
              f"{i.point:+.4f} [{i.low:+.4f}, {i.high:+.4f}] over {i.units} sessions" for (m, b), i in feed_margins.items()],
        ]
        passive_lines = [f"{group} users ({r['users']} users, {r['sessions']} sessions): nDCG@10 {r['ndcg_at_10']:.4f} with "
                         f"the dwell and skip heads, {r['ndcg_at_10_without_dwell_and_skip']:.4f} without "
                         f"({r['ndcg_at_10'] - r['ndcg_at_10_without_dwell_and_skip']:+.4f} "
                         f"[{r['difference_low']:+.4f}, {r['difference_high']:+.4f}]); they change "
                         f"{r['top_3_changed']:.1%} of the top 3" for group, r in passive.items()]
        wins = sum(m.point > 0 and m.significant for m in head_margins.values())
        images = {
            "feed_ndcg_at_10.png": plots.bar_chart({APPROACH_NAMES[n]: f.report["ndcg_at_10"] for n, f in feeds.items()},
                                                   "Feed nDCG@10 on the test days (higher is better)"),
            "pr_auc_by_head.png": plots.bar_chart({f"{h}: {k}": r[f"{h}_pr_auc"] for h in HEADS for k, r in head_rows.items()},
                                                  "PR-AUC per head on the test days"),
            **{f"like_{name}": png for name, png in plots.classifier_curves(
                labels["like"], {k: p["like"] for k, p in heads.items()}).items()},
        }
        with mlflow_tracking.start_run(EXPERIMENT, "evaluation", {"model": "comparison",
                                                                 "registered_version": str(challenger["version"][0])}) as run:
            figures = {**metric_metadata({n: f.report for n, f in feeds.items()}),
                       **metric_metadata({k: {m: v for m, v in r.items() if np.isfinite(v)} for k, r in head_rows.items()})}
            mlflow.log_metrics(figures)
            mlflow.log_metrics({f"multitask_minus_xgboost_{h}_pr_auc_{end}": getattr(m, end)
                                for h, m in head_margins.items() for end in ("point", "low", "high")})
            mlflow.log_metrics({f"{m}_minus_{b}_ndcg_at_10_{end}": getattr(i, end)
                                for (m, b), i in feed_margins.items() for end in ("point", "low", "high")})
            mlflow.log_metrics({f"{group}_{k}": v for group, r in passive.items() for k, v in r.items()})
            mlflow.log_text("\n\n".join([feed_table, head_table, roc_table, *margin_lines, *passive_lines]), "comparison.md")
            log_plots(images)
        context.log.info(f"test days ({test.height} impressions, {feeds[served].report['sessions']} sessions):\n{feed_table}\n"
                         f"{head_table}\n" + "\n".join(margin_lines + passive_lines))
        comparison = pl.DataFrame([
            {"approach": name, **{k: float(v) for k, v in f.report.items()}, **head_rows.get(name, {}),
             "unit_ids": f.sessions, "unit_ndcg_at_10": f.ndcg.tolist()}
            for name, f in feeds.items()
        ])
        baselines = ("chronological", "affinity", other)
        best = max(baselines, key=lambda name: feeds[name].report["ndcg_at_10"])
        return dg.MaterializeResult(
            value=comparison,
            metadata={
                **mlflow_tracking.run_link(run),
                # The main command prints `comparison` and `evaluation_note`.
                "comparison": dg.MetadataValue.md(f"{feed_table}\n\nPR-AUC per head:\n\n{head_table}"),
                "pr_auc_by_head": dg.MetadataValue.md(head_table),
                "roc_auc_by_head": dg.MetadataValue.md(roc_table),
                "margins": dg.MetadataValue.md("\n".join(f"- {line}" for line in margin_lines)),
                "passive_users": dg.MetadataValue.md("\n".join(f"- {line}" for line in passive_lines)),
                "heads_where_multitask_wins_outside_the_interval": wins,
                "weights": ", ".join(f"{h}={w:g}" for h, w in weights.items()),
                "test_impressions": test.height,
                "served_kind": served,
                "registered_version": str(challenger["version"][0]),
                # The front table's figures (README): the book's metric for the best baseline, the model and the oracle.
                "baseline": _short(best),
                "baseline_value": feeds[best].report["ndcg_at_10"],
                "model_value": feeds[served].report["ndcg_at_10"],
                "oracle_value": feeds["oracle"].report["ndcg_at_10"] if "oracle" in feeds else None,
                "evaluation_note": "\n".join([f"sessions judged: {feeds[served].report['sessions']}", *margin_lines, *passive_lines]),
                "oracle": "generator's probabilities of each head" if "oracle" in feeds else "none: user-provided data",
                **plot_links(mlflow_tracking, run, images),
                **figures,
                "plots": images_markdown(images),
            },
        )

    return [xgboost_model, multitask, news_feed_challenger, news_feed_evaluation]
