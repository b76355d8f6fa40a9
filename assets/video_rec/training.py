"""Two-tower retrieval, the item-item model, the ANN index, the ranker's data and model, the registered recommender
and its evaluation."""

import tempfile
import time
from pathlib import Path

import dagster as dg
import polars as pl

from assets.common import (
    frame_markdown,
    frame_metadata,
    images_markdown,
    log_plots,
    metric_metadata,
    metrics_table,
    one_row,
    plot_links,
    suite_check,
)
from assets.release import register_challenger
from assets.resources import MlflowTracking
from assets.video_rec.raw import GROUP
from assets.video_rec.resources import VideoRecSource, VideoRecTimeSplit, VideoRecTraining
from expectations import video_rec as suites
from models.video_rec.features import leakage_audit

EXPERIMENT = GROUP
REGISTERED_MODEL = "video_rec_recommender"
REPORT_COLUMNS = [
    "precision_at_1", "precision_at_5", "precision_at_10", "recall_at_10", "map_at_10", "ndcg_at_10",
    "recall_at_100", "diversity_at_10", "coverage_at_10",
]
APPROACH_NAMES = {
    "popularity": "popularity (baseline)",
    "ease": "item-item EASE (baseline)",
    "mf": "matrix factorization ALS (baseline)",
    "two_tower": "two-tower + ANN only",
    "two_stage": "two-stage + re-ranking",
    "oracle": "oracle (generator's truth)",
}


def load_two_tower(mlflow_tracking: MlflowTracking, run_id: str):
    from models.video_rec import two_tower as tt

    with tempfile.TemporaryDirectory() as tmp, mlflow_tracking.activated() as mlflow:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="two_tower/two_tower.pt", dst_path=tmp)
        model, vocab, _ = tt.load(path)
    return model, vocab


def load_item_item(mlflow_tracking: MlflowTracking, run_id: str):
    from models.video_rec.baselines import Ease

    with tempfile.TemporaryDirectory() as tmp, mlflow_tracking.activated() as mlflow:
        return Ease.load(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="item_item/ease.npz", dst_path=tmp))


def load_recommender(mlflow_tracking: MlflowTracking, version: str):
    return mlflow_tracking.load_pyfunc(f"models:/{REGISTERED_MODEL}/{version}").unwrap_python_model().recommender


