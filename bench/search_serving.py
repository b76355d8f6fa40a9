"""Video search at a million videos: index build time and memory, then query latency in-process and over HTTP.

    ./dev.sh bench search_serving [--videos 1000000] [--requests 1000] [--burst 30]

Trains the auto-tagger and the dual encoder on the default simulation as the training job does, then grows the
catalogue to `--videos` by copying its videos (titles, descriptions, tags and frames, with fresh ids, upload times and
frame noise, so the index holds a million distinct documents and vectors of the same kind), and builds the served
search over it: BM25 over every document, every video's vector, HNSW over them (exact search below 20k videos).
Queries are the simulation's own. Per request: the query's MiniLM encoding, BM25 over the whole catalogue, the 200
best of each path, their fusion. Aim: p99 under 100 ms over HTTP on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import time
from pathlib import Path

import numpy as np


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--burst", type=float, default=30.0, help="seconds at twice capacity")
    args = parser.parse_args()

    from assets.video_search import CASE
    from bench.serving_kit import http_figures, percentiles, served_in_a_temporary_store, temporary_folder
    from models.text_embeddings import TextEmbeddingCache, encode
    from models.video_search.data import Cutoffs
    from models.video_search.encoders import EncoderConfig, video_inputs
    from models.video_search.pyfunc import log_video_search
    from models.video_search.search import TextIndex, VideoSearch
    from models.video_search.simulator import SimulationConfig, simulate
    from models.video_search.training import SearchData, build_search, fit_encoder, fit_tagger

    folder = temporary_folder()
    world = simulate(SimulationConfig())
    cutoffs = Cutoffs.from_log(world.queries, world.clicks, "3d 300users", "4d 400users")
    data = SearchData.prepare(world.videos, world.frames, world.queries, world.clicks, cutoffs,
                              TextEmbeddingCache(folder / "embeddings").embed)
    tagger, _, _ = fit_tagger(data)
    encoder, history, _ = fit_encoder(data, EncoderConfig())
    built = build_search(data, tagger, encoder)
    print(f"trained on {len(data.catalogue):,} videos (encoder epoch {history.best_epoch}); fusion weights "
          f"{vars(built.search.weights)}", flush=True)

    small, n = data.catalogue, args.videos
    rng = np.random.default_rng(0)
    copies = rng.integers(len(small), size=n)
    auto = tagger.predict(small.frames)
    documents = small.documents(auto)
    started, rss_before = time.perf_counter(), rss_mib()
    text_index = TextIndex.build([documents[i] for i in copies])
    text_seconds = time.perf_counter() - started
    frames = small.frames[copies] + rng.normal(scale=0.05, size=(n, small.frames.shape[1])).astype(np.float32)
    started = time.perf_counter()
    vectors = np.concatenate([encoder.encode_videos(video_inputs(frames[i:i + 100_000], small.metadata_vectors[copies[i:i + 100_000]],
                                                                 small.tagged[copies[i:i + 100_000]]))
                              for i in range(0, n, 100_000)])
    vector_seconds = time.perf_counter() - started
    del frames
    upload = np.sort(rng.uniform(small.upload_seconds.min(), small.upload_seconds.max(), n))
    search = VideoSearch(np.asarray([f"V{i:08d}" for i in range(n)], dtype=object), [small.titles[i] for i in copies],
                         upload, text_index, vectors, encoder, built.search.popularity[copies], built.search.weights,
                         built.search.as_of)
    started = time.perf_counter()
    search.ann()
    ann_seconds = time.perf_counter() - started
    print(f"index over {n:,} videos: BM25 {text_seconds:.1f} s ({len(text_index.retriever.vocab_dict):,} terms), video "
          f"tower {vector_seconds:.1f} s, {'HNSW' if n >= 20_000 else 'exact'} {ann_seconds:.1f} s; peak RSS "
          f"{rss_mib():,.0f} MiB ({rss_mib() - rss_before:+,.0f} MiB for the index)", flush=True)

    texts = world.queries["text"].to_list()
    rand = random.Random(0)
    payloads = [{"q": rand.choice(texts), "k": 10} for _ in range(args.requests)]
    encode(["warm up"])
    timings = {"encode": [], "search": [], "total": []}
    for payload in payloads[:300]:
        t0 = time.perf_counter()
        vector = encode([payload["q"]])[0]
        t1 = time.perf_counter()
        search.search(payload["q"], vector, 10)
        t2 = time.perf_counter()
        timings["encode"].append(t1 - t0)
        timings["search"].append(t2 - t1)
        timings["total"].append(t2 - t0)
    for name, samples in timings.items():
        print(f"in-process {name}: {percentiles(samples)}", flush=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = time.perf_counter()
    with served_in_a_temporary_store(CASE, lambda tmp: log_video_search(search, Path(tmp) / "bundle", texts[:3])) as (server, tmp):
        print(f"logged, registered, packaged and served in {time.perf_counter() - started:.0f} s", flush=True)
        http_figures(server, tmp, "/search", payloads, args.burst, "p99 under 100 ms")


if __name__ == "__main__":
    main()
