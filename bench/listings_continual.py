"""Similar listings' daily fine-tune against a daily full retrain and a frozen model, day by day.

    ./dev.sh bench listings_continual [--first-day 20] [--epochs 6]

On the default simulation: a model is trained on the sessions before `--first-day` (the epochs the training job's
validation chose on this world). Then, for each later day: the frozen model as it was; the fine-tuned model, trained
two more epochs on the previous day's sessions (as `similar_listings_fine_tune_job` does), day after day; and a model
retrained from scratch on every session before the day. Each is judged on the day's booking sessions by the book's
metric (the booked listing's mean rank), with the catalogue as of the day's end (new listings by cold start).
Aim: the fine-tune within noise of the retrain at a tenth of its time or less.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first-day", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()

    from assets.similar_listings.continual import FINE_TUNE_EPOCHS
    from models.promotion import paired_bootstrap
    from models.similar_listings import skipgram as sg
    from models.similar_listings.data import Catalogue, evaluation_cases, sentences, sessions_between
    from models.similar_listings.evaluation import booked_ranks, embeddings_of
    from models.similar_listings.simulator import SimulationConfig, simulate

    config = SimulationConfig()
    world = simulate(config)
    sessions, listings = world.sessions, world.listings
    start = sessions["ts"].min().replace(hour=0, minute=0, second=0, microsecond=0)
    day = lambda n: start + timedelta(days=n)  # noqa: E731
    skipgram = sg.SkipGramConfig()
    frozen = sg.train(sentences(sessions_between(sessions, None, day(args.first_day))), listings, skipgram,
                      epochs=args.epochs)
    tuned = frozen
    rows, seconds = [], {"fine-tuned": 0.0, "retrained": 0.0}
    ranks = {"frozen": [], "fine-tuned": [], "retrained": []}
    print("| day | booking sessions | frozen | fine-tuned | retrained | fine-tune s | retrain s |")
    print("|---|---|---|---|---|---|---|")
    for n in range(args.first_day, config.n_days):
        if n > args.first_day:
            tuned = sg.train(sentences(sessions_between(sessions, day(n - 1), day(n))), listings, skipgram,
                             epochs=FINE_TUNE_EPOCHS, start=tuned)
        retrained = sg.train(sentences(sessions_between(sessions, None, day(n))), listings, skipgram, epochs=args.epochs)
        catalogue = Catalogue.from_listings(listings, day(n + 1))
        cases = evaluation_cases(sessions_between(sessions, day(n), day(n + 1)), catalogue, max_next_clicks=0)
        day_ranks = {name: booked_ranks(embeddings_of(model, catalogue), cases)
                     for name, model in (("frozen", frozen), ("fine-tuned", tuned), ("retrained", retrained))}
        for name, r in day_ranks.items():
            ranks[name].append(r)
        tune_s = tuned.seconds if n > args.first_day else 0.0
        seconds["fine-tuned"] += tune_s
        seconds["retrained"] += retrained.seconds
        print(f"| {day(n):%Y-%m-%d} | {len(cases.booked)} | {day_ranks['frozen'].mean():.3f} | "
              f"{day_ranks['fine-tuned'].mean():.3f} | {day_ranks['retrained'].mean():.3f} | {tune_s:.1f} | "
              f"{retrained.seconds:.1f} |", flush=True)
    pooled = {name: np.concatenate(r) for name, r in ranks.items()}
    print(f"\nall days: frozen {pooled['frozen'].mean():.3f}, fine-tuned {pooled['fine-tuned'].mean():.3f}, "
          f"retrained {pooled['retrained'].mean():.3f} (mean booked rank over {len(pooled['frozen'])} sessions)")
    for other in ("retrained", "frozen"):
        interval = paired_bootstrap(pooled["fine-tuned"], pooled[other])
        print(f"fine-tuned minus {other}: {interval.describe('mean_booked_rank')}")
    print(f"time: fine-tunes {seconds['fine-tuned']:.1f} s in all, retrains {seconds['retrained']:.1f} s "
          f"({seconds['fine-tuned'] / max(seconds['retrained'], 1e-9):.1%})")


if __name__ == "__main__":
    main()
