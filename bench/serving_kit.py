"""Measurements every online service's benchmark shares: capacity with `wrk`, latency at a share of capacity,
overload at twice capacity, a soak, and the workers' CPU and memory.

`wrk` (Debian's package; `./dev.sh setup` installs it when root) is the closed-loop and paced load: compiled, it
takes little of the two cores it shares with the service. The overload burst uses bentos/load.py's open loop, which
records each answer's status, latency and Retry-After.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bentos.load import LoadSummary

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "post_bodies.lua"


@dataclass(frozen=True)
class WrkRun:
    seconds: float
    statuses: dict[int, int]
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def ok_per_second(self) -> float:
        return self.statuses.get(200, 0) / self.seconds

    @property
    def per_second(self) -> float:
        return sum(self.statuses.values()) / self.seconds

    def line(self) -> str:
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (f"{self.per_second:.0f} requests/s ({shown}; socket errors {self.socket_errors}), "
                f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms")


def bodies_file(bodies: list[bytes], folder: Path) -> Path:
    path = folder / "bodies.jsonl"
    path.write_bytes(b"\n".join(bodies) + b"\n")
    return path


def wrk(url: str, bodies: Path, connections: int, seconds: float, pace_ms: float | None = None) -> WrkRun:
    """One `wrk` run: closed loop, or each connection paced at `pace_ms` between requests."""
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk (Debian package wrk; ./dev.sh setup installs it when root)")
    command = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "10s",
               "-s", str(WRK_SCRIPT), url, "--", str(bodies)]
    if pace_ms:
        command.append(f"{pace_ms:.3f}")
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    statuses = {int(s): int(n) for s, n in re.findall(r"^status (\d+) (\d+)$", output, re.M)}
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    value, unit = re.search(r"requests in ([\d.]+)(us|ms|s|m),", output).groups()
    elapsed = float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]  # wrk writes 60 s as "1.00m"
    return WrkRun(elapsed, statuses, errors, _wrk_ms(output, "50%"), _wrk_ms(output, "99%"))


def _wrk_ms(output: str, percentile: str) -> float:
    value, unit = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s|m)$", output, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def capacity(url: str, bodies: Path, runs: int = 3, seconds: float = 5, connections: int = 8) -> tuple[float, list[WrkRun]]:
    """Answered-200 requests/s of closed-loop runs (the median): the service's capacity on this machine. Few
    connections: each worker's queue then stays short of its shedding limit, so what is counted is throughput."""
    wrk(url, bodies, connections, 2)  # warm-up: caches, connections spread over the workers
    measured = [wrk(url, bodies, connections, seconds) for _ in range(runs)]
    return statistics.median(r.ok_per_second for r in measured), measured


def paced(url: str, bodies: Path, rate: float, seconds: float, connections: int = 64) -> WrkRun:
    """About `rate` requests/s offered by `connections` paced connections."""
    return wrk(url, bodies, connections, seconds, pace_ms=connections * 1000 / rate)


