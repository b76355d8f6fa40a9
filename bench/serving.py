"""Serving capacity of the ad click bento on loopback, next to the bare floor of the same HTTP stack.

Needs what `./dev.sh run` makes: the built bento and the published online features.

    ./dev.sh bench serving [--burst 30] [--soak 600] [--no-network]

In one run: the per-request CPU of each part of the served path (in-process, on the same requests) beside the CPU
the workers spend per request under load; the floor (bench/floor_service.py: the same stack and settings answering
the same bodies with no work) and the bento side by side: capacity (`wrk`, closed loop), one client, latency at 80%
of capacity (paced `wrk`), twice capacity (open loop: statuses, 503 latency, accepted latency), and with --soak a
paced run at 80% reporting errors and the workers' memory over time. Unless --no-network, the same service is built
around the run's XGBoost candidate and around its best DeepFM/DCN candidate (from their MLflow runs), and both are
measured in turn on the same bodies: capacity and one client's latency. README, "Serving capacity", has the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import serving_kit as kit
from bentos.server import serving

CANDIDATES = 50


def request_bodies(store_url: str, n: int, candidates: int, seed: int = 0) -> list[bytes]:
    """Distinct ranking requests for known users and ads, at the published snapshot's time."""
    from models.online_store import open_store

    store = open_store(store_url, "ad_click")
    info = store.current()
    store.close()
    if info is None:
        raise SystemExit("the online store has no snapshot: run ./dev.sh run first")
    rng = random.Random(seed)
    return [
        json.dumps({"user_id": f"u{rng.randrange(20_000):07d}",
                    "candidates": [{"ad_id": f"ad{a:06d}"} for a in rng.sample(range(1_500), candidates)],
                    "device": "mobile", "ts": info.as_of}).encode()
        for _ in range(n)
    ]


def _timed(function, items, repeat: int = 3) -> float:
    """Mean ms per call of `function(item)` over `items`, after one warm pass."""
    for item in items:
        function(item)
    started = time.perf_counter()
    for _ in range(repeat):
        for item in items:
            function(item)
    return (time.perf_counter() - started) / (repeat * len(items)) * 1000


def stage_costs(bodies: list[bytes]) -> list[tuple[str, float]]:
    """ms of CPU per request of each part of the service's own code, in this process, one thread."""
    from bentos.ad_click.service import AdClickRanker, RankRequest, RankResponse

    service = AdClickRanker.inner()  # reads MLSD_ONLINE_STORE_URL, as the served workers do
    requests = [RankRequest.model_validate_json(b) for b in bodies]
    args = [(r.user_id, [c.ad_id for c in r.candidates], r.ts, 1, r.device) for r in requests]
    rankings = [(r.user_id, [c.ad_id for c in r.candidates], r.device, r.ts, r.slots) for r in requests]
    matrices = [service.features.matrix(*a)[0] for a in args]
    responses = [service.ranked(*a) for a in rankings]
    return [
        ("request validation (JSON to the pydantic request)", _timed(RankRequest.model_validate_json, bodies)),
        ("online store: current snapshot", _timed(lambda _: service.store.current(), bodies)),
        ("features: records held per snapshot, design matrix", _timed(lambda a: service.features.matrix(*a), args)),
        ("model: XGBoost in-place predict", _timed(service.model.predict_matrix, matrices)),
        ("ranking and response model", _timed(lambda a: service.ranked(*a), rankings)),
        ("response JSON", _timed(RankResponse.model_dump_json, responses)),
    ]


