"""Event recommendation for one user over 100,000 live events: filter, then rank at most 500, in-process and over HTTP.

    ./dev.sh bench event_serving [--live-events 100000] [--requests 600] [--burst 20]

Simulates the default world, computes its features (MiniLM description vectors, through the shared cache) and
trains the XGBoost ranker as the training job does (its validation's choice of rounds), publishes the online
snapshot at the end of the data with the simulation's live events plus copies of them (new ids, venues moved up
to ~30 km, start times spread over the next four weeks) up to `--live-events`, then times `Recommender.recommend`
in-process (also with registrations since the snapshot from the stream, on a throwaway Redis) and the packaged bento
over HTTP (bench/serving_kit.py). Aim: p99 under 50 ms over HTTP on 2 cores with
the filter cutting to at most 500 candidates.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from datetime import timedelta
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--live-events", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--burst", type=float, default=20.0, help="seconds at twice capacity")
    args = parser.parse_args()

    import numpy as np
    import polars as pl

    from assets.event_recommendation import CASE
    from bench.serving_kit import http_figures, percentiles, served_in_a_temporary_store, temporary_folder
    from models.event_recommendation.data import LABEL, cutoffs as time_cutoffs, labelled_impressions
    from models.event_recommendation.features import feature_matrix, point_in_time_features
    from models.event_recommendation.online import FEATURE_VERSION, NAMESPACE, snapshot_records
    from models.event_recommendation.pyfunc import log_event_ranker
    from models.event_recommendation.ranker import XGBoostParams, train_xgboost
    from models.event_recommendation.service_model import Recommender
    from models.event_recommendation.simulator import SimulationConfig, simulate
    from models.online_store import open_store
    from models.text_embeddings import TextEmbeddingCache

    folder = temporary_folder()
    started = time.perf_counter()
    world = simulate(SimulationConfig())
    vectors = TextEmbeddingCache(Path(os.environ.get("MLSD_STATE_DIR", ".mlsd")) / "text_embeddings").embed(
        world.events["description"].to_list())
    rows = labelled_impressions(world.interactions, timedelta(hours=12))
    features = point_in_time_features(rows, world.interactions, world.users, world.events, world.friendships, vectors)
    cutoffs = time_cutoffs(features, "3d 150users", "4d 200users", timedelta(hours=12))
    split = cutoffs.split(features)
    part = lambda name: split.filter(pl.col("split") == name)  # noqa: E731
    chosen = train_xgboost(feature_matrix(part("train")), part("train")[LABEL].to_numpy(), feature_matrix(part("validation")),
                           part("validation")[LABEL].to_numpy(), XGBoostParams())
    known = split.filter(pl.col("split").is_in(["train", "validation"]))  # the training job's refit rows
    ranker = train_xgboost(feature_matrix(known), known[LABEL].to_numpy(), None, None, XGBoostParams(), rounds=chosen.best).ranker
    print(f"world, features and XGBoost ({chosen.best} rounds) in {time.perf_counter() - started:.0f}s", flush=True)

    as_of = world.interactions["ts"].max().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    records = list(snapshot_records(world.users, world.events, world.friendships, world.interactions, vectors, as_of))
    live = [r for r in records if r[0] == "event"]
    rng = random.Random(0)
    extra = []
    for i in range(max(0, args.live_events - len(live))):
        _, _, record = rng.choice(live)
        start = as_of + timedelta(hours=2 + rng.random() * 24 * 28)
        extra.append(("event", f"X{i:07d}", {
            **record, "e_lat": record["e_lat"] + rng.gauss(0, 0.15), "e_lon": record["e_lon"] + rng.gauss(0, 0.15),
            "start_ts": start.replace(minute=0, second=0, microsecond=0).isoformat(),
            "e_regs": rng.randrange(0, 30), "e_imps": rng.randrange(0, 400)}))
    catalogue = {"event_ids": sorted([k for _, k, _ in live] + [k for _, k, _ in extra]), "as_of": as_of.isoformat()}
    records = [r for r in records if r[0] != "catalogue"] + extra + [("catalogue", "live", catalogue)]
    store_url = f"sqlite:///{folder / 'online.db'}"
    store = open_store(store_url, NAMESPACE)
    started = time.perf_counter()
    store.publish(iter(records), FEATURE_VERSION, as_of.isoformat())
    print(f"snapshot: {len(catalogue['event_ids']):,} live events, {sum(r[0] == 'user' for r in records):,} users, "
          f"published in {time.perf_counter() - started:.0f}s", flush=True)

    recommender = Recommender(ranker, store)
    started = time.perf_counter()
    recommender.live()
    print(f"live events loaded into the recommender in {time.perf_counter() - started:.1f}s", flush=True)
    history = world.interactions.filter(pl.col("kind") == "register")["user_id"].unique().sort().to_list()
    ts = as_of + timedelta(hours=1)
    payloads = [{"user_id": rng.choice(history), "k": 10, "ts": ts.isoformat()} for _ in range(args.requests)]
    timings, ranked = [], []
    for payload in payloads[:300]:
        started = time.perf_counter()
        answer = recommender.recommend(payload["user_id"], 10, ts=ts)
        timings.append(time.perf_counter() - started)
        ranked.append(answer.filters["ranked"])
    print(f"in-process: {percentiles(timings)}; candidates ranked per request: median {int(np.median(ranked))}, "
          f"max {max(ranked)} (of {answer.filters['live']:,} live; {answer.filters['within_radius']:,} within the radius "
          "in the last request)", flush=True)

    # The stream's registrations since the snapshot: one pipelined ZCOUNT per candidate on a local Redis.
    from bentos.server import local_redis
    from models.event_recommendation.stream import LiveRegistrations, consume, publish

    with local_redis(folder) as redis_url:
        registrations = pl.DataFrame({
            "user_id": [rng.choice(history) for _ in range(5_000)],
            "event_id": [rng.choice(catalogue["event_ids"]) for _ in range(5_000)],
            "kind": "register",
            "ts": [as_of + timedelta(seconds=rng.random() * 3_000) for _ in range(5_000)],
        }).unique(["user_id", "event_id"])
        publish(redis_url, registrations)
        consume(redis_url, until_idle=0.5)
        streamed = Recommender(ranker, store, live_registrations=LiveRegistrations(redis_url))
        streamed.live()
        timings = []
        for payload in payloads[:300]:
            started = time.perf_counter()
            streamed.recommend(payload["user_id"], 10, ts=ts)
            timings.append(time.perf_counter() - started)
        print(f"in-process with the stream's counts ({registrations.height:,} registrations since the snapshot): "
              f"{percentiles(timings)}", flush=True)

    os.environ["MLSD_ONLINE_STORE_URL"] = store_url
    sample = features.head(50).to_pandas()
    with served_in_a_temporary_store(CASE, lambda tmp: log_event_ranker(ranker, sample, Path(tmp) / "ranker")) as (server, tmp):
        http_figures(server, tmp, "/recommend", payloads, args.burst, "p99 under 50 ms")


if __name__ == "__main__":
    main()
