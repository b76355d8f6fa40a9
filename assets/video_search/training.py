"""The learned parts of search (the auto-tagger, the dual encoder), the index they make with BM25 and the fusion
weights, the registered model and the evaluation against BM25, frozen MiniLM, their tuned hybrid and the oracle."""

import tempfile
import time
from pathlib import Path

import dagster as dg
import numpy as np
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
from assets.release import register_challenger
from assets.resources import MlflowTracking, TextEmbeddings
from assets.video_search.raw import GROUP
from assets.video_search.resources import VideoSearchSource, VideoSearchTimeSplit, VideoSearchTraining
from expectations import video_search as suites

EXPERIMENT = GROUP
REGISTERED_MODEL = "video_search_fusion"
REPORT_COLUMNS = ["mrr_at_10", "recall_at_10", "ndcg_at_10", "median_rank", "mrr_at_10_poor_metadata",
                  "recall_at_10_poor_metadata"]
raw_ins = {
    "videos": dg.AssetIn("video_search_videos"),
    "frames": dg.AssetIn("video_search_frames"),
    "queries": dg.AssetIn("video_search_queries"),
    "clicks": dg.AssetIn("video_search_clicks"),
}


def search_data(context, text_embeddings: TextEmbeddings, time_split: VideoSearchTimeSplit, videos: pl.DataFrame,
                frames: pl.DataFrame, queries: pl.DataFrame, clicks: pl.DataFrame):
    """The catalogue, the split and the query vectors (texts are encoded once; later assets read the cache)."""
    from models.video_search.training import SearchData

    try:
        cutoffs = time_split.cutoffs(queries, clicks)
    except ValueError as error:
        raise dg.Failure(str(error)) from None
    return SearchData.prepare(videos, frames, queries, clicks, cutoffs,
                              lambda texts: text_embeddings.embed(texts, progress=context.log.info))


def load_tagger(mlflow_tracking: MlflowTracking, run_id: str):
    from models.video_search.encoders import AutoTagger

    with tempfile.TemporaryDirectory() as tmp:
        return AutoTagger.from_bytes(mlflow_tracking.download(run_id, "tagger/tagger.npz", tmp).read_bytes())


def load_encoder(mlflow_tracking: MlflowTracking, run_id: str):
    from models.video_search.encoders import DualEncoder

    with tempfile.TemporaryDirectory() as tmp:
        return DualEncoder.from_bytes(mlflow_tracking.download(run_id, "encoder/encoder.npz", tmp).read_bytes())


def load_search(mlflow_tracking: MlflowTracking, version: str):
    """The registered version's VideoSearch."""
    return mlflow_tracking.load_pyfunc(f"models:/{REGISTERED_MODEL}/{version}").unwrap_python_model().search


