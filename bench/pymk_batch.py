"""People you may know's daily batch at 100k members and 5M connections: time per stage and peak memory.

    ./dev.sh bench pymk_batch [--members 100000] [--connections 5000000] [--kinds xgboost graphsage]

Trains XGBoost and GraphSAGE on the default simulation as the training job does, then builds a network of
`--members` members and `--connections` connections the way the simulator's is shaped (hidden communities whose
members share schools, companies and cities, written in the simulator's spellings; sociability spreads degrees over
two orders of magnitude; most connections inside a community, so friends of friends overlap), with a request and
two profile views per ten connections. Each edge model then runs the batch as the batch asset does, in a process of
its own so that its peak memory is its own: the snapshot (standardizing attributes, the sparse graph), friends of
friends capped at 200 a member by mutual-friend count with their features, scoring, and each member's top 20.
Aim: the whole batch under 10 minutes on 2 cores within 8 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

AIM_SECONDS = 600
AIM_GB = 8


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def network(members: int, connections: int, seed: int = 5):
    """Members, connections, requests and views shaped like the simulator's, at any size."""
    import polars as pl

    from models.people_you_may_know.simulator import SimulationConfig, _spellings, _vocabularies

    rng = np.random.default_rng(seed)
    vocab = _vocabularies(SimulationConfig(schools=120, companies=180, cities=32), rng)
    communities = max(1, members // 400)
    community = rng.integers(communities, size=members)
    attributes = {}
    for kind, names in vocab.items():
        favourite = rng.integers(len(names), size=communities)
        chosen = np.where(rng.random(members) < 0.5, favourite[community], rng.integers(len(names), size=members))
        spellings = {i: _spellings(name, kind, rng) if kind != "industry" else [name] for i, name in enumerate(names)}
        attributes[kind] = [None if rng.random() < 0.1 else
                            spellings[c][0 if rng.random() < 0.45 else int(rng.integers(len(spellings[c])))] for c in chosen]
    now = datetime(2026, 3, 1, tzinfo=timezone.utc)
    ids = np.array([f"m{i:07d}" for i in range(members)])
    users = pl.DataFrame({"user_id": ids, **attributes,
                          "signup_ts": [now - timedelta(days=int(d)) for d in rng.integers(1, 1500, members)]},
                         schema_overrides={"signup_ts": pl.Datetime("us", "UTC")})
    weight = rng.lognormal(0, 0.8, size=members)
    by_community = [np.flatnonzero(community == c) for c in range(communities)]
    drawn = int(connections * 1.4)  # duplicates and self-pairs are dropped below
    a = rng.choice(members, size=drawn, p=weight / weight.sum())
    inside = rng.random(drawn) < 0.8
    b = rng.choice(members, size=drawn, p=weight / weight.sum())
    for c, group in enumerate(by_community):  # most connections inside the member's community
        rows = np.flatnonzero(inside & (community[a] == c))
        if len(group) and len(rows):
            b[rows] = group[rng.choice(len(group), size=len(rows), p=weight[group] / weight[group].sum())]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keys = np.unique((lo.astype(np.int64) * members + hi)[lo != hi])[:connections]
    lo, hi = keys // members, keys % members
    seconds = rng.integers(0, 730 * 86_400, size=len(keys))
    ts = np.datetime64(now.replace(tzinfo=None), "us") - seconds.astype("timedelta64[s]")
    edges = pl.DataFrame({"user_a": ids[lo], "user_b": ids[hi], "ts": ts}).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    n_requests, n_views = len(keys) // 10, len(keys) // 5
    pick = lambda n: rng.integers(len(keys), size=n)  # noqa: E731 - asked or viewed along existing ties' neighbourhoods
    recent = lambda n: (np.datetime64(now.replace(tzinfo=None), "us")  # noqa: E731
                        - rng.integers(0, 60 * 86_400, size=n).astype("timedelta64[s]"))
    r = pick(n_requests)
    requests = pl.DataFrame({"request_id": [f"r{i}" for i in range(n_requests)], "from_user": ids[lo[r]],
                             "to_user": ids[rng.integers(members, size=n_requests)], "ts": recent(n_requests),
                             "accepted": rng.random(n_requests) < 0.5}).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    v = pick(n_views)
    views = pl.DataFrame({"viewer": ids[hi[v]], "viewed": ids[rng.integers(members, size=n_views)],
                          "ts": recent(n_views)}).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    return users, edges, requests, views, now


def trained(folder: Path) -> None:
    """XGBoost and GraphSAGE trained on the default simulation, saved as recommenders under `folder`."""
    import torch

    from models.people_you_may_know.ranker import GraphSageParams, XGBoostParams
    from models.people_you_may_know.recommend import Recommender
    from models.people_you_may_know.simulator import SimulationConfig, simulate
    from models.people_you_may_know.training import Cutoffs, PymkData, fit_graphsage, fit_xgboost

    torch.set_num_threads(2)
    world = simulate(SimulationConfig())
    data = PymkData.prepare(world.users, world.connections, world.requests, world.profile_views,
                            Cutoffs.from_connections(world.connections, 7), 200)
    for kind, fitted in (("xgboost", fit_xgboost(data, XGBoostParams())), ("graphsage", fit_graphsage(data, GraphSageParams()))):
        Recommender(fitted.model, data.standardizer, data.vocabulary).save(folder / kind)


def batch(folder: Path, kind: str, members: int, connections: int) -> dict:
    """One edge model's batch over the large network (run in a process of its own)."""
    import torch

    from models.people_you_may_know.recommend import Recommender, recommend

    torch.set_num_threads(2)
    started = time.perf_counter()
    users, edges, requests, views, now = network(members, connections)
    generated = time.perf_counter() - started
    recommender = Recommender.load(folder / kind)
    started = time.perf_counter()
    snapshot = recommender.snapshot(users, edges, requests, views, now)
    snapshot_seconds = time.perf_counter() - started
    last = [0.0]

    def progress(line: str) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            print(f"  [{kind}] {line}", file=sys.stderr, flush=True)

    suggestions, stats = recommend(recommender, snapshot, np.arange(snapshot.size), 20, progress=progress)
    stats.add("snapshot", snapshot_seconds)
    return {"kind": kind, "members": snapshot.size, "connections": int(snapshot.adjacency.nnz // 2),
            "generated_seconds": generated, "seconds": stats.seconds, "total_seconds": sum(stats.seconds.values()),
            "candidate_pairs": stats.candidate_pairs, "suggestions": suggestions.height, "peak_gb": peak_gb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=5_000_000)
    parser.add_argument("--kinds", nargs="+", default=["xgboost", "graphsage"])
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one kind in this process
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(batch(Path(args.folder), args.one, args.members, args.connections)))
        return

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print("training XGBoost and GraphSAGE on the default simulation...", flush=True)
        started = time.perf_counter()
        trained(Path(tmp))
        print(f"  trained in {time.perf_counter() - started:.0f}s", flush=True)
        for kind in args.kinds:
            print(f"{kind}: batch over {args.members:,} members and {args.connections:,} connections...", flush=True)
            done = subprocess.run([sys.executable, "-m", "bench.pymk_batch", "--one", kind, "--folder", tmp,
                                   "--members", str(args.members), "--connections", str(args.connections)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(done.stderr[-3000:])
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            stages = ", ".join(f"{stage} {seconds:.0f}s" for stage, seconds in figures["seconds"].items())
            total, peak = figures["total_seconds"], figures["peak_gb"]
            verdict = "met" if total < AIM_SECONDS and peak < AIM_GB else "NOT met"
            print(f"  {figures['members']:,} members, {figures['connections']:,} connections (generated in "
                  f"{figures['generated_seconds']:.0f}s, not counted); {figures['candidate_pairs']:,} candidate pairs; "
                  f"{figures['suggestions']:,} suggestions")
            print(f"  {stages}; total {total:.0f}s ({total / figures['members'] * 1000:.2f} ms a member); peak memory "
                  f"{peak:.1f} GB (aim {AIM_SECONDS // 60} min, {AIM_GB} GB: {verdict})", flush=True)


if __name__ == "__main__":
    main()
