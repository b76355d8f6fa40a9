"""Latency of the video recommender bento over HTTP on loopback with a 100k-video catalogue.

    ./dev.sh bench video_serving [--videos 100000] [--requests 1000]

Trains the chain on the default simulation, grows the catalogue (bench/video_catalogue.py), registers it in a
temporary MLflow registry, packages and serves it with `bentoml serve` on a free port, then sends top-10
requests for known users one at a time, then measures capacity (`wrk`, closed loop), latency at 80% of it (paced
`wrk`) and twice capacity (open loop: statuses, 503 latency, accepted latency), with bench/serving_kit.py. The same
requests run in-process first, so the service's own overhead shows. Aim: p99 under 50 ms on 2 cores, one client.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path


def _grown(recommender, videos: int):
    from bench.video_catalogue import embed_catalogue, grown_catalogue
    from models.ann import AnnIndex
    from models.video_rec.recommender import Recommender, ServingState

    state = recommender.state
    catalogue = grown_catalogue(state.videos, videos)
    vectors = embed_catalogue(recommender, catalogue)
    grown = ServingState(
        as_of=state.as_of, videos=catalogue, video_embeddings=vectors,
        index=AnnIndex.build(vectors, catalogue["video_id"].to_numpy(), recommender.config.hnsw),
        profiles=state.profiles, user_embeddings=state.user_embeddings, popular=state.popular, trending=state.trending,
        ease=state.ease,
    )
    return Recommender(recommender.model, recommender.vocab, recommender.ranker, grown, recommender.config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--burst", type=float, default=30.0, help="seconds at twice capacity")
    args = parser.parse_args()

    from assets.video_rec import CASE
    from bench.serving_kit import http_figures, percentiles, served_in_a_temporary_store
    from bench.video_catalogue import trained_chain
    from models.video_rec.pyfunc import log_recommender

    recommender, _, world = trained_chain()
    recommender = _grown(recommender, args.videos)
    users = world.users["user_id"].to_list()
    rng = random.Random(0)
    payloads = [{"user_id": rng.choice(users), "k": 10} for _ in range(args.requests)]

    import faiss
    import torch

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    recommender.ranker.set_param({"nthread": 1})
    in_process = []
    for payload in payloads[:300]:
        started = time.perf_counter()
        recommender.recommend([payload["user_id"]], payload["k"])
        in_process.append(time.perf_counter() - started)
    print(f"catalogue {recommender.state.videos.height:,} videos; in-process chain, one thread: {percentiles(in_process)}")

    def log_model(folder: Path):
        recommender.save(folder / "bundle")
        return log_recommender(recommender, folder / "bundle", users[:3])

    with served_in_a_temporary_store(CASE, log_model) as (server, tmp):
        http_figures(server, tmp, "/recommend", payloads, args.burst, "p99 under 50 ms")

if __name__ == "__main__":
    main()
