"""Event recommendation's daily fine-tune against a daily full retrain and a frozen model, day by day, for both of
the book's models.

    ./dev.sh bench event_continual [--first-day 24]

On the default simulation (MiniLM description vectors through the shared cache): each model is trained on the
impressions whose labels were known before `--first-day`, its rounds (XGBoost) or epochs (MLP) chosen on the three
days before. Then, for each later day: the frozen model as it was; the fine-tuned model, trained further on the
labels that became known during the previous day (as `event_recommendation_fine_tune_job` does: 20 more trees, or
2 more epochs at a quarter of the rate), day after day; and a model retrained from scratch on every label known by
the day. Each is judged on the day's impressions by AP@10 per user who registered (mAP@10 pooled over user-days,
with paired bootstrap intervals). Aim: the fine-tune within noise of the retrain at a tenth of its time or less.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from datetime import timedelta
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first-day", type=int, default=24)
    args = parser.parse_args()

    import polars as pl

    from models.event_recommendation.data import LABEL, labelled_impressions
    from models.event_recommendation.evaluation import rank_users
    from models.event_recommendation.features import feature_matrix, point_in_time_features
    from models.event_recommendation.ranker import MLPParams, XGBoostParams, train_mlp, train_xgboost
    from models.event_recommendation.simulator import SimulationConfig, simulate
    from models.promotion import paired_bootstrap
    from models.text_embeddings import TextEmbeddingCache

    window = timedelta(hours=12)
    config = SimulationConfig()
    world = simulate(config)
    vectors = TextEmbeddingCache(Path(os.environ.get("MLSD_STATE_DIR", ".mlsd")) / "text_embeddings").embed(
        world.events["description"].to_list())
    rows = labelled_impressions(world.interactions, window)
    features = point_in_time_features(rows, world.interactions, world.users, world.events, world.friendships, vectors)
    start = features["ts"].min().replace(hour=0, minute=0, second=0, microsecond=0)
    day = lambda n: start + timedelta(days=n)  # noqa: E731
    between = lambda lo, hi: features.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))  # noqa: E731
    xy = lambda frame: (feature_matrix(frame), frame[LABEL].to_numpy())  # noqa: E731

    first = args.first_day
    choose_train, choose_valid = between(start, day(first - 3) - window), between(day(first - 3), day(first) - window)
    learners = {
        "xgboost": (lambda x, y, n=None, v=None: train_xgboost(x, y, *(v or (None, None)), XGBoostParams(), rounds=n)),
        "mlp": (lambda x, y, n=None, v=None: train_mlp(x, y, *(v or (None, None)), MLPParams(), epochs=n)),
    }
    for kind, learn in learners.items():
        chosen = learn(*xy(choose_train), None, xy(choose_valid)).best
        known = between(start, day(first) - window)
        frozen = learn(*xy(known), chosen).ranker
        tuned = copy.deepcopy(frozen)
        units = {"frozen": [], "fine-tuned": [], "retrained": []}
        seconds = {"fine-tuned": 0.0, "retrained": 0.0}
        print(f"\n{kind} ({chosen} {'rounds' if kind == 'xgboost' else 'epochs'} chosen on the three days before day {first})")
        print("| day | users who registered | frozen | fine-tuned | retrained | fine-tune s | retrain s |")
        print("|---|---|---|---|---|---|---|")
        for n in range(first, config.n_days):
            tune_s = 0.0
            if n > first:
                fresh = between(day(n - 1) - window, day(n) - window)
                started = time.perf_counter()
                tuned.fine_tune(*xy(fresh))
                tune_s = time.perf_counter() - started
            started = time.perf_counter()
            retrained = learn(*xy(between(start, day(n) - window)), chosen).ranker
            retrain_s = time.perf_counter() - started
            seconds["fine-tuned"] += tune_s
            seconds["retrained"] += retrain_s
            today = between(day(n), day(n + 1))
            x = feature_matrix(today)
            ranked = {name: rank_users(today, model.predict(x))
                      for name, model in (("frozen", frozen), ("fine-tuned", tuned), ("retrained", retrained))}
            for name, r in ranked.items():
                units[name].append(r.ap_at_10)
            print(f"| {day(n):%Y-%m-%d} | {len(ranked['frozen'].users)} | {ranked['frozen'].report['map_at_10']:.4f} | "
                  f"{ranked['fine-tuned'].report['map_at_10']:.4f} | {ranked['retrained'].report['map_at_10']:.4f} | "
                  f"{tune_s:.1f} | {retrain_s:.1f} |", flush=True)
        pooled = {name: np.concatenate(u) for name, u in units.items()}
        print(f"all days: frozen {pooled['frozen'].mean():.4f}, fine-tuned {pooled['fine-tuned'].mean():.4f}, "
              f"retrained {pooled['retrained'].mean():.4f} (mAP@10 over {len(pooled['frozen'])} user-days)")
        for other in ("retrained", "frozen"):
            print(f"fine-tuned minus {other}: {paired_bootstrap(pooled['fine-tuned'], pooled[other]).describe('map_at_10')}")
        print(f"time: fine-tunes {seconds['fine-tuned']:.1f} s in all, retrains {seconds['retrained']:.1f} s "
              f"({seconds['fine-tuned'] / max(seconds['retrained'], 1e-9):.1%})", flush=True)


if __name__ == "__main__":
    main()
