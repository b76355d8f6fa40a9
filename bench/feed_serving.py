"""The news feed for one user from 500 candidates: retrieve, score every head, weigh, re-rank; in-process and over HTTP.

    ./dev.sh bench feed_serving [--requests 600] [--burst 20] [--users 20]

Simulates the default world, computes its features (MiniLM text vectors, through the shared cache), trains the
multi-task network and XGBoost per head as the training job does (the validation's choice of epochs and rounds, then
the refit), publishes the online snapshot at the end of the data, and adds `--users` heavy readers: copies of active
users whose ties reach every author with a recent post, so each request retrieves at least 500 unseen candidates and
ranks 500 (the service's cap). Times `FeedRanker.feed` in-process for both models and the packaged bento (the
multi-task network) over HTTP (bench/serving_kit.py). Aim: p99 under 50 ms over HTTP on 2 cores.
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
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--burst", type=float, default=20.0, help="seconds at twice capacity")
    parser.add_argument("--users", type=int, default=20, help="heavy readers with 500+ candidates each")
    args = parser.parse_args()

    import numpy as np
    import polars as pl

    from assets.news_feed import CASE
    from bench.serving_kit import http_figures, percentiles, served_in_a_temporary_store, temporary_folder
    from models.news_feed.data import cutoffs, labelled_impressions
    from models.news_feed.features import feature_matrix, point_in_time_features
    from models.news_feed.online import FEATURE_VERSION, NAMESPACE, snapshot_records
    from models.news_feed.pyfunc import log_news_feed_model
    from models.news_feed.ranker import MultiTaskParams, XGBoostParams, labels_of, train_multitask, train_xgboost
    from models.news_feed.service_model import FeedRanker
    from models.news_feed.simulator import SimulationConfig, simulate
    from models.online_store import open_store
    from models.text_embeddings import TextEmbeddingCache

    folder = temporary_folder()
    started = time.perf_counter()
    world = simulate(SimulationConfig())
    vectors = TextEmbeddingCache(Path(os.environ.get("MLSD_STATE_DIR", ".mlsd")) / "text_embeddings").embed(
        world.posts["text"].to_list())
    rows = labelled_impressions(world.impressions, world.reactions, world.dwell, timedelta(hours=1), 2.0)
    features = point_in_time_features(rows, world.impressions, world.reactions, world.dwell, world.users,
                                      world.friendships, world.posts, vectors, 2.0)
    split = cutoffs(features, "3d 150users", "4d 200users", timedelta(hours=1)).split(features)
    part = lambda name: split.filter(pl.col("split") == name)  # noqa: E731
    known = split.filter(pl.col("split").is_in(["train", "validation"]))  # the training job's refit rows
    x = feature_matrix
    chosen = train_multitask(x(part("train")), labels_of(part("train")), x(part("validation")), labels_of(part("validation")),
                             MultiTaskParams())
    multitask = train_multitask(x(known), labels_of(known), None, None, MultiTaskParams(), epochs=chosen.best).model
    rounds = train_xgboost(x(part("train")), labels_of(part("train")), x(part("validation")), labels_of(part("validation")),
                           XGBoostParams()).best
    xgboost = train_xgboost(x(known), labels_of(known), None, None, XGBoostParams(), rounds=rounds).model
    print(f"world, features, the multi-task network ({chosen.best} epochs) and XGBoost per head in "
          f"{time.perf_counter() - started:.0f}s", flush=True)

    as_of = world.impressions["ts"].max().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    records = list(snapshot_records(world.users, world.friendships, world.posts, world.impressions, world.reactions,
                                    world.dwell, vectors, as_of, 3, 2.0))
    authors = [key for entity, key, record in records if entity == "author"]
    posts = sum(len(record["recent"]) for entity, _, record in records if entity == "author")
    users = {key: record for entity, key, record in records if entity == "user"}
    active = world.impressions.group_by("user_id").len().sort("len", descending=True)["user_id"].head(args.users).to_list()
    since = (as_of - timedelta(days=400)).isoformat()
    heavy = [(f"HEAVY{i:03d}", {**users[u], "ties": {**users[u]["ties"], **{a: ["friend", since] for a in authors
                                                                             if a not in users[u]["ties"]}},
                                 "seen": [], "blocked_authors": []}) for i, u in enumerate(active)]
    records += [("user", key, record) for key, record in heavy]
    store_url = f"sqlite:///{folder / 'online.db'}"
    store = open_store(store_url, NAMESPACE)
    store.publish(iter(records), FEATURE_VERSION, as_of.isoformat())
    print(f"snapshot: {len(users):,} users, {posts:,} recent posts of {len(authors):,} authors, {len(heavy)} heavy "
          "readers", flush=True)

    rng = random.Random(0)
    ts = as_of + timedelta(hours=1)
    payloads = [{"user_id": rng.choice(heavy)[0], "k": 10, "ts": ts.isoformat()} for _ in range(args.requests)]
    for name, model in (("multi-task network", multitask), ("XGBoost per head", xgboost)):
        ranker = FeedRanker(model, store)
        timings, ranked = [], []
        for payload in payloads[:300]:
            started = time.perf_counter()
            feed = ranker.feed(payload["user_id"], 10, ts=ts)
            timings.append(time.perf_counter() - started)
            ranked.append(feed.counts["ranked"])
        print(f"in-process, {name}: {percentiles(timings)}; candidates ranked per request: median "
              f"{int(np.median(ranked))} (retrieved {feed.counts['in_window']:,} in the window in the last request)",
              flush=True)

    os.environ["MLSD_ONLINE_STORE_URL"] = store_url
    sample = features.head(50).to_pandas()
    with served_in_a_temporary_store(CASE, lambda tmp: log_news_feed_model(multitask, sample, Path(tmp) / "model")) as (server, tmp):
        http_figures(server, tmp, "/feed", payloads, args.burst, "p99 under 50 ms")


if __name__ == "__main__":
    main()