def build_training_assets() -> list:
    @dg.asset(group_name=GROUP, kinds={"pytorch", "mlflow"}, ins={**raw_ins, "windows": dg.AssetIn("video_search_windows")})
    def video_search_auto_tagger(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, text_embeddings: TextEmbeddings,
        video_search_time_split: VideoSearchTimeSplit, videos: pl.DataFrame, frames: pl.DataFrame,
        queries: pl.DataFrame, clicks: pl.DataFrame, windows: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The book's auto-tagger: tags predicted from a video's frames, learned from the tags videos were uploaded
        with before the validation window and judged on those uploaded since; its tags fill in for videos uploaded
        without any, so text search can find them."""
        import mlflow

        from models.video_search.training import fit_tagger

        data = search_data(context, text_embeddings, video_search_time_split, videos, frames, queries, clicks)
        with mlflow_tracking.start_run(EXPERIMENT, "auto-tagger", {"model": "auto_tagger"}) as run:
            tagger, figures, last_upload = fit_tagger(data)
            mlflow.log_params({"threshold": tagger.threshold, "max_tags": tagger.max_tags,
                               "validation_start": data.cutoffs.validation_start.isoformat()})
            mlflow.log_metrics(figures)
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "tagger.npz").write_bytes(tagger.to_bytes())
                mlflow.log_artifact(str(Path(tmp) / "tagger.npz"), "tagger")
        context.log.info(f"auto-tagger: precision {figures['tagger_precision']:.3f}, recall {figures['tagger_recall']:.3f} "
                         f"on {int(figures['tagger_videos'])} later tagged videos")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, last_upload=last_upload),
            metadata={**mlflow_tracking.run_link(run), **{k: float(v) for k, v in figures.items()},
                      "untagged_videos": int((~data.catalogue.tagged).sum())},
        )

    @dg.asset(group_name=GROUP, kinds={"pytorch", "mlflow"}, ins={**raw_ins, "windows": dg.AssetIn("video_search_windows")})
    def video_search_dual_encoder(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, text_embeddings: TextEmbeddings,
        video_search_time_split: VideoSearchTimeSplit, video_search_training: VideoSearchTraining,
        videos: pl.DataFrame, frames: pl.DataFrame, queries: pl.DataFrame, clicks: pl.DataFrame, windows: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The book's visual search: a query tower (a trained projection of the frozen MiniLM query embedding) and a
        video tower (over averaged frames and the metadata's embedding) in one space, trained contrastively on the
        clicked queries before the validation window; its epoch is chosen by the validation window's MRR@10."""
        import mlflow

        from models import plots
        from models.video_search.encoders import EncoderConfig
        from models.video_search.training import fit_encoder

        data = search_data(context, text_embeddings, video_search_time_split, videos, frames, queries, clicks)
        config = EncoderConfig(dim=video_search_training.dim, epochs=video_search_training.epochs)
        with mlflow_tracking.start_run(EXPERIMENT, "dual-encoder", {"model": "dual_encoder"}) as run:
            try:
                encoder, history, last_query = fit_encoder(data, config, progress=context.log.info)
            except ValueError as error:
                raise dg.Failure(str(error)) from None
            mlflow.log_params({**vars(config), "validation_start": data.cutoffs.validation_start.isoformat(),
                               "test_start": data.cutoffs.test_start.isoformat(), "pairs": history.pairs})
            for epoch, (loss, score) in enumerate(zip(history.losses, history.validation), 1):
                mlflow.log_metrics({"train_loss": loss, "validation_mrr_at_10": score}, step=epoch)
            mlflow.log_metrics({"best_epoch": history.best_epoch, "best_validation_mrr_at_10": max(history.validation),
                                "training_seconds": history.seconds})
            epochs = list(range(1, len(history.losses) + 1))
            images = {
                "loss.png": plots.line_chart(epochs, {"in-batch softmax loss": history.losses}, "Dual encoder training loss",
                                             "epoch", "cross-entropy"),
                "validation.png": plots.line_chart(epochs, {"MRR@10": history.validation},
                                                   "Validation: MRR@10 of the vector path", "epoch", "MRR@10"),
            }
            log_plots(images)
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "encoder.npz").write_bytes(encoder.to_bytes())
                mlflow.log_artifact(str(Path(tmp) / "encoder.npz"), "encoder")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, best_epoch=history.best_epoch, last_query=last_query),
            metadata={**mlflow_tracking.run_link(run), "best_epoch": history.best_epoch, "epochs_run": len(history.losses),
                      "validation_mrr_at_10": max(history.validation), "training_pairs": history.pairs,
                      "training_seconds": round(history.seconds, 1), **plot_links(mlflow_tracking, run, images),
                      "plots": images_markdown(images)},
        )

    @dg.asset(group_name=GROUP, kinds={"bm25s", "faiss", "mlflow"},
              ins={**raw_ins, "tagger": dg.AssetIn("video_search_auto_tagger"),
                   "encoder": dg.AssetIn("video_search_dual_encoder")})
    def video_search_index(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, text_embeddings: TextEmbeddings,
        video_search_time_split: VideoSearchTimeSplit, videos: pl.DataFrame, frames: pl.DataFrame,
        queries: pl.DataFrame, clicks: pl.DataFrame, tagger: pl.DataFrame, encoder: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """What answers a search, versioned with the encoders that made it: the BM25 index over titles,
        descriptions, tags and auto-tags, every video's vector from the video tower, popularity from clicks before
        the test window, and the fusion weights chosen on the validation window's queries."""
        import mlflow

        from models.video_search.training import build_search

        data = search_data(context, text_embeddings, video_search_time_split, videos, frames, queries, clicks)
        tagger_run, encoder_run = str(tagger["run_id"][0]), str(encoder["run_id"][0])
        built = build_search(data, load_tagger(mlflow_tracking, tagger_run), load_encoder(mlflow_tracking, encoder_run))
        search = built.search
        weights = vars(search.weights)
        with mlflow_tracking.start_run(EXPERIMENT, "index", {"model": "index", "tagger_run": tagger_run,
                                                             "encoder_run": encoder_run}) as run:
            mlflow.log_params({**{f"weight_{k}": v for k, v in weights.items()}, "videos": len(search),
                               "as_of": search.as_of.isoformat()})
            mlflow.log_metrics({"validation_mrr_at_10": built.validation_mrr, "build_seconds": built.build_seconds,
                                "auto_tagged_videos": search.auto_tagged,
                                "vocabulary": len(search.text_index.retriever.vocab_dict)})
            with tempfile.TemporaryDirectory() as tmp:
                search.save(Path(tmp) / "bundle")
                mlflow.log_artifacts(str(Path(tmp) / "bundle"), "bundle")
        context.log.info(f"index over {len(search)} videos ({search.auto_tagged} auto-tagged); fusion weights {weights}, "
                         f"validation MRR@10 {built.validation_mrr:.4f}")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, tagger_run=tagger_run, encoder_run=encoder_run,
                          last_counted_click=built.last_counted_click, as_of=search.as_of.isoformat()),
            metadata={**mlflow_tracking.run_link(run), "videos": len(search), "auto_tagged_videos": search.auto_tagged,
                      "text_vocabulary": len(search.text_index.retriever.vocab_dict),
                      "fusion_weights": dg.MetadataValue.json(weights),
                      "validation_mrr_at_10": built.validation_mrr, "build_seconds": round(built.build_seconds, 2)},
        )

    @dg.asset_check(asset=video_search_index, blocking=True,
                    additional_ins={"tagger": dg.AssetIn("video_search_auto_tagger"),
                                    "encoder": dg.AssetIn("video_search_dual_encoder"),
                                    "windows": dg.AssetIn("video_search_windows")},
                    description="Nothing learned from what it is judged on: the encoder's queries and the tagger's "
                    "videos end before the validation window (which chooses epochs and weights), the clicks counted "
                    "as popularity before the test window.")
    def video_search_no_leakage(video_search_index: pl.DataFrame, tagger: pl.DataFrame, encoder: pl.DataFrame,
                                windows: pl.DataFrame) -> dg.AssetCheckResult:
        from models.video_search.data import leakage_audit

        starts = {row["window"]: row["start"] for row in windows.iter_rows(named=True)}
        audit = leakage_audit(encoder["last_query"][0], tagger["last_upload"][0],
                              video_search_index["last_counted_click"][0], starts["validation"], starts["test"])
        return suite_check(audit, suites.leakage_suite(), audit=dg.MetadataValue.md(frame_markdown(audit)))

    @dg.asset(group_name=GROUP, kinds={"mlflow"}, ins={"queries": raw_ins["queries"], "clicks": raw_ins["clicks"]})
    def video_search_model(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, video_search_time_split: VideoSearchTimeSplit,
        video_search_index: pl.DataFrame, queries: pl.DataFrame, clicks: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The index, the query tower and the fusion weights as one registered model version (challenger): what the
        service answers from."""
        import mlflow
        from datetime import timedelta

        from models.video_search.pyfunc import log_video_search
        from models.video_search.search import VideoSearch

        cutoffs = video_search_time_split.cutoffs(queries, clicks)
        index_run = str(video_search_index["run_id"][0])
        with tempfile.TemporaryDirectory() as tmp:
            search = VideoSearch.load(mlflow_tracking.download(index_run, "bundle", tmp))
            tags = {"model": "video_search", "model_kind": "fusion", "index_run": index_run,
                    "tagger_run": str(video_search_index["tagger_run"][0]),
                    "encoder_run": str(video_search_index["encoder_run"][0]),
                    "test_start": cutoffs.test_start.isoformat(), "test_end": cutoffs.end.isoformat(),
                    TRAINED_THROUGH_TAG: (cutoffs.test_start - timedelta(days=1)).date().isoformat()}
            with mlflow_tracking.start_run(EXPERIMENT, "video-search", tags) as run:
                mlflow.log_params({"videos": len(search), "as_of": search.as_of.isoformat(),
                                   **{f"weight_{k}": v for k, v in vars(search.weights).items()}})
                info = log_video_search(search, Path(tmp) / "model_bundle", queries["text"].head(3).to_list())
                version = register_challenger(context, GROUP, mlflow_tracking, info.model_uri, REGISTERED_MODEL, tags)
        context.log.info(f"registered {REGISTERED_MODEL} v{version} as challenger")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, model_uri=info.model_uri, version=version),
            metadata={**mlflow_tracking.run_link(run), "registered_version": version,
                      "mlflow_model": dg.MetadataValue.url(mlflow_tracking.model_url(REGISTERED_MODEL, version)),
                      "videos": len(search), "catalogue_as_of": search.as_of.isoformat()},
        )

    @dg.asset(group_name=GROUP, kinds={"mlflow", "polars"}, ins=raw_ins)
    def video_search_evaluation(
        context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, text_embeddings: TextEmbeddings,
        video_search_time_split: VideoSearchTimeSplit, video_search_source: VideoSearchSource,
        video_search_model: pl.DataFrame, videos: pl.DataFrame, frames: pl.DataFrame, queries: pl.DataFrame,
        clicks: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The book's metric, MRR@10 of the clicked video among every video uploaded before the query, with recall@10
        and nDCG@10, on the test window, for BM25, frozen MiniLM, their tuned hybrid with popularity, the dual encoder
        alone, text search with auto-tags, the served fusion and, on simulated data, the generator's relevance; and
        the same on queries whose clicked video has poor metadata (no tags)."""
        import mlflow

        from models import plots
        from models.video_search.training import APPROACHES, BASELINES, MODEL, compare

        version = str(video_search_model["version"][0])
        data = search_data(context, text_embeddings, video_search_time_split, videos, frames, queries, clicks)
        started = time.perf_counter()
        result = compare(data, load_search(mlflow_tracking, version), video_search_source.truth())
        table = metrics_table({APPROACHES[n]: r for n, r in result.reports.items()}, REPORT_COLUMNS)
        ranks = list(range(1, 21))
        images = {
            "rank_curve.png": plots.line_chart(
                ranks, {APPROACHES[n]: [float((r <= x).mean()) for x in ranks] for n, r in result.ranks.items()},
                "Queries whose clicked video ranks within the first r", "r", "share of clicked queries"),
            "mrr_at_10.png": plots.bar_chart({APPROACHES[n]: r["mrr_at_10"] for n, r in result.reports.items()},
                                             "MRR@10 on the test window (higher is better)"),
            "mrr_at_10_poor_metadata.png": plots.bar_chart(
                {APPROACHES[n]: r["mrr_at_10_poor_metadata"] or 0.0 for n, r in result.reports.items()},
                "MRR@10 on queries for videos without tags"),
        }
        figures = metric_metadata(result.reports)
        with mlflow_tracking.start_run(EXPERIMENT, "evaluation", {"model": "comparison", "registered_version": version}) as run:
            mlflow.log_metrics(figures)
            mlflow.log_metrics({f"margin_{n.replace(' ', '_').replace('(', '').replace(')', '').replace('-', 'minus')}_{end}":
                                getattr(i, end) for n, i in result.margins.items() if i is not None
                                for end in ("point", "low", "high")})
            mlflow.log_text(table, "comparison.md")
            log_plots(images)
        margins = result.margin_lines()
        context.log.info(f"test window ({len(result.judged)} clicked queries, {int(result.poor.sum())} for videos "
                         f"without tags; {time.perf_counter() - started:.0f}s):\n{table}\n" + "\n".join(margins))
        comparison = pl.DataFrame([{"approach": name, **report, "unit_ids": result.judged.ids,
                                    "unit_reciprocal_rank": np.where(result.ranks[name] <= 10, 1 / result.ranks[name], 0.0).tolist()}
                                   for name, report in result.reports.items()])
        model = result.reports[MODEL]
        best = max(BASELINES, key=lambda n: result.reports[n]["mrr_at_10"])
        oracle = result.reports.get("oracle")
        return dg.MaterializeResult(
            value=comparison,
            metadata={
                **mlflow_tracking.run_link(run),
                "comparison": dg.MetadataValue.md(table),
                "margins": dg.MetadataValue.md("\n".join(f"- {line}" for line in margins) or "- too few queries"),
                "clicked_queries": len(result.judged),
                "queries_poor_metadata": int(result.poor.sum()),
                "fusion_weights": dg.MetadataValue.json({n: vars(w) for n, w in result.weights.items()}),
                "mrr_at_10": model["mrr_at_10"],
                # The front table's figures (README): the book's metric for the best baseline, the model, the oracle.
                "baseline": APPROACHES[best].removesuffix(" (baseline)"),
                "baseline_value": result.reports[best]["mrr_at_10"],
                "model_value": model["mrr_at_10"],
                "oracle_value": oracle["mrr_at_10"] if oracle else None,
                "evaluation_note": "\n".join([f"clicked test queries: {len(result.judged)}", *margins]),
                "oracle": "generator's relevance" if oracle else "none: user-provided data",
                "registered_version": version,
                **plot_links(mlflow_tracking, run, images),
                **figures,
                "plots": images_markdown(images),
            },
        )

    return [video_search_auto_tagger, video_search_dual_encoder, video_search_index, video_search_no_leakage,
            video_search_model, video_search_evaluation]
