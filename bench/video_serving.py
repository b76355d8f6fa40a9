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
import json
import os
import random
import tempfile
import time
from pathlib import Path

import httpx


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms (n={len(ordered)})"


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

    import mlflow

    from bench.serving_kit import sequential
    from bench.video_catalogue import trained_chain
    from bentos.server import serving
    from models.video_rec.pyfunc import log_recommender
    from assets.resources import BentoPackager
    from assets.video_rec import CASE

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
    print(f"catalogue {recommender.state.videos.height:,} videos; in-process chain, one thread: {_percentiles(in_process)}")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tracking = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ.update(MLFLOW_TRACKING_URI=tracking, MLFLOW_REGISTRY_URI=tracking)
        mlflow.set_tracking_uri(tracking)
        experiment = mlflow.create_experiment("bench", artifact_location=(tmp / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            recommender.save(tmp / "bundle")
            info = log_recommender(recommender, tmp / "bundle", users[:3])
            version = mlflow.register_model(info.model_uri, "video_rec_recommender").version
        packager = BentoPackager(bentoml_home=str(tmp / "bentoml"), mlflow_tracking_uri=tracking)
        model_tag = packager.run("import-model", "--name", CASE.registered_model, "--version", str(version),
                                 "--case", CASE.name)["model_tag"]
        bento = packager.run("build", "--bentofile", CASE.bento.bentofile, "--model-tag", model_tag,
                             "--packages", *CASE.bento.packages)["bento_tag"]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env |= {"BENTOML_HOME": str(tmp / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
        with serving(bento, env=env, cwd=tmp, log=tmp / "serve.log") as server, httpx.Client(timeout=30) as client:
            url = f"{server.url}/recommend"
            for payload in payloads[:50]:  # warm both workers
                client.post(url, json=payload)
            latencies, errors = sequential(client, url, payloads)
            print(f"HTTP, one client: {_percentiles(latencies)}; non-200: {errors} (aim: p99 under 50 ms)", flush=True)
            from bench import serving_kit as kit

            bodies = [json.dumps(p).encode() for p in payloads]
            body_file = kit.bodies_file(bodies, tmp)
            rate, runs = kit.capacity(url, body_file, connections=8)
            print(f"capacity {rate:.0f} requests/s (closed loop, 8 connections; runs: "
                  f"{', '.join(f'{r.ok_per_second:.0f}' for r in runs)}); workers' CPU "
                  f"{kit.cpu_per_request_ms(server, url, body_file, connections=8):.1f} ms a request", flush=True)
            at_80 = kit.paced(url, body_file, 0.8 * rate, 20, connections=32)
            print(f"80% of capacity ({0.8 * rate:.0f} requests/s asked, paced wrk, 32 connections, 20 s): {at_80.line()}")
            burst = kit.overload(server.url, "/recommend", body_file, 2 * rate, args.burst)
            print(f"twice capacity ({2 * rate:.0f} requests/s, open loop, {args.burst:.0f} s): {burst.line()}; connection "
                  f"errors {burst.connection_errors}; 503s without Retry-After {burst.rejected_without_retry_after}")


if __name__ == "__main__":
    main()
