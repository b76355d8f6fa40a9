"""Load benchmark of the served ad click bento on loopback, next to the raw model in-process on the same rows.

Needs what `./dev.sh run` makes: the built bento and the published online features. Starts `bentoml serve` on a
free port, measures, and stops it.

    ./dev.sh bench serving [--rate 200] [--seconds 15]

Latency of a request is measured from its scheduled send time (open loop), so queueing under load counts.
"""

from __future__ import annotations

import argparse
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx

from bentos.server import serving


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"p50 {p(0.50):.2f} ms, p99 {p(0.99):.2f} ms (n={len(ordered)})"


def _requests(store_url: str, n: int, candidates: int, seed: int = 0) -> list[dict]:
    from models.online_store import open_store

    store = open_store(store_url, "ad_click")
    info = store.current()
    if info is None:
        raise SystemExit("the online store has no snapshot: run ./dev.sh run first")
    store.close()
    rng = random.Random(seed)
    ts = info.as_of
    return [
        {
            "user_id": f"u{rng.randrange(20_000):07d}",
            "candidates": [{"ad_id": f"ad{a:06d}"} for a in rng.sample(range(1_500), candidates)],
            "device": "mobile",
            "ts": ts,
        }
        for _ in range(n)
    ]


def _in_process(store_url: str, payloads: list[dict], bento_tag: str) -> tuple[list[float], list[float]]:
    """Feature assembly + model, and model alone, in this process on the same requests."""
    import bentoml
    import polars as pl

    from models.ad_click.serving import fetch_features
    from models.online_store import open_store

    model_tag = bentoml.bentos.get(bento_tag).info.all_models[0].tag
    model = bentoml.mlflow.load_model(str(model_tag)).unwrap_python_model()  # as the service does
    store = open_store(store_url, "ad_click")
    full, predict_only = [], []
    for payload in payloads:
        n = len(payload["candidates"])
        rows = pl.DataFrame(
            {"user_id": [payload["user_id"]] * n, "ad_id": [c["ad_id"] for c in payload["candidates"]],
             "ts": [datetime.fromisoformat(payload["ts"])] * n, "position": [1] * n, "device": ["mobile"] * n},
            schema_overrides={"ts": pl.Datetime("us", "UTC")},
        )
        start = time.perf_counter()
        features, _ = fetch_features(store, rows)
        middle = time.perf_counter()
        model.predict_frame(features)
        end = time.perf_counter()
        full.append(end - start)
        predict_only.append(end - middle)
    store.close()
    return full, predict_only


def _sequential(client: httpx.Client, url: str, payloads: list[dict]) -> tuple[list[float], int]:
    latencies, errors = [], 0
    for payload in payloads:
        start = time.perf_counter()
        response = client.post(url, json=payload)
        latencies.append(time.perf_counter() - start)
        errors += response.status_code != 200
    return latencies, errors


def _open_loop(url: str, payloads: list[dict], rate: float, seconds: float) -> tuple[list[float], dict[int, int]]:
    total = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    local = threading.local()
    begin = time.perf_counter() + 0.2

    def send(i: int) -> None:
        client = getattr(local, "client", None) or httpx.Client(timeout=10)
        local.client = client
        scheduled = begin + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        try:
            status = client.post(url, json=payloads[i % len(payloads)]).status_code
        except httpx.HTTPError:
            status = 0
        with lock:
            latencies.append(time.perf_counter() - scheduled)
            statuses[status] = statuses.get(status, 0) + 1

    with ThreadPoolExecutor(max_workers=48) as pool:
        list(pool.map(send, range(total)))
    return latencies, statuses


def _closed_loop(url: str, payloads: list[dict], clients: int, seconds: float) -> tuple[float, dict[int, int]]:
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    done = [0]

    def worker(k: int) -> None:
        with httpx.Client(timeout=10) as client:
            i = k
            while time.perf_counter() < stop:
                status = client.post(url, json=payloads[i % len(payloads)]).status_code
                i += clients
                with lock:
                    done[0] += 1
                    statuses[status] = statuses.get(status, 0) + 1

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0] / (time.perf_counter() - start), statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bento", default="ad_click_ranker:latest")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    state = Path(os.environ.get("MLSD_STATE_DIR", Path(__file__).resolve().parents[1] / ".mlsd"))
    store_url = os.environ.get("MLSD_ONLINE_STORE_URL", f"sqlite:///{state / 'online' / 'features.db'}")
    import bentoml

    bento_tag = str(bentoml.bentos.get(args.bento).tag)
    env = {**os.environ, "MLSD_ONLINE_STORE_URL": store_url, "BENTOML_DO_NOT_TRACK": "true"}
    with serving(bento_tag, env=env) as server:
        base = server.url
        print(f"bento {bento_tag}, online store {store_url.split('@')[-1]}, {os.cpu_count()} cores, "
              f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n")
        one, fifty = _requests(store_url, 300, 1, seed=1), _requests(store_url, 300, 50, seed=2)
        full, predict = _in_process(store_url, fifty, bento_tag)
        print(f"in-process, 50 candidates: features + model {_percentiles(full)}; model alone {_percentiles(predict)}")
        with httpx.Client(timeout=10) as client:
            _sequential(client, f"{base}/rank", one[:30])  # warm-up
            for name, payloads in (("1 candidate", one), ("50 candidates", fifty)):
                latencies, errors = _sequential(client, f"{base}/rank", payloads)
                print(f"HTTP /rank, {name}, one at a time: {_percentiles(latencies)}, errors {errors}")
        latencies, statuses = _open_loop(f"{base}/rank", fifty, args.rate, args.seconds)
        print(f"HTTP /rank, 50 candidates at {args.rate:.0f} req/s for {args.seconds:.0f} s: {_percentiles(latencies)}, "
              f"status counts {statuses}")
        throughput, statuses = _closed_loop(f"{base}/rank", fifty, args.clients, args.seconds)
        print(f"HTTP /rank, 50 candidates, {args.clients} concurrent clients: {throughput:.0f} req/s, status counts {statuses}")


if __name__ == "__main__":
    main()
