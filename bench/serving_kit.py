"""Measurements every online service's benchmark shares: capacity with `wrk`, latency at a share of capacity,
overload at twice capacity, a soak, and the workers' CPU and memory.

`wrk` (Debian's package; `./dev.sh setup` installs it when root) is the closed-loop and paced load: compiled, it
takes little of the two cores it shares with the service. The overload burst uses bentos/load.py's open loop, which
records each answer's status, latency and Retry-After.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import tempfile
import time
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


def temporary_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="mlsd-bench-"))


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
