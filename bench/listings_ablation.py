"""What each of the book's two changes to skip-gram buys, in one trainer: plain skip-gram, the booked listing as a
global context alone, same-city hard negatives alone, and both (the served model).

    ./dev.sh bench listings_ablation

On the default simulation and with the training job's protocol: epochs chosen on the validation window's bookings,
a refit on every session before the test window, and the mean rank of the booked listing on the test window by the
likelihood score the service uses. Each variant against plain skip-gram with a paired bootstrap 95% interval.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta


def main() -> None:
    from models.promotion import paired_bootstrap
    from models.similar_listings import skipgram as sg
    from models.similar_listings.data import Catalogue, Cutoffs, evaluation_cases, sentences, sessions_between
    from models.similar_listings.evaluation import booked_ranks, embeddings_of, test_setup
    from models.similar_listings.similarity import Embeddings
    from models.similar_listings.simulator import SimulationConfig, simulate

    world = simulate(SimulationConfig())
    sessions, listings = world.sessions, world.listings
    cutoffs = Cutoffs.from_sessions(sessions, "3d 150users", "4d 200users")
    validation_catalogue = Catalogue.from_listings(listings, cutoffs.test_start)
    validation = evaluation_cases(sessions_between(sessions, cutoffs.validation_start, cutoffs.test_start),
                                  validation_catalogue, max_next_clicks=0)
    fit = sentences(sessions_between(sessions, None, cutoffs.validation_start))
    refit = sentences(sessions_between(sessions, None, cutoffs.test_start))
    setup = test_setup(listings, sessions, cutoffs)

    def validate(ids, centre, context) -> float:
        return float(booked_ranks(Embeddings.likelihood(validation_catalogue, ids, centre, context), validation).mean())

    both = sg.SkipGramConfig()
    variants = {
        "plain skip-gram": replace(both, booked_context=False, hard_negatives=0, negatives=both.negatives + both.hard_negatives),
        "booked listing as global context": replace(both, hard_negatives=0, negatives=both.negatives + both.hard_negatives),
        "same-city hard negatives": replace(both, booked_context=False),
        "both (served)": both,
    }
    ranks = {}
    last = cutoffs.end - timedelta(days=1)
    print(f"test window {cutoffs.test_start:%Y-%m-%d} to {last:%Y-%m-%d}: {len(setup.cases.booked)} booking sessions; "
          "the variants without hard negatives draw that many more random ones")
    print("| variant | best epoch | mean booked rank | against plain skip-gram (95% interval) | training |")
    print("|---|---|---|---|---|")
    for name, config in variants.items():
        started = time.perf_counter()
        chosen = sg.train(fit, listings, config, validate)
        trained = sg.train(refit, listings, config, epochs=chosen.best_epoch)
        seconds = time.perf_counter() - started
        ranks[name] = booked_ranks(embeddings_of(trained, setup.catalogue), setup.cases)
        against = "" if name == "plain skip-gram" else paired_bootstrap(ranks[name], ranks["plain skip-gram"])
        shown = "" if not against else f"{against.point:+.3f} ({against.low:+.3f} to {against.high:+.3f})"
        print(f"| {name} | {chosen.best_epoch} | {ranks[name].mean():.3f} | {shown} | {seconds:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