def overload(url: str, path: str, bodies: Path, rate: float, seconds: float) -> LoadSummary:
    """An open-loop run of bentos/load.py at `rate`, in a process of its own (its docstring says why)."""
    import json
    import sys

    output = subprocess.run([sys.executable, "-m", "bentos.load", url, path, str(bodies), str(rate), str(seconds)],
                            capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    summary = json.loads(output.strip().splitlines()[-1])
    return LoadSummary(**{**summary, "statuses": {int(k): v for k, v in summary["statuses"].items()}})


def sequential(client, url: str, payloads: list[dict]) -> tuple[list[float], int]:
    """One client, one request at a time: (latencies in seconds, answers other than 200)."""
    latencies, errors = [], 0
    for payload in payloads:
        started = time.perf_counter()
        response = client.post(url, json=payload)
        latencies.append(time.perf_counter() - started)
        errors += response.status_code != 200
    return latencies, errors


def worker_processes(server) -> list:
    import psutil

    return [p for p in psutil.Process(server.process.pid).children(recursive=True)
            if "_bentoml_impl.worker" in " ".join(p.cmdline())]


def cpu_seconds(processes) -> float:
    return sum(p.cpu_times().user + p.cpu_times().system for p in processes)


def rss_mb(processes) -> float:
    return sum(p.memory_info().rss for p in processes) / 2**20


def cpu_per_request_ms(server, url: str, bodies: Path, seconds: float = 5, connections: int = 8) -> float:
    """CPU time the service's workers spend per answered request under closed-loop load (the load generator's own
    CPU excluded)."""
    workers = worker_processes(server)
    before = cpu_seconds(workers)
    run = wrk(url, bodies, connections, seconds)
    return (cpu_seconds(workers) - before) / max(1, sum(run.statuses.values())) * 1000


def soak(server, url: str, bodies: Path, rate: float, seconds: float, every: float = 60) -> list[tuple[float, WrkRun, float]]:
    """Paced load at `rate` for `seconds`, in slices of `every` seconds: (elapsed, the slice's run, workers' RSS MiB)."""
    workers = worker_processes(server)
    samples = [(0.0, None, rss_mb(workers))]
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        run = paced(url, bodies, rate, min(every, seconds - (time.perf_counter() - started)))
        samples.append((time.perf_counter() - started, run, rss_mb(workers)))
        print(f"  soak {samples[-1][0]:5.0f} s: {run.line()}; workers' RSS {samples[-1][2]:.0f} MiB", flush=True)
    return samples


@contextlib.contextmanager
def served_in_a_temporary_store(case, log_model) -> Iterator[tuple[object, Path]]:
    """The model that `log_model(folder)` logs (in an active MLflow run; it returns the ModelInfo) registered in a
    temporary MLflow registry, packaged as the case's bento in a temporary BentoML store, and served with `bentoml
    serve` on a free port for the block: yields (the server, the temporary folder)."""
    import mlflow

    from assets.resources import BentoPackager
    from bentos.server import serving

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        tracking = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ.update(MLFLOW_TRACKING_URI=tracking, MLFLOW_REGISTRY_URI=tracking)
        mlflow.set_tracking_uri(tracking)
        experiment = mlflow.create_experiment("bench", artifact_location=(tmp / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = log_model(tmp)
            version = mlflow.register_model(info.model_uri, case.registered_model).version
        packager = BentoPackager(bentoml_home=str(tmp / "bentoml"), mlflow_tracking_uri=tracking)
        model_tag = packager.run("import-model", "--name", case.registered_model, "--version", str(version),
                                 "--case", case.name)["model_tag"]
        bento = packager.run("build", "--bentofile", case.bento.bentofile, "--model-tag", model_tag,
                             "--packages", *case.bento.packages)["bento_tag"]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env |= {"BENTOML_HOME": str(tmp / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
        with serving(bento, env=env, cwd=tmp, log=tmp / "serve.log") as server:
            yield server, tmp


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"p50 {p(0.50):.2f} ms, p99 {p(0.99):.2f} ms (n={len(ordered)})"


def http_figures(server, folder: Path, path: str, payloads: list[dict], burst_seconds: float, aim: str) -> None:
    """Prints a served endpoint's figures: one client's latency over the payloads (after warming both workers),
    capacity (`wrk`, closed loop), latency at 80% of it (paced), and twice capacity (open loop)."""
    import json

    import httpx

    url = f"{server.url}{path}"
    with httpx.Client(timeout=30) as client:
        for payload in payloads[:50]:
            client.post(url, json=payload)
        latencies, errors = sequential(client, url, payloads)
    print(f"HTTP, one client: {percentiles(latencies)}; non-200: {errors} (aim: {aim})", flush=True)
    body_file = bodies_file([json.dumps(p).encode() for p in payloads], folder)
    rate, runs = capacity(url, body_file, connections=8)
    print(f"capacity {rate:.0f} requests/s (closed loop, 8 connections; runs: "
          f"{', '.join(f'{r.ok_per_second:.0f}' for r in runs)}); workers' CPU "
          f"{cpu_per_request_ms(server, url, body_file, connections=8):.1f} ms a request", flush=True)
    at_80 = paced(url, body_file, 0.8 * rate, 20, connections=32)
    print(f"80% of capacity ({0.8 * rate:.0f} requests/s asked, paced wrk, 32 connections, 20 s): {at_80.line()}")
    burst = overload(server.url, path, body_file, 2 * rate, burst_seconds)
    print(f"twice capacity ({2 * rate:.0f} requests/s, open loop, {burst_seconds:.0f} s): {burst.line()}; connection "
          f"errors {burst.connection_errors}; 503s without Retry-After {burst.rejected_without_retry_after}")


def temporary_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="mlsd-bench-"))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
