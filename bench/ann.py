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


def compare_indexes(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int, efs: list[int],
                    nprobes: list[int], hnsw_params, what: str) -> None:
    """Prints exact search, HNSW (an efSearch sweep) and IVF-Flat (an nprobe sweep) on the same queries: recall@k
    against exact search, queries per second, and the speed-up over exact search."""
    from models.ann import AnnIndex, IvfParams, recall_at_k

    exact = AnnIndex.build(vectors, ids, None)
    started = time.perf_counter()
    _, truth = exact.search_positions(queries, k)
    exact_qps = len(queries) / (time.perf_counter() - started)
    del exact

    def timed(index) -> tuple[float, float]:
        index.search_positions(queries[:50], k)  # warm
        started = time.perf_counter()
        _, found = index.search_positions(queries, k)
        return recall_at_k(found, truth), len(queries) / (time.perf_counter() - started)

    started = time.perf_counter()
    hnsw = AnnIndex.build(vectors, ids, hnsw_params)
    build = time.perf_counter() - started
    size = len(hnsw.to_bytes()) / 2**20
    print(f"\n{what}: exact (IndexFlatIP) {exact_qps:,.0f} queries/s; HNSW M={hnsw_params.m} "
          f"efConstruction={hnsw_params.ef_construction} built in {build:.1f}s, {size:,.0f} MB serialized "
          f"(vectors alone {vectors.nbytes / 2**20:,.0f} MB)")
    print(f"| search | efSearch / nprobe | recall@{k} vs exact | queries/s | speed-up |")
    print("|---|---|---|---|---|")
    print(f"| exact | - | 1.0000 | {exact_qps:,.0f} | 1.0x |")
    for ef in efs:
        hnsw.set_ef_search(ef)
        recall, qps = timed(hnsw)
        print(f"| HNSW | {ef} | {recall:.4f} | {qps:,.0f} | {qps / exact_qps:.1f}x |")
    del hnsw
    started = time.perf_counter()
    ivf = AnnIndex.build(vectors, ids, IvfParams())
    print(f"| IVF-Flat nlist {IvfParams().nlist} (built in {time.perf_counter() - started:.1f}s) | nprobe | | | |")
    for nprobe in nprobes:
        ivf.set_nprobe(nprobe)
        recall, qps = timed(ivf)
        print(f"| IVF | {nprobe} | {recall:.4f} | {qps:,.0f} | {qps / exact_qps:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--ef", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()

    from bench.video_catalogue import embed_catalogue, grown_catalogue, trained_chain
    from models.ann import HnswParams

    recommender, _, _ = trained_chain()
    queries = recommender.state.user_embeddings
    print(f"queries: {len(queries)} user embeddings, dim {queries.shape[1]}; k={args.k}")
    for size in args.sizes:
        catalogue = grown_catalogue(recommender.state.videos, size)
        vectors = embed_catalogue(recommender, catalogue)
        ids = catalogue["video_id"].to_numpy()
        compare_indexes(vectors, ids, queries, args.k, args.ef, args.nprobe, HnswParams(), f"{size:,} videos")
        del vectors
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"\npeak memory {peak:.1f} GB")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