def build_training_assets() -> list:
    raw_ins = {
        "users": dg.AssetIn("video_rec_users"),
        "videos": dg.AssetIn("video_rec_videos"),
        "labeled": dg.AssetIn("video_rec_labeled_interactions"),
    }

    @dg.asset(group_name=GROUP, kinds={"pytorch", "mlflow"}, ins=raw_ins)
    def video_rec_two_tower(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        video_rec_time_split: VideoRecTimeSplit,
        video_rec_training: VideoRecTraining,
        users: pl.DataFrame,
        videos: pl.DataFrame,
        labeled: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """Candidate generation's model: user and video towers trained on relevant views before the ranker window,
        early-stopped on recall@100 of that window. Its value references the MLflow run holding the weights."""
        import mlflow

        from models import plots
        from models.video_rec import two_tower as tt
        from models.video_rec.train import fit_retrieval

        cutoffs = video_rec_time_split.cutoffs(labeled)
        config = tt.TwoTowerConfig(epochs=video_rec_training.epochs)
        with mlflow_tracking.start_run(EXPERIMENT, "two-tower", {"model": "two_tower"}) as run:
            model, vocab, report = fit_retrieval(labeled, users, videos, cutoffs, config, progress=context.log.info)
            mlflow.log_params({**vars(config), "users": len(vocab.users), "videos": len(vocab.videos), "tags": len(vocab.tags),
                               "retrieval_end": cutoffs.retrieval_end.isoformat()})
            for epoch, (loss, recall) in enumerate(zip(report.losses, report.validation), 1):
                mlflow.log_metrics({"train_loss": loss, "validation_recall_at_100": recall}, step=epoch)
            mlflow.log_metrics({"best_epoch": report.best_epoch, "best_validation_recall_at_100": max(report.validation),
                                "training_seconds": report.seconds})
            epochs = list(range(1, len(report.losses) + 1))
            images = {
                "loss.png": plots.line_chart(epochs, {"train loss": report.losses}, "Two-tower training loss", "epoch", "sampled softmax loss"),
                "validation_recall.png": plots.line_chart(
                    epochs, {"recall@100": report.validation}, "Two-tower validation (ranker window)", "epoch", "recall@100"
                ),
            }
            log_plots(images)
            with tempfile.TemporaryDirectory() as tmp:
                tt.save(model, vocab, Path(tmp) / "two_tower.pt")
                mlflow.log_artifact(str(Path(tmp) / "two_tower.pt"), "two_tower")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id),
            metadata={
                **mlflow_tracking.run_link(run),
                "best_epoch": report.best_epoch,
                "epochs_run": len(report.losses),
                "validation_recall_at_100": max(report.validation),
                "training_seconds": round(report.seconds, 1),
                "vocabulary_users": len(vocab.users),
                "vocabulary_videos": len(vocab.videos),
                **plot_links(mlflow_tracking, run, images),
                "plots": images_markdown(images),
            },
        )

    @dg.asset(group_name=GROUP, kinds={"numpy", "mlflow"}, ins={"labeled": raw_ins["labeled"]})
    def video_rec_item_item(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        video_rec_time_split: VideoRecTimeSplit,
        labeled: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The second candidate source and the strong simple baseline: EASE, a closed-form item-item ridge regression
        over who found which videos relevant before the ranker window; its l2 is chosen on that window. Each video
        keeps its strongest neighbours, so serving costs a user's history, not the catalogue."""
        import mlflow

        from models.video_rec.baselines import NEIGHBOURS, fit_ease_on_split

        cutoffs = video_rec_time_split.cutoffs(labeled)
        started = time.perf_counter()
        with mlflow_tracking.start_run(EXPERIMENT, "item-item", {"model": "ease"}) as run:
            ease, by_l2 = fit_ease_on_split(labeled, cutoffs.retrieval_end, cutoffs.test_start)
            seconds = time.perf_counter() - started
            mlflow.log_params({"l2": ease.l2, "l2_grid": list(by_l2), "neighbours": NEIGHBOURS, "videos": len(ease.video_ids),
                               "users": len(ease.history), "fit_end": cutoffs.retrieval_end.isoformat()})
            mlflow.log_metrics({f"validation_ndcg_at_10_l2_{l2:g}": v for l2, v in by_l2.items()} | {"fit_seconds": seconds})
            with tempfile.TemporaryDirectory() as tmp:
                ease.save(Path(tmp) / "ease.npz")
                mlflow.log_artifact(str(Path(tmp) / "ease.npz"), "item_item")
        context.log.info(f"EASE over {len(ease.video_ids)} videos and {len(ease.history)} users: l2 {ease.l2:g} "
                         f"(validation nDCG@10 by l2: {', '.join(f'{l2:g}: {v:.4f}' for l2, v in by_l2.items())})")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, l2=ease.l2),
            metadata={
                **mlflow_tracking.run_link(run),
                "l2": ease.l2,
                "validation_ndcg_at_10_by_l2": dg.MetadataValue.json({f"{l2:g}": v for l2, v in by_l2.items()}),
                "videos": len(ease.video_ids),
                "users": len(ease.history),
                "neighbours_per_video": NEIGHBOURS,
                "fit_seconds": round(seconds, 2),
            },
        )

    @dg.asset(group_name=GROUP, kinds={"faiss", "mlflow"}, ins=raw_ins)
    def video_rec_ann_index(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        video_rec_time_split: VideoRecTimeSplit,
        video_rec_two_tower: pl.DataFrame,
        users: pl.DataFrame,
        videos: pl.DataFrame,
        labeled: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The HNSW index over every catalogue video's two-tower embedding, as of the end of the data (what serving
        searches). Logged in the two-tower run it came from, with its recall against exact search."""
        import mlflow

        from models.ann import AnnIndex, recall_at_k
        from models.video_rec import two_tower as tt
        from models.video_rec.features import user_profiles, video_stats
        from models.video_rec.recommender import ChainConfig

        run_id = str(video_rec_two_tower["run_id"][0])
        model, vocab = load_two_tower(mlflow_tracking, run_id)
        as_of = video_rec_time_split.cutoffs(labeled).test_end
        stats = video_stats(labeled, videos, as_of)
        embeddings = tt.embed_videos(model, tt.encode_videos(vocab, stats))
        params = ChainConfig().hnsw
        started = time.perf_counter()
        index = AnnIndex.build(embeddings, stats["video_id"].to_numpy(), params)
        build_seconds = time.perf_counter() - started
        exact = AnnIndex.build(embeddings, stats["video_id"].to_numpy(), None)
        profiles = user_profiles(labeled, users, as_of)
        queries = tt.embed_users(model, tt.encode_users(vocab, profiles.head(2_000), tt.video_tag_lookup(stats)))
        k = min(100, len(index))
        started = time.perf_counter()
        _, approximate = index.search_positions(queries, k)
        ann_qps = len(queries) / (time.perf_counter() - started)
        started = time.perf_counter()
        _, truth = exact.search_positions(queries, k)
        exact_qps = len(queries) / (time.perf_counter() - started)
        recall = recall_at_k(approximate, truth)
        with mlflow_tracking.start_run(EXPERIMENT, "ann-index", {"model": "ann_index", "two_tower_run": run_id}) as run:
            mlflow.log_params({**vars(params), "videos": len(index), "dim": embeddings.shape[1], "two_tower_run": run_id})
            mlflow.log_metrics({f"recall_at_{k}_vs_exact": recall, "build_seconds": build_seconds, "ann_qps": ann_qps, "exact_qps": exact_qps})
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "index.faiss").write_bytes(index.to_bytes())
                mlflow.log_artifact(str(Path(tmp) / "index.faiss"), "ann")
        context.log.info(f"HNSW over {len(index)} videos: recall@{k} {recall:.4f} vs exact, {ann_qps:.0f} vs {exact_qps:.0f} queries/s")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, two_tower_run_id=run_id, as_of=as_of.isoformat(), videos=len(index)),
            metadata={
                **mlflow_tracking.run_link(run),
                "two_tower_run_id": run_id,
                "videos": len(index),
                f"recall_at_{k}_vs_exact": recall,
                "ann_queries_per_second": round(ann_qps),
                "exact_queries_per_second": round(exact_qps),
                "build_seconds": round(build_seconds, 2),
                "library": f"faiss HNSW (M={params.m}, efConstruction={params.ef_construction}, efSearch={params.ef_search})",
            },
        )

    @dg.asset(group_name=GROUP, kinds={"polars", "parquet"}, ins=raw_ins)
    def video_rec_ranker_training_data(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        video_rec_time_split: VideoRecTimeSplit,
        video_rec_two_tower: pl.DataFrame,
        video_rec_item_item: pl.DataFrame,
        users: pl.DataFrame,
        videos: pl.DataFrame,
        labeled: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The ranker's examples: every candidate the sources return as of the ranker window's start, with its
        features, labelled 1 when the user found it relevant within the window."""
        from models.video_rec.recommender import ChainConfig, build_state
        from models.video_rec.train import ranker_examples

        cutoffs = video_rec_time_split.cutoffs(labeled)
        model, vocab = load_two_tower(mlflow_tracking, str(video_rec_two_tower["run_id"][0]))
        ease = load_item_item(mlflow_tracking, str(video_rec_item_item["run_id"][0]))
        config = ChainConfig()
        state = build_state(model, vocab, labeled, users, videos, cutoffs.retrieval_end, config, ease=ease)
        examples = ranker_examples(state, labeled, videos, cutoffs.retrieval_end, cutoffs.test_start, config)
        examples = examples.with_columns(
            features_as_of=pl.lit(cutoffs.retrieval_end), labels_from=pl.lit(cutoffs.retrieval_end),
            labels_until=pl.lit(cutoffs.test_start),
        )
        context.log.info(f"{examples.height} candidate rows for {examples['user_id'].n_unique()} users")
        return dg.MaterializeResult(
            value=examples.drop("tags", "language", "channel_id", "position", "source"),
            metadata={
                **frame_metadata(examples),
                "users": examples["user_id"].n_unique(),
                "positive_rate": float(examples["label"].mean()),
                "candidates_per_user": examples.height / max(examples["user_id"].n_unique(), 1),
                "features_as_of": cutoffs.retrieval_end.isoformat(),
            },
        )

    @dg.asset_check(
        asset=video_rec_ranker_training_data, blocking=True,
        additional_ins={"labeled": dg.AssetIn("video_rec_labeled_interactions")},
        description="No training input reaches into a window it must not see: two-tower views end before the ranker "
        "window, ranker features before their labels, ranker labels before the test window.",
    )
    def video_rec_no_leakage(
        video_rec_time_split: VideoRecTimeSplit, video_rec_ranker_training_data: pl.DataFrame, labeled: pl.DataFrame
    ) -> dg.AssetCheckResult:
        audit = leakage_audit(video_rec_time_split.cutoffs(labeled), labeled, video_rec_ranker_training_data)
        return suite_check(audit, suites.leakage_audit_suite(), audit=dg.MetadataValue.md(frame_markdown(audit)))

    @dg.asset_check(
        asset=video_rec_ranker_training_data, blocking=True,
        description="Labels are 0/1, one row per (user, video), no feature is a proxy of the label.",
    )
    def video_rec_ranker_data_valid(video_rec_ranker_training_data: pl.DataFrame) -> dg.AssetCheckResult:
        return suite_check(suites.ranker_frame_for_suite(video_rec_ranker_training_data), suites.ranker_data_suite())

    @dg.asset(group_name=GROUP, kinds={"xgboost", "mlflow"})
    def video_rec_ranker(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, video_rec_ranker_training_data: pl.DataFrame
    ) -> dg.MaterializeResult:
        """The heavier second stage: LambdaMART (XGBoost rank:ndcg) over the candidates' features, early-stopped on
        nDCG@10 of held-out users."""
        import mlflow

        from models import plots
        from models.video_rec.recommender import RANKER_FEATURES
        from models.video_rec.train import fit_ranker

        with mlflow_tracking.start_run(EXPERIMENT, "ranker", {"model": "xgboost_ranker"}) as run:
            booster, curve = fit_ranker(video_rec_ranker_training_data)
            for step, value in enumerate(curve):
                mlflow.log_metric("validation_ndcg_at_10", value, step=step)
            best = float(curve[booster.best_iteration])
            mlflow.log_params({"objective": "rank:ndcg", "features": len(RANKER_FEATURES), "best_iteration": booster.best_iteration})
            mlflow.log_metric("best_validation_ndcg_at_10", best)
            importance = booster.get_score(importance_type="gain")
            images = {"importance.png": plots.feature_importance(importance)}
            log_plots(images)
            with tempfile.TemporaryDirectory() as tmp:
                booster.save_model(Path(tmp) / "ranker.ubj")
                mlflow.log_artifact(str(Path(tmp) / "ranker.ubj"), "ranker")
        context.log.info(f"ranker: best iteration {booster.best_iteration}, validation nDCG@10 {best:.4f}")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, best_iteration=booster.best_iteration),
            metadata={
                **mlflow_tracking.run_link(run),
                "best_iteration": booster.best_iteration,
                "validation_ndcg_at_10": best,
                **plot_links(mlflow_tracking, run, images),
                "plots": images_markdown(images),
            },
        )

    @dg.asset(group_name=GROUP, kinds={"mlflow"}, ins=raw_ins)
    def video_rec_recommender(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        video_rec_time_split: VideoRecTimeSplit,
        video_rec_two_tower: pl.DataFrame,
        video_rec_ann_index: pl.DataFrame,
        video_rec_item_item: pl.DataFrame,
        video_rec_ranker: pl.DataFrame,
        users: pl.DataFrame,
        videos: pl.DataFrame,
        labeled: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The whole chain as one registered model version (challenger): two-tower, its ANN index, the item-item
        model, the ranker and the serving state as of the end of the data, so the bento and batch recommendations
        answer alike."""
        import mlflow
        import xgboost as xgb

        from models.video_rec.pyfunc import log_recommender
        from models.video_rec.recommender import ChainConfig, Recommender, build_state

        model, vocab = load_two_tower(mlflow_tracking, str(video_rec_two_tower["run_id"][0]))
        ease = load_item_item(mlflow_tracking, str(video_rec_item_item["run_id"][0]))
        config = ChainConfig()
        cutoffs = video_rec_time_split.cutoffs(labeled)
        as_of = cutoffs.test_end
        with tempfile.TemporaryDirectory() as tmp, mlflow_tracking.activated():
            index_path = mlflow.artifacts.download_artifacts(
                run_id=str(video_rec_ann_index["run_id"][0]), artifact_path="ann/index.faiss", dst_path=tmp
            )
            ranker_path = mlflow.artifacts.download_artifacts(
                run_id=str(video_rec_ranker["run_id"][0]), artifact_path="ranker/ranker.ubj", dst_path=tmp
            )
            ranker = xgb.Booster()
            ranker.load_model(ranker_path)
            ranker.best_iteration = int(video_rec_ranker["best_iteration"][0])
            try:
                state = build_state(
                    model, vocab, labeled, users, videos, as_of, config, index_bytes=Path(index_path).read_bytes(), ease=ease
                )
            except ValueError as error:
                raise dg.Failure(f"{error}: rematerialize video_rec_ann_index") from None
            recommender = Recommender(model, vocab, ranker, state, config)
            bundle = Path(tmp) / "bundle"
            recommender.save(bundle)
            tags = {
                "model": "video_recommender",
                "two_tower_run": str(video_rec_two_tower["run_id"][0]),
                "ann_index_run": str(video_rec_ann_index["run_id"][0]),
                "item_item_run": str(video_rec_item_item["run_id"][0]),
                "ranker_run": str(video_rec_ranker["run_id"][0]),
                # Its held-out days: monitoring serves them for its reference and refuses the days before.
                "test_start": cutoffs.test_start.isoformat(),
                "test_end": cutoffs.test_end.isoformat(),
            }
            with mlflow_tracking.start_run(EXPERIMENT, "recommender", tags) as run:
                mlflow.log_params({"as_of": as_of.isoformat(), "videos": state.videos.height, "users": state.profiles.height,
                                   "ann_candidates": config.ann_candidates, "popular_candidates": config.popular_candidates,
                                   "trending_candidates": config.trending_candidates, "ease_candidates": config.ease_candidates,
                                   **vars(config.rules)})
                info = log_recommender(recommender, bundle, state.profiles["user_id"].head(3).to_list())
                version = register_challenger(context, GROUP, mlflow_tracking, info.model_uri, REGISTERED_MODEL, tags)
        context.log.info(f"registered {REGISTERED_MODEL} v{version} as challenger")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, model_uri=info.model_uri, version=version),
            metadata={
                **mlflow_tracking.run_link(run),
                "registered_version": version,
                "mlflow_model": dg.MetadataValue.url(mlflow_tracking.model_url(REGISTERED_MODEL, version)),
                "serving_state_as_of": as_of.isoformat(),
                "catalogue_videos": state.videos.height,
                "users": state.profiles.height,
            },
        )

    @dg.asset(group_name=GROUP, kinds={"mlflow", "polars"}, ins=raw_ins)
    def video_rec_evaluation(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        video_rec_time_split: VideoRecTimeSplit,
        video_rec_training: VideoRecTraining,
        video_rec_source: VideoRecSource,
        video_rec_recommender: pl.DataFrame,
        users: pl.DataFrame,
        videos: pl.DataFrame,
        labeled: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The book's offline metrics on the test window for the popularity, item-item (EASE) and matrix factorization
        (ALS) baselines, two-tower retrieval alone, the full two-stage chain with re-ranking, and (simulated data) the
        generator's truth as the ceiling."""
        import mlflow

        from models import plots
        from models.video_rec.train import BASELINES, CURVE_KS, evaluate, state_at

        cutoffs = video_rec_time_split.cutoffs(labeled)
        recommender = load_recommender(mlflow_tracking, str(video_rec_recommender["version"][0]))
        at_test = state_at(recommender, labeled, users, videos, cutoffs.test_start)
        started = time.perf_counter()
        result = evaluate(at_test, labeled, users, videos, cutoffs, video_rec_source.oracle(), max_users=video_rec_training.evaluation_users)
        rows = {APPROACH_NAMES[name]: report for name, report in result.reports.items()}
        table = metrics_table(rows, REPORT_COLUMNS)
        images = {
            "recall_at_k.png": plots.line_chart(list(CURVE_KS), {APPROACH_NAMES[n]: c for n, c in result.curves.items()},
                                                "Recall@k, test window", "k", "recall@k", log_x=True),
            "ndcg_at_k.png": plots.line_chart(list(CURVE_KS), {APPROACH_NAMES[n]: c for n, c in result.ndcg_curves.items()},
                                              "nDCG@k, test window", "k", "nDCG@k", log_x=True),
        }
        with mlflow_tracking.start_run(EXPERIMENT, "evaluation", {"model": "comparison",
                                                                   "registered_version": str(video_rec_recommender["version"][0])}) as run:
            figures = metric_metadata(result.reports)
            mlflow.log_metrics(figures)
            mlflow.log_params({"ease_l2": result.ease_l2, "mf_iterations": result.mf_iterations, "mf_factors": result.mf_factors})
            mlflow.log_metrics({f"two_stage_minus_{b}_{m}_{end}": getattr(i, end) for (b, m), i in result.margins.items()
                                for end in ("point", "low", "high")})
            mlflow.log_text(table, "comparison.md")
            log_plots(images)
        margins = result.margin_lines()
        context.log.info(f"test window ({result.users} users, {time.perf_counter() - started:.0f}s):\n{table}\n" + "\n".join(margins))
        comparison = pl.DataFrame([
            {"approach": name, **report, "unit_ids": list(result.per_user_ndcg[name]),
             "unit_ndcg_at_10": list(result.per_user_ndcg[name].values())}
            for name, report in result.reports.items()
        ])
        chain, popularity = result.reports["two_stage"], result.reports["popularity"]
        best = max(BASELINES, key=lambda name: result.reports[name]["ndcg_at_10"])
        return dg.MaterializeResult(
            value=comparison,
            metadata={
                **mlflow_tracking.run_link(run),
                "comparison": dg.MetadataValue.md(table),
                # The chain's lead over each baseline on the same test users, with its paired bootstrap 95% interval.
                "margins": dg.MetadataValue.md("\n".join(f"- {line}" for line in margins) or "- too few test users"),
                "test_users": result.users,
                "catalogue_videos": result.catalogue,
                "ndcg_at_10": chain["ndcg_at_10"],
                "ndcg_at_10_popularity": popularity["ndcg_at_10"],
                # The front table's figures (README): the book's metric for baseline, champion candidate and oracle.
                "baseline": {"popularity": "popularity", "ease": "item-item EASE", "mf": "matrix factorization"}[best],
                "baseline_value": result.reports[best]["ndcg_at_10"],
                "ndcg_at_10_ease": result.reports["ease"]["ndcg_at_10"],
                "ease_l2": result.ease_l2,
                "ndcg_at_10_mf": result.reports["mf"]["ndcg_at_10"],
                "mf_iterations": result.mf_iterations,
                "mf_factors": result.mf_factors,
                "model_value": chain["ndcg_at_10"],
                "oracle_value": result.reports["oracle"]["ndcg_at_10"] if "oracle" in result.reports else None,
                "evaluation_note": "\n".join([f"test users: {result.users}; catalogue videos: {result.catalogue}", *margins]),
                "oracle": "generator's P(next view is relevant)" if video_rec_source.has_oracle else "none: user-provided data",
                "registered_version": str(video_rec_recommender["version"][0]),
                **plot_links(mlflow_tracking, run, images),
                **figures,
                "plots": images_markdown(images),
            },
        )

    return [
        video_rec_two_tower, video_rec_item_item, video_rec_ann_index, video_rec_ranker_training_data, video_rec_no_leakage,
        video_rec_ranker_data_valid, video_rec_ranker, video_rec_recommender, video_rec_evaluation,
    ]
