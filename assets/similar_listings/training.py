"""Listing embeddings (the book's skip-gram and gensim's plain one), the ANN index, the registered model and the
evaluation against popularity, co-occurrence and the generator's truth."""

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
from assets.resources import MlflowTracking
from assets.similar_listings.raw import GROUP
from assets.similar_listings.resources import SimilarListingsSource, SimilarListingsTimeSplit, SimilarListingsTraining
from expectations import similar_listings as suites

EXPERIMENT = GROUP
REGISTERED_MODEL = "similar_listings_embeddings"
REPORT_COLUMNS = ["mean_booked_rank", "median_booked_rank", "booked_rank_share", "mean_booked_rank_new_listings",
                  "hit_rate_at_10", "hit_rate_at_50"]
APPROACH_NAMES = {
    "random": "random order",
    "popularity": "popularity in the price band (baseline)",
    "cooccurrence": "co-occurrence counts (baseline)",
    "plain_cosine": "plain skip-gram, gensim, cosine",
    "plain_likelihood": "plain skip-gram, gensim, likelihood",
    "booked_cosine": "booked context + hard negatives, cosine",
    "booked_likelihood": "booked context + hard negatives, likelihood (served)",
    "oracle_similarity": "oracle: generator's listing similarity",
    "ceiling": "ceiling: generator's utility for the guest",
}
BASELINES = ("popularity", "cooccurrence")
MODEL = "booked_likelihood"
raw_ins = {
    "listings": dg.AssetIn("similar_listings_listings"),
    "sessions": dg.AssetIn("similar_listings_sessions"),
}


def load_trained(mlflow_tracking: MlflowTracking, run_id: str, name: str = "skipgram"):
    from models.similar_listings.skipgram import Trained

    with tempfile.TemporaryDirectory() as tmp, mlflow_tracking.activated() as mlflow:
        return Trained.load(Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=f"{name}/{name}.pt", dst_path=tmp)))


def load_model(mlflow_tracking: MlflowTracking, version: str):
    """The registered version's SimilarListings."""
    return mlflow_tracking.load_pyfunc(f"models:/{REGISTERED_MODEL}/{version}").unwrap_python_model().model


def config_of(training: SimilarListingsTraining):
    from models.similar_listings.skipgram import SkipGramConfig

    return SkipGramConfig(dim=training.dim, epochs=training.epochs, min_clicks=training.min_clicks)


