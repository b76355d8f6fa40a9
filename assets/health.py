"""Whether a server answers: one probe per kind, raising when it does not. The stack waits on them while starting
a server; the resources run them when a run starts, to fail it at once with a clear message."""

from __future__ import annotations

import urllib.request


def http_ok(url: str, timeout: float = 5) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        if response.status != 200:
            raise ConnectionError(f"{url} answered {response.status}")


def mlflow_server(uri: str, timeout: float = 5) -> None:
    http_ok(f"{uri.rstrip('/')}/health", timeout)


def redis_server(url: str, timeout: float = 5) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def answers(probe, *args, **kwargs) -> bool:
    try:
        probe(*args, **kwargs)
    except Exception:  # noqa: BLE001 - any failure to answer means "not yet"
        return False
    return True
