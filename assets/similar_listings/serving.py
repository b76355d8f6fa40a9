"""From a registered challenger to guests: the gated promotion and the bento."""

import dagster as dg
import numpy as np
import polars as pl

from assets.case import BentoSpec
from assets.release import PromotionSettings, Scores, build_release_assets, gate
from assets.resources import MlflowTracking
from assets.similar_listings.raw import GROUP
from assets.similar_listings.resources import SimilarListingsTimeSplit
from assets.similar_listings.training import MODEL, REGISTERED_MODEL, load_model
from models.promotion import PromotionPolicy

PROMOTION_CHECK = "similar_listings_challenger_beats_champion"
# The mean rank of the booked listing decides (lower is better); a challenger no better than random order is broken
# (its limit is set at check time from the test sessions).
PROMOTION_POLICY = PromotionPolicy(metric="mean_booked_rank", min_relative_improvement=0.005, guards={},
                                   absolute_limits={})
PROMOTED_METRICS = ("mean_booked_rank", "median_booked_rank", "booked_rank_share", "hit_rate_at_10")
BENTO = BentoSpec(
    bentofile="bentos/similar_listings/bentofile.yaml",
    packages=("mlflow", "polars", "pandas", "numpy", "pyarrow", "pydantic", "torch", "faiss-cpu", "scipy"),
)


def version_scores(mlflow_tracking: MlflowTracking, version: str, listings: pl.DataFrame, sessions: pl.DataFrame,
                   cutoffs) -> Scores:
    """A registered version on the test sessions: its metrics and each booking session's rank (the gate's units)."""
    from models.similar_listings.evaluation import embeddings_of, report, test_setup

    setup = test_setup(listings, sessions, cutoffs)
    metrics, ranks = report(embeddings_of(load_model(mlflow_tracking, version).trained, setup.catalogue),
                            setup.cases, setup.catalogue, setup.new)
    return Scores({k: metrics[k] for k in PROMOTED_METRICS}, ranks, [s for s, *_ in setup.cases.booked])


def build_serving_assets() -> list:
    @dg.asset_check(
        name=PROMOTION_CHECK,
        asset="similar_listings_evaluation",
        blocking=True,
        additional_ins={
            "similar_listings_model": dg.AssetIn("similar_listings_model"),
            "listings": dg.AssetIn("similar_listings_listings"),
            "sessions": dg.AssetIn("similar_listings_sessions"),
        },
        description="Challenger vs champion on the same test booking sessions by the promotion policy, with a paired "
        "bootstrap interval of the difference in the booked listing's rank; only a pass moves the champion.",
    )
    def similar_listings_challenger_beats_champion(
        context: dg.AssetCheckExecutionContext,
        mlflow_tracking: MlflowTracking,
        promotion: PromotionSettings,
        similar_listings_time_split: SimilarListingsTimeSplit,
        similar_listings_evaluation: pl.DataFrame,
        similar_listings_model: pl.DataFrame,
        listings: pl.DataFrame,
        sessions: pl.DataFrame,
    ) -> dg.AssetCheckResult:
        challenger = str(similar_listings_model["version"][0])
        reports = {row["approach"]: row for row in similar_listings_evaluation.iter_rows(named=True)}

        def score(version: str) -> Scores:
            if version == challenger:  # the evaluation asset scored it on the test sessions already
                row = reports[MODEL]
                return Scores({k: row[k] for k in PROMOTED_METRICS}, np.asarray(row["unit_booked_rank"]), row["unit_ids"])
            return version_scores(mlflow_tracking, version, listings, sessions, similar_listings_time_split.cutoffs(sessions))

        limits = {"mean_booked_rank": reports["random"]["mean_booked_rank"]}
        return gate(context, GROUP, mlflow_tracking, promotion, REGISTERED_MODEL, challenger, PROMOTION_POLICY, score,
                    unit="session", absolute_limits=limits)

    release = build_release_assets(
        GROUP, REGISTERED_MODEL, "similar_listings_model", "similar_listings_evaluation", PROMOTION_CHECK, BENTO,
        "The similar listings service", more_challengers=("similar_listings_fine_tuned_model",),
    )
    return [similar_listings_challenger_beats_champion, *release]
