"""Serve a bento on a free loopback port for as long as a `with` block lasts (tests and benchmarks), and a throwaway
Redis beside it (`local_redis`).

`bentoml serve` runs in its own process group: it is stopped with SIGINT (clean), then SIGKILL after 30 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class ServedBento:
    url: str
    port: int
    process: subprocess.Popen

    def interrupt(self) -> None:
        """SIGINT without waiting, so that several servers shut down at once; `stop` then waits."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.interrupt()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


@contextlib.contextmanager
def serving(bento: str, env: dict[str, str], cwd: Path | None = None, log: Path | None = None,
            ready_within: float = 120) -> Iterator[ServedBento]:
    import httpx

    port = free_port()
    output = open(log, "w") if log else subprocess.DEVNULL
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "bentoml"), "serve", bento, "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
    )
    served = ServedBento(f"http://127.0.0.1:{port}", port, process)
    try:
        deadline = time.monotonic() + ready_within
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{served.url}/readyz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                detail = Path(log).read_text()[-3000:] if log else "(no log)"
                raise RuntimeError(f"bentoml serve {bento} did not become ready:\n{detail}")
            time.sleep(0.3)
        yield served
    finally:
        served.stop()
        if log:
            output.close()


@contextlib.contextmanager
def local_redis(folder: Path, timeout: float = 20) -> Iterator[str]:
    """A throwaway redis-server (Debian's) on a free loopback port, with no persistence, for a `with` block: yields
    its URL. The tests' Redis and the benchmarks' stream use it."""
    import shutil

    import redis

    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is not installed: `./dev.sh setup` installs it (Debian package redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=timeout)