def candidate_bento(state: Path, kinds: tuple[str, ...]) -> tuple[str, str] | None:
    """A bento of the ranking service around the run's best candidate of these kinds (lowest validation log loss),
    built in the BentoML store here; (bento tag, what it is), or None when the run trained none."""
    import bentoml
    import mlflow

    from bentos.package import build

    tracking = os.environ.get("MLSD_MLFLOW_TRACKING_URI") or f"sqlite:///{state / 'mlflow' / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking)
    experiment = mlflow.get_experiment_by_name("ad_click")
    runs = [run for kind in kinds for run in mlflow.search_runs(
        [experiment.experiment_id], f"tags.model = '{kind}'", output_format="list")
        if "best_validation_log_loss" in run.data.metrics]
    if not runs:
        return None
    run = min(runs, key=lambda r: r.data.metrics["best_validation_log_loss"])
    model_uri = mlflow.search_logged_models([experiment.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'",
                                            output_format="list")[0].model_uri
    label = f"{run.data.tags['model']}-run-{run.info.run_id[:8]}"
    model = bentoml.mlflow.import_model("ad_click_ctr", model_uri=model_uri, labels={"mlflow_version": label})
    from assets.ad_click.serving import BENTO

    made = build(BENTO.bentofile, str(model.tag), list(BENTO.packages))
    return made["bento_tag"], f"{run.data.tags['model']} (run {run.info.run_id[:8]})"


def one_client(url: str, bodies: list[bytes], rounds: int = 3) -> tuple[float, float]:
    """p50 and p99 in ms of one client posting the bodies in turn."""
    import httpx

    from bentos.load import percentile

    latencies = []
    with httpx.Client(timeout=10) as client:
        for body in bodies * rounds:
            started = time.perf_counter()
            client.post(url, content=body, headers={"content-type": "application/json"})
            latencies.append(time.perf_counter() - started)
    return percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bento", default="ad_click_ranker:latest")
    parser.add_argument("--burst", type=float, default=30.0, help="seconds at twice capacity")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds at 80%% of capacity (0: no soak)")
    parser.add_argument("--no-network", action="store_true", help="skip serving the best network candidate beside it")
    parser.add_argument("--compare-only", action="store_true", help="only the XGBoost and network candidates side by side")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    state = Path(os.environ.get("MLSD_STATE_DIR", root / ".mlsd"))
    store_url = os.environ.get("MLSD_ONLINE_STORE_URL", f"sqlite:///{state / 'online' / 'features.db'}")
    import bentoml

    bento_tag = str(bentoml.bentos.get(args.bento).tag)
    folder = kit.temporary_folder()
    bodies = request_bodies(store_url, 200, CANDIDATES, seed=2)
    body_file = kit.bodies_file(bodies, folder)
    print(f"bento {bento_tag}, online store {store_url.split('@')[-1]}, {os.cpu_count()} cores, "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; /rank with {CANDIDATES} candidates\n", flush=True)

    os.environ["MLSD_ONLINE_STORE_URL"] = store_url
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true"}
    if args.compare_only:
        return compare_network(state, env, folder, bodies, body_file)
    stages = stage_costs(bodies)
    with contextlib.ExitStack() as stack:
        floor = stack.enter_context(serving("bench.floor_service:Floor", env={**env, "PYTHONPATH": str(root)},
                                            cwd=root, log=folder / "floor.log"))
        ranker = stack.enter_context(serving(bento_tag, env=env, log=folder / "ranker.log"))
        targets = {"floor (no work)": f"{floor.url}/floor", "ad click /rank": f"{ranker.url}/rank"}
        measured = {}
        for name, url in targets.items():
            server = floor if name.startswith("floor") else ranker
            rate, runs = kit.capacity(url, body_file)
            cpu = kit.cpu_per_request_ms(server, url, body_file)
            measured[name] = (rate, cpu)
            print(f"{name}: capacity {rate:.0f} requests/s (closed loop, 8 connections; runs: "
                  f"{', '.join(f'{r.ok_per_second:.0f}' for r in runs)}); workers' CPU {cpu:.2f} ms a request", flush=True)
        capacity, cpu = measured["ad click /rank"]
        floor_rate, floor_cpu = measured["floor (no work)"]
        print(f"ad click reaches {capacity / floor_rate:.0%} of the floor's throughput (aim: 70%; 360 requests/s)\n")

        rows = [["HTTP, JSON and BentoML: the floor's CPU a request", f"{floor_cpu:.3f}"]]
        rows += [[name, f"{ms:.3f}"] for name, ms in stages]
        own = sum(ms for name, ms in stages if not name.startswith(("ranking", "request validation")))
        rows.append(["**workers' CPU a request under load (measured)**", f"**{cpu:.3f}**"])
        print("Per-request CPU, ms (in-process parts on one thread; 'ranking and response model' includes the store,"
              " features and model rows above it):")
        print(kit.markdown_table(["part of the served path", "ms"], rows))
        print(f"the service's own work above the floor: {cpu - floor_cpu:.3f} ms measured in the workers; "
              f"in-process parts (store, features, model, response): {own:.3f} ms\n", flush=True)

        p50, p99 = one_client(targets["ad click /rank"], bodies)
        print(f"one client, {3 * len(bodies)} requests: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        at_80 = kit.paced(targets["ad click /rank"], body_file, 0.8 * capacity, 20)
        print(f"80% of capacity ({0.8 * capacity:.0f} requests/s asked, paced wrk, 64 connections, 20 s): {at_80.line()} "
              f"(aim: p99 under 25 ms)")
        burst = kit.overload(ranker.url, "/rank", body_file, 2 * capacity, args.burst)
        print(f"twice capacity ({2 * capacity:.0f} requests/s, open loop, {args.burst:.0f} s): {burst.line()}; "
              f"connection errors {burst.connection_errors}; 503s without Retry-After {burst.rejected_without_retry_after}"
              f" (aims: 0 connection errors, rejections within 50 ms, accepted p99 under 100 ms)", flush=True)
        if args.soak:
            samples = kit.soak(ranker, targets["ad click /rank"], body_file, 0.8 * capacity, args.soak)
            errors = sum(sum(n for s, n in run.statuses.items() if s != 200) + run.socket_errors
                         for _, run, _ in samples[1:])
            first, last = samples[1][2], samples[-1][2]
            print(f"soak at 80% for {args.soak:.0f} s: {errors} non-200 answers or socket errors; workers' RSS "
                  f"{samples[0][2]:.0f} MiB at the start, {first:.0f} after the first minute, {last:.0f} at the end "
                  f"({(last - first) / first:+.1%} after the first minute; aim: 0 errors, under 10%)")
    if not args.no_network:
        compare_network(state, env, folder, bodies, body_file)


def compare_network(state: Path, env: dict, folder: Path, bodies: list[bytes], body_file) -> None:
    """The service around the XGBoost candidate and around the best network candidate, measured in turn."""
    built = [candidate_bento(state, ("xgboost",)), candidate_bento(state, ("deepfm", "dcn"))]
    if None in built:
        print("\nthis run's MLflow experiment lacks an XGBoost or a network candidate: nothing to compare")
        return
    print("\nthe ranking service around each kind of model, one after the other, same bodies:")
    rows = []
    for tag, name in built:
        with serving(tag, env=env, log=folder / f"{tag.replace(':', '-')}.log") as server:
            url = f"{server.url}/rank"
            rate, _ = kit.capacity(url, body_file)
            p50, p99 = one_client(url, bodies)
            rows.append([name, f"{rate:.0f}", f"{p50:.2f}", f"{p99:.2f}"])
    print(kit.markdown_table(["served model", "capacity (requests/s)", "one client p50 (ms)", "one client p99 (ms)"], rows))
    print("(aim: the network's one-client p99 no worse than XGBoost's)")


if __name__ == "__main__":
    sys.exit(main())
