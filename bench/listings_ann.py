"""Similar listings' index at marketplace scale: build time, memory, recall@20 against exact search and queries per
second, for HNSW (efSearch sweep) and IVF-Flat (nprobe sweep) on a million listings; then one request's cost through the served model.

    ./dev.sh bench listings_ann [--sizes 100000 1000000] [--ef 128 256 512] [--nprobe 8 16 32]

The vectors are the default simulation's: the skip-gram is trained on its sessions, and the catalogue is grown to
each size by copying its listings with noise on their context vectors (each copy is a nearby listing like the one
it copies; its query vector is the original's), so the index sees the learned structure, norms included. Queries
are 2,000 listings' query vectors. Search runs batched on one thread per query stream, as a serving worker does.
Aim: recall@20 >= 0.95 at 10x or more the exact search's throughput at 1M listings.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _grown(items: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`size` item vectors: the learned ones, then copies with noise half the vectors' spread (a tenth made each
    query's top 20 a tie among copies of one listing, which no index can rank and no catalogue looks like)."""
    origin = np.concatenate([np.arange(len(items)), rng.integers(0, len(items), max(0, size - len(items)))])[:size]
    noise = rng.normal(0, 0.5 * items.std(axis=0), (size, items.shape[1])).astype(np.float32)
    noise[: len(items)] = 0
    return (items[origin] + noise).astype(np.float32), origin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--ef", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args()

    import faiss

    from bench.ann import compare_indexes
    from models.ann import HnswParams
    from models.similar_listings import skipgram as sg
    from models.similar_listings.data import sentences
    from models.similar_listings.service_model import INDEX_PARAMS, SimilarListings, indexed_items, indexed_queries
    from models.similar_listings.simulator import SimulationConfig, simulate

    faiss.omp_set_num_threads(1)
    world = simulate(SimulationConfig())
    trained = sg.train(sentences(world.sessions), world.listings, sg.SkipGramConfig(), epochs=6)
    model = SimilarListings.build(world.listings, trained, world.sessions["ts"].max())
    rng = np.random.default_rng(0)
    probe = rng.choice(len(model.catalogue), 2_000, replace=False)
    queries = indexed_queries(model.embeddings.queries[probe])
    print(f"simulated catalogue: {len(model.catalogue)} listings, dim {trained.vectors.shape[1]}; "
          f"2,000 queries; k={args.k}; one thread")
    for size in args.sizes:
        items, _ = _grown(model.embeddings.items, size, rng)
        vectors = indexed_items(items)
        compare_indexes(vectors, np.arange(size), queries, args.k, args.ef, args.nprobe,
                        HnswParams(INDEX_PARAMS.m, INDEX_PARAMS.ef_construction, INDEX_PARAMS.ef_search),
                        f"{size:,} listings")

    # One request through the served model (index search, the rules, the exact fallback when filters are narrow).
    listing_ids = [str(model.catalogue.ids[i]) for i in probe[:500]]
    for label, filters in (("no filter", {}), ("price within 10%", "narrow")):
        times = []
        for listing in listing_ids:
            position = model.catalogue.position[listing]
            price = model.catalogue.price[position]
            kwargs = {} if filters == {} else {"min_price": price * 0.9, "max_price": price * 1.1}
            started = time.perf_counter()
            model.similar(listing, 10, **kwargs)
            times.append(time.perf_counter() - started)
        p50, p99 = np.percentile(np.array(times) * 1000, [50, 99])
        print(f"\nserved model, {len(model.catalogue)} listings, k=10, {label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
