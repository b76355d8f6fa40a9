"""The similar-listings bento over HTTP on loopback: one client's latency, capacity, 80% of it, twice it.

    ./dev.sh bench listings_serving [--requests 1000] [--burst 30]

Trains the skip-gram on the default simulation as the training job does (6 epochs, the validation's choice there),
builds the served model (every listing, cold-start ones included, in the index), registers it in a temporary MLflow
registry, packages and serves it with `bentoml serve` on a free port, then measures with bench/serving_kit.py.
Requests ask for 10 similar listings of a random listing, a third of them with a price filter. Aim: p99 under 10 ms
for one client on 2 cores.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--burst", type=float, default=30.0, help="seconds at twice capacity")
    args = parser.parse_args()

    from assets.similar_listings import CASE
    from bench.serving_kit import http_figures, percentiles, served_in_a_temporary_store
    from models.similar_listings import skipgram as sg
    from models.similar_listings.data import sentences
    from models.similar_listings.pyfunc import log_similar_listings
    from models.similar_listings.service_model import SimilarListings
    from models.similar_listings.simulator import SimulationConfig, simulate

    world = simulate(SimulationConfig())
    trained = sg.train(sentences(world.sessions), world.listings, sg.SkipGramConfig(), epochs=6)
    model = SimilarListings.build(world.listings, trained, world.sessions["ts"].max())
    rng = random.Random(0)
    ids = [str(i) for i in model.catalogue.ids]
    payloads = []
    for _ in range(args.requests):
        listing = rng.choice(ids)
        price = float(model.catalogue.price[model.catalogue.position[listing]])
        filters = {"filters": {"max_price": round(price * 1.2, 2)}} if rng.random() < 1 / 3 else {}
        payloads.append({"listing_id": listing, "k": 10, **filters})
    in_process = []
    for payload in payloads[:300]:
        started = time.perf_counter()
        model.similar(payload["listing_id"], 10, max_price=payload.get("filters", {}).get("max_price"))
        in_process.append(time.perf_counter() - started)
    print(f"catalogue {len(model.catalogue):,} listings; in-process: {percentiles(in_process)}")
    with served_in_a_temporary_store(CASE, lambda folder: log_similar_listings(model, Path(folder) / "bundle")) as (server, tmp):
        http_figures(server, tmp, "/similar", payloads, args.burst, "p99 under 10 ms")


if __name__ == "__main__":
    main()
