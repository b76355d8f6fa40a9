"""ANN against exact search on two-tower embeddings: recall@100 and queries per second, side by side.

    ./dev.sh bench ann [--sizes 100000 1000000] [--ef 64 128 256 512]

Queries are the embeddings of the simulation's 3,000 users; the catalogue is grown to each size (see
bench/video_catalogue.py). Exact search, HNSW (efSearch sweep) and IVF-Flat (nprobe sweep) run batched on all
cores (2 here). Aim: recall@100 >= 0.95 at 10x or
more the exact search's throughput at 1M videos.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--ef", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()

    from bench.video_catalogue import embed_catalogue, grown_catalogue, trained_chain
    from models.ann import AnnIndex, HnswParams, IvfParams, recall_at_k

    recommender, _, _ = trained_chain()
    queries = recommender.state.user_embeddings
    print(f"queries: {len(queries)} user embeddings, dim {queries.shape[1]}; k={args.k}")
    for size in args.sizes:
        catalogue = grown_catalogue(recommender.state.videos, size)
        vectors = embed_catalogue(recommender, catalogue)
        ids = catalogue["video_id"].to_numpy()
        exact = AnnIndex.build(vectors, ids, None)
        started = time.perf_counter()
        _, truth = exact.search_positions(queries, args.k)
        exact_seconds = time.perf_counter() - started
        exact_qps = len(queries) / exact_seconds
        started = time.perf_counter()
        hnsw = AnnIndex.build(vectors, ids, HnswParams())
        build = time.perf_counter() - started
        print(f"\n{size:,} videos: exact (IndexFlatIP) {exact_qps:,.0f} queries/s; HNSW M=32 efConstruction=100 built in {build:.1f}s")
        print("| search | efSearch / nprobe | recall@100 vs exact | queries/s | speed-up |")
        print("|---|---|---|---|---|")
        print(f"| exact | - | 1.0000 | {exact_qps:,.0f} | 1.0x |")
        for ef in args.ef:
            hnsw.set_ef_search(ef)
            hnsw.search_positions(queries[:50], args.k)  # warm
            started = time.perf_counter()
            _, found = hnsw.search_positions(queries, args.k)
            qps = len(queries) / (time.perf_counter() - started)
            print(f"| HNSW | {ef} | {recall_at_k(found, truth):.4f} | {qps:,.0f} | {qps / exact_qps:.1f}x |")
        del hnsw
        started = time.perf_counter()
        ivf = AnnIndex.build(vectors, ids, IvfParams())
        build = time.perf_counter() - started
        print(f"| IVF-Flat nlist {IvfParams().nlist} (built in {build:.1f}s) | nprobe | | | |")
        for nprobe in args.nprobe:
            ivf.set_nprobe(nprobe)
            ivf.search_positions(queries[:50], args.k)
            started = time.perf_counter()
            _, found = ivf.search_positions(queries, args.k)
            qps = len(queries) / (time.perf_counter() - started)
            print(f"| IVF | {nprobe} | {recall_at_k(found, truth):.4f} | {qps:,.0f} | {qps / exact_qps:.1f}x |")
        del exact, ivf, vectors
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"\npeak memory {peak:.1f} GB")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