def build_training_assets() -> list:
    @dg.asset(group_name=GROUP, kinds={"pytorch", "mlflow"},
              ins={**raw_ins, "windows": dg.AssetIn("similar_listings_windows")})
    def similar_listings_skipgram(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        similar_listings_time_split: SimilarListingsTimeSplit,
        similar_listings_training: SimilarListingsTraining,
        listings: pl.DataFrame,
        sessions: pl.DataFrame,
        windows: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The book's listing embeddings: skip-gram over click sessions with the booked listing as a global context
        and hard negatives from the same city. Epochs are chosen on the validation window's bookings, then the model
        is refitted on every session before the test window."""
        import mlflow

        from models import plots
        from models.similar_listings.data import Catalogue, evaluation_cases, sentences, sessions_between
        from models.similar_listings.evaluation import booked_ranks
        from models.similar_listings.similarity import Embeddings
        from models.similar_listings.skipgram import train

        cutoffs = similar_listings_time_split.cutoffs(sessions)
        config = config_of(similar_listings_training)
        fit_sessions = sessions_between(sessions, None, cutoffs.validation_start)
        validation_catalogue = Catalogue.from_listings(listings, cutoffs.test_start)
        validation_cases = evaluation_cases(sessions_between(sessions, cutoffs.validation_start, cutoffs.test_start),
                                            validation_catalogue, max_next_clicks=0)

        def validate(ids, centre, context_vectors) -> float:
            embeddings = Embeddings.likelihood(validation_catalogue, ids, centre, context_vectors)
            return float(booked_ranks(embeddings, validation_cases).mean())

        with mlflow_tracking.start_run(EXPERIMENT, "skipgram", {"model": "skipgram", "model_kind": "skipgram"}) as run:
            chosen = train(sentences(fit_sessions), listings, config, validate, progress=context.log.info)
            refit_sessions = sessions_between(sessions, None, cutoffs.test_start)
            context.log.info(f"refitting {chosen.best_epoch} epochs on every session before {cutoffs.test_start:%Y-%m-%d}")
            trained = train(sentences(refit_sessions), listings, config, epochs=chosen.best_epoch)
            mlflow.log_params({**vars(config), "validation_start": cutoffs.validation_start.isoformat(),
                               "test_start": cutoffs.test_start.isoformat(), "listings_learned": len(trained.ids)})
            for epoch, (loss, rank) in enumerate(zip(chosen.losses, chosen.validation), 1):
                mlflow.log_metrics({"train_loss": loss, "validation_mean_booked_rank": rank}, step=epoch)
            mlflow.log_metrics({"best_epoch": chosen.best_epoch, "best_validation_mean_booked_rank": min(chosen.validation),
                                "training_seconds": chosen.seconds + trained.seconds, "pairs": trained.pairs})
            epochs = list(range(1, len(chosen.losses) + 1))
            images = {
                "loss.png": plots.line_chart(epochs, {"train loss": chosen.losses}, "Skip-gram training loss", "epoch",
                                             "negative-sampling loss"),
                "validation.png": plots.line_chart(epochs, {"mean booked rank": chosen.validation},
                                                   "Validation: mean rank of the booked listing", "epoch", "rank (lower is better)"),
            }
            log_plots(images)
            with tempfile.TemporaryDirectory() as tmp:
                trained.save(Path(tmp) / "skipgram.pt")
                mlflow.log_artifact(str(Path(tmp) / "skipgram.pt"), "skipgram")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, best_epoch=chosen.best_epoch,
                             fit_last_ts=fit_sessions["ts"].max(), refit_last_ts=refit_sessions["ts"].max(),
                             validation_start=cutoffs.validation_start, test_start=cutoffs.test_start),
            metadata={
                **mlflow_tracking.run_link(run),
                "best_epoch": chosen.best_epoch,
                "epochs_run": len(chosen.losses),
                "validation_mean_booked_rank": min(chosen.validation),
                "listings_learned": len(trained.ids),
                "training_pairs": trained.pairs,
                "training_seconds": round(chosen.seconds + trained.seconds, 1),
                **plot_links(mlflow_tracking, run, images),
                "plots": images_markdown(images),
            },
        )

    @dg.asset_check(asset=similar_listings_skipgram, blocking=True,
                    description="The embeddings never saw the sessions they are judged on: epochs were chosen on "
                    "sessions before the test window, learned from sessions before the validation window, and the "
                    "refit ends before the test window.")
    def similar_listings_no_leakage(similar_listings_skipgram: pl.DataFrame) -> dg.AssetCheckResult:
        from models.similar_listings.data import leakage_audit

        row = similar_listings_skipgram.row(0, named=True)
        audit = leakage_audit(row["fit_last_ts"], row["refit_last_ts"], row["validation_start"], row["test_start"])
        return suite_check(audit, suites.leakage_suite(), audit=dg.MetadataValue.md(frame_markdown(audit)))

    @dg.asset(group_name=GROUP, kinds={"gensim", "mlflow"},
              ins={"sessions": raw_ins["sessions"], "windows": dg.AssetIn("similar_listings_windows")})
    def similar_listings_plain_skipgram(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        similar_listings_time_split: SimilarListingsTimeSplit,
        similar_listings_training: SimilarListingsTraining,
        sessions: pl.DataFrame,
        windows: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The reference the book's changes are measured against: gensim's Word2Vec skip-gram (window contexts,
        unigram negatives, 5 epochs as gensim defaults) on the same sessions before the test window."""
        import mlflow

        from models.similar_listings.data import sentences, sessions_between
        from models.similar_listings.skipgram import train_gensim

        cutoffs = similar_listings_time_split.cutoffs(sessions)
        config = config_of(similar_listings_training)
        with mlflow_tracking.start_run(EXPERIMENT, "plain-skipgram", {"model": "gensim_word2vec"}) as run:
            trained = train_gensim(sentences(sessions_between(sessions, None, cutoffs.test_start)), config, epochs=5)
            mlflow.log_params({"dim": config.dim, "window": config.window, "negative": config.negatives,
                               "min_count": config.min_clicks, "epochs": 5, "test_start": cutoffs.test_start.isoformat()})
            mlflow.log_metrics({"training_seconds": trained.seconds, "listings_learned": len(trained.ids)})
            with tempfile.TemporaryDirectory() as tmp:
                trained.save(Path(tmp) / "plain.pt")
                mlflow.log_artifact(str(Path(tmp) / "plain.pt"), "plain")
        context.log.info(f"gensim skip-gram: {len(trained.ids)} listings in {trained.seconds:.1f}s")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id),
            metadata={**mlflow_tracking.run_link(run), "listings_learned": len(trained.ids),
                      "training_seconds": round(trained.seconds, 1)},
        )

    @dg.asset(group_name=GROUP, kinds={"faiss", "mlflow"}, ins={"listings": raw_ins["listings"], "sessions": raw_ins["sessions"]})
    def similar_listings_ann_index(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        similar_listings_time_split: SimilarListingsTimeSplit,
        similar_listings_skipgram: pl.DataFrame,
        listings: pl.DataFrame,
        sessions: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The HNSW index serving searches: every listing on the market at the end of the data, by its learned
        embedding or, for a listing no session taught (a new one), the cold-start embedding of its nearest listings
        of the same type and price band. Logged with its recall against exact search."""
        import mlflow

        from models.ann import AnnIndex, recall_at_k
        from models.similar_listings.service_model import SimilarListings, index_params, indexed_items, indexed_queries

        run_id = str(similar_listings_skipgram["run_id"][0])
        trained = load_trained(mlflow_tracking, run_id)
        as_of = similar_listings_time_split.cutoffs(sessions).end
        started = time.perf_counter()
        model = SimilarListings.build(listings, trained, as_of)
        build_seconds = time.perf_counter() - started
        embeddings = model.embeddings
        exact = AnnIndex.build(indexed_items(embeddings.items), np.arange(len(model.catalogue)), None)
        rng = np.random.default_rng(0)
        probe = rng.choice(len(model.catalogue), min(2_000, len(model.catalogue)), replace=False)
        k = min(20, len(model.catalogue))
        started = time.perf_counter()
        _, approximate = model.index.search_positions(indexed_queries(embeddings.queries[probe]), k)
        ann_qps = len(probe) / (time.perf_counter() - started)
        started = time.perf_counter()
        _, truth = exact.search_positions(indexed_queries(embeddings.queries[probe]), k)
        exact_qps = len(probe) / (time.perf_counter() - started)
        recall = recall_at_k(approximate, truth)
        cold = int((~embeddings.learned).sum())
        with mlflow_tracking.start_run(EXPERIMENT, "ann-index", {"model": "ann_index", "skipgram_run": run_id}) as run:
            params = index_params(len(model.catalogue))
            mlflow.log_params({**vars(params), "listings": len(model.catalogue), "dim": embeddings.items.shape[1],
                               "skipgram_run": run_id, "as_of": as_of.isoformat()})
            mlflow.log_metrics({f"recall_at_{k}_vs_exact": recall, "build_seconds": build_seconds, "ann_qps": ann_qps,
                                "exact_qps": exact_qps, "cold_start_listings": cold})
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "index.faiss").write_bytes(model.index.to_bytes())
                mlflow.log_artifact(str(Path(tmp) / "index.faiss"), "ann")
        context.log.info(f"HNSW over {len(model.catalogue)} listings ({cold} cold-start): recall@{k} {recall:.4f} vs "
                         f"exact, {ann_qps:.0f} vs {exact_qps:.0f} queries/s")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, skipgram_run_id=run_id, as_of=as_of.isoformat(), listings=len(model.catalogue)),
            metadata={
                **mlflow_tracking.run_link(run),
                "listings": len(model.catalogue),
                "cold_start_listings": cold,
                f"recall_at_{k}_vs_exact": recall,
                "ann_queries_per_second": round(ann_qps),
                "exact_queries_per_second": round(exact_qps),
                "build_seconds": round(build_seconds, 2),
                "library": f"faiss, inner product: {type(params).__name__} {vars(params)}",
            },
        )

    @dg.asset(group_name=GROUP, kinds={"mlflow"}, ins={"listings": raw_ins["listings"], "sessions": raw_ins["sessions"]})
    def similar_listings_model(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        similar_listings_time_split: SimilarListingsTimeSplit,
        similar_listings_skipgram: pl.DataFrame,
        similar_listings_ann_index: pl.DataFrame,
        listings: pl.DataFrame,
        sessions: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The embeddings, their index and the catalogue as one registered model version (challenger): what the
        service answers from."""
        import mlflow
        from datetime import datetime, timedelta

        from models.similar_listings.pyfunc import log_similar_listings
        from models.similar_listings.service_model import SimilarListings

        cutoffs = similar_listings_time_split.cutoffs(sessions)
        trained = load_trained(mlflow_tracking, str(similar_listings_skipgram["run_id"][0]))
        as_of = datetime.fromisoformat(str(similar_listings_ann_index["as_of"][0]))
        with tempfile.TemporaryDirectory() as tmp, mlflow_tracking.activated():
            index_path = mlflow.artifacts.download_artifacts(
                run_id=str(similar_listings_ann_index["run_id"][0]), artifact_path="ann/index.faiss", dst_path=tmp)
            try:
                model = SimilarListings.build(listings, trained, as_of, Path(index_path).read_bytes())
            except ValueError as error:
                raise dg.Failure(f"{error}: rematerialize similar_listings_ann_index") from None
            tags = {
                "model": "similar_listings", "model_kind": "skipgram",
                "skipgram_run": str(similar_listings_skipgram["run_id"][0]),
                "ann_index_run": str(similar_listings_ann_index["run_id"][0]),
                "test_start": cutoffs.test_start.isoformat(), "test_end": cutoffs.end.isoformat(),
                # The last day it learned from: the daily fine-tune learns the days after it.
                TRAINED_THROUGH_TAG: (cutoffs.test_start - timedelta(days=1)).date().isoformat(),
            }
            with mlflow_tracking.start_run(EXPERIMENT, "similar-listings", tags) as run:
                mlflow.log_params({"as_of": as_of.isoformat(), "listings": len(model.catalogue),
                                   "learned": int(model.embeddings.learned.sum())})
                info = log_similar_listings(model, Path(tmp) / "bundle")
                version = register_challenger(context, GROUP, mlflow_tracking, info.model_uri, REGISTERED_MODEL, tags)
        context.log.info(f"registered {REGISTERED_MODEL} v{version} as challenger")
        return dg.MaterializeResult(
            value=one_row(run_id=run.info.run_id, model_uri=info.model_uri, version=version),
            metadata={
                **mlflow_tracking.run_link(run),
                "registered_version": version,
                "mlflow_model": dg.MetadataValue.url(mlflow_tracking.model_url(REGISTERED_MODEL, version)),
                "catalogue_as_of": as_of.isoformat(),
                "listings": len(model.catalogue),
                "cold_start_listings": int((~model.embeddings.learned).sum()),
            },
        )

    @dg.asset(group_name=GROUP, kinds={"mlflow", "polars"}, ins={"listings": raw_ins["listings"], "sessions": raw_ins["sessions"]})
    def similar_listings_evaluation(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        similar_listings_time_split: SimilarListingsTimeSplit,
        similar_listings_source: SimilarListingsSource,
        similar_listings_model: pl.DataFrame,
        similar_listings_plain_skipgram: pl.DataFrame,
        listings: pl.DataFrame,
        sessions: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """The book's metric (the mean rank of the booked listing among the session's listings, by similarity to
        its first click) and the next click's hit rate, on the test window, for popularity, co-occurrence, gensim's
        plain skip-gram, the book's model (cosine, and the likelihood score it serves) and, on simulated data, the
        generator's similarity and the ceiling that knows the guest."""
        import mlflow

        from models import plots
        from models.similar_listings.evaluation import test_setup, evaluate_approaches

        cutoffs = similar_listings_time_split.cutoffs(sessions)
        version = str(similar_listings_model["version"][0])
        setup = test_setup(listings, sessions, cutoffs)
        served = load_model(mlflow_tracking, version).trained
        plain = load_trained(mlflow_tracking, str(similar_listings_plain_skipgram["run_id"][0]), "plain")
        started = time.perf_counter()
        result = evaluate_approaches(setup, served, plain, similar_listings_source.truth())
        rows = {APPROACH_NAMES[name]: report for name, report in result.reports.items()}
        table = metrics_table(rows, REPORT_COLUMNS)
        curve_ranks = list(range(1, 25))
        images = {
            "booked_rank_curve.png": plots.line_chart(
                curve_ranks, {APPROACH_NAMES[n]: [float((r <= x).mean()) for x in curve_ranks] for n, r in result.ranks.items()},
                "Sessions whose booked listing ranks within the first r", "r", "share of booking sessions"),
            "mean_booked_rank.png": plots.bar_chart(
                {APPROACH_NAMES[n]: report["mean_booked_rank"] for n, report in result.reports.items()},
                "Mean rank of the booked listing (lower is better)"),
        }
        with mlflow_tracking.start_run(EXPERIMENT, "evaluation", {"model": "comparison", "registered_version": version}) as run:
            figures = metric_metadata(result.reports)
            mlflow.log_metrics(figures)
            mlflow.log_metrics({f"model_minus_{b}_mean_booked_rank_{end}": getattr(i, end)
                                for b, i in result.margins.items() for end in ("point", "low", "high")})
            mlflow.log_text(table, "comparison.md")
            log_plots(images)
        margins = result.margin_lines()
        context.log.info(f"test window ({len(setup.cases.booked)} booking sessions, {time.perf_counter() - started:.0f}s):"
                         f"\n{table}\n" + "\n".join(margins))
        comparison = pl.DataFrame([
            {"approach": name, **report, "unit_ids": [s for s, *_ in setup.cases.booked],
             "unit_booked_rank": result.ranks[name].tolist()}
            for name, report in result.reports.items()
        ])
        model = result.reports[MODEL]
        best = min(BASELINES, key=lambda name: result.reports[name]["mean_booked_rank"])
        ceiling = result.reports.get("ceiling")
        return dg.MaterializeResult(
            value=comparison,
            metadata={
                **mlflow_tracking.run_link(run),
                "comparison": dg.MetadataValue.md(table),
                "margins": dg.MetadataValue.md("\n".join(f"- {line}" for line in margins) or "- too few sessions"),
                "booking_sessions": len(setup.cases.booked),
                "booking_sessions_new_listings": int(model["sessions_new_listings"]),
                "next_click_pairs": len(setup.cases.next_clicks),
                "mean_booked_rank": model["mean_booked_rank"],
                # The front table's figures (README): the book's metric for baseline, model and the ceiling.
                "baseline": {"popularity": "popularity in the price band", "cooccurrence": "co-occurrence"}[best],
                "baseline_value": result.reports[best]["mean_booked_rank"],
                "model_value": model["mean_booked_rank"],
                "oracle_value": ceiling["mean_booked_rank"] if ceiling else None,
                "evaluation_note": "\n".join([f"booking sessions: {len(setup.cases.booked)}", *margins]),
                "oracle": "generator's utility for the session's guest" if ceiling else "none: user-provided data",
                "registered_version": version,
                **plot_links(mlflow_tracking, run, images),
                **figures,
                "plots": images_markdown(images),
            },
        )

    return [similar_listings_skipgram, similar_listings_no_leakage, similar_listings_plain_skipgram,
            similar_listings_ann_index, similar_listings_model, similar_listings_evaluation]
