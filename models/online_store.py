"""The online feature store: the latest feature records per entity, read at serving time.

Two backends behind one interface: an embedded SQLite file (no server; the default) and Redis (production).
A snapshot is published blue/green: its records are written under a new snapshot id, then one pointer
switches to it, so a reader sees the old snapshot or the new one, never a mix; older snapshots are deleted.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse


@dataclass(frozen=True)
class SnapshotInfo:
    snapshot_id: str
    feature_version: str
    as_of: str  # ISO time the aggregates were computed for
    records: int


class OnlineStore(ABC):
    """Records are JSON-able dicts keyed by (entity, key), inside a namespace such as 'ad_click'."""

    def __init__(self, namespace: str):
        self.namespace = namespace

    def publish(self, records: Iterable[tuple[str, str, dict]], feature_version: str, as_of: str) -> SnapshotInfo:
        snapshot_id = uuid.uuid4().hex[:12]
        count = self._write(snapshot_id, records)
        info = SnapshotInfo(snapshot_id, feature_version, as_of, count)
        previous = self._switch(info)
        if previous and previous != snapshot_id:
            self._drop(previous)
        return info

    def get(self, entity: str, keys: Sequence[str | None]) -> list[dict | None]:
        """Records of the current snapshot, in the order of `keys` (None for a missing or None key)."""
        info = self.current()
        if info is None:
            return [None] * len(keys)
        return self.get_in(info.snapshot_id, entity, keys)

    def get_many(self, snapshot_id: str, wanted: dict[str, Sequence[str]]) -> dict[str, list[dict | None]]:
        """Records of several entities in one round trip where the backend allows: {entity: records of keys}."""
        return {entity: self.get_in(snapshot_id, entity, keys) for entity, keys in wanted.items()}

    @abstractmethod
    def current(self) -> SnapshotInfo | None: ...

    @abstractmethod
    def get_in(self, snapshot_id: str, entity: str, keys: Sequence[str | None]) -> list[dict | None]: ...

    @abstractmethod
    def _write(self, snapshot_id: str, records: Iterable[tuple[str, str, dict]]) -> int: ...

    @abstractmethod
    def _switch(self, info: SnapshotInfo) -> str | None: ...

    @abstractmethod
    def _drop(self, snapshot_id: str) -> None: ...

    def close(self) -> None:
        """Release connections."""


class SqliteOnlineStore(OnlineStore):
    def __init__(self, path: str | Path, namespace: str):
        super().__init__(namespace)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connection() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS records (namespace TEXT, snapshot TEXT, entity TEXT, key TEXT, value TEXT,"
                " PRIMARY KEY (namespace, snapshot, entity, key)) WITHOUT ROWID"
            )
            db.execute("CREATE TABLE IF NOT EXISTS snapshots (namespace TEXT PRIMARY KEY, info TEXT)")

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread: serving threads read concurrently, WAL lets them while a publish writes.
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._local.connection = connection
        return connection

    def current(self) -> SnapshotInfo | None:
        row = self._connection().execute("SELECT info FROM snapshots WHERE namespace = ?", (self.namespace,)).fetchone()
        return SnapshotInfo(**json.loads(row[0])) if row else None

    def get_in(self, snapshot_id, entity, keys):
        wanted = sorted({k for k in keys if k is not None})
        found: dict[str, dict] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._connection().execute(
                f"SELECT key, value FROM records WHERE namespace = ? AND snapshot = ? AND entity = ?"
                f" AND key IN ({','.join('?' * len(chunk))})",
                (self.namespace, snapshot_id, entity, *chunk),
            )
            found.update((k, json.loads(v)) for k, v in rows)
        return [found.get(k) if k is not None else None for k in keys]

    def _write(self, snapshot_id, records):
        db = self._connection()
        count = 0
        db.execute("BEGIN")
        try:
            batch = []
            for entity, key, value in records:
                batch.append((self.namespace, snapshot_id, entity, key, json.dumps(value)))
                if len(batch) >= 10_000:
                    db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", batch)
                    count += len(batch)
                    batch = []
            db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", batch)
            count += len(batch)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return count

    def _switch(self, info):
        db = self._connection()
        previous = self.current()
        db.execute(
            "INSERT INTO snapshots VALUES (?, ?) ON CONFLICT(namespace) DO UPDATE SET info = excluded.info",
            (self.namespace, json.dumps(info.__dict__)),
        )
        return previous.snapshot_id if previous else None

    def _drop(self, snapshot_id):
        self._connection().execute("DELETE FROM records WHERE namespace = ? AND snapshot = ?", (self.namespace, snapshot_id))

    def close(self):
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


class RedisOnlineStore(OnlineStore):
    """Keys `<namespace>:<snapshot>:<entity>:<key>` hold JSON; `<namespace>:current` points at the snapshot."""

    def __init__(self, url: str, namespace: str):
        super().__init__(namespace)
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def _key(self, snapshot_id: str, entity: str, key: str) -> str:
        return f"{self.namespace}:{snapshot_id}:{entity}:{key}"

    def current(self) -> SnapshotInfo | None:
        raw = self.client.get(f"{self.namespace}:current")
        return SnapshotInfo(**json.loads(raw)) if raw else None

    def get_in(self, snapshot_id, entity, keys):
        present = [k for k in keys if k is not None]
        values = dict(zip(present, self.client.mget([self._key(snapshot_id, entity, k) for k in present]))) if present else {}
        return [json.loads(values[k]) if k is not None and values.get(k) else None for k in keys]

    def get_many(self, snapshot_id, wanted):
        pairs = [(entity, key) for entity, keys in wanted.items() for key in keys if key is not None]
        raw = self.client.mget([self._key(snapshot_id, e, k) for e, k in pairs]) if pairs else []
        found = {pair: json.loads(value) for pair, value in zip(pairs, raw) if value}
        return {entity: [found.get((entity, k)) for k in keys] for entity, keys in wanted.items()}

    def _write(self, snapshot_id, records):
        count = 0
        pipe = self.client.pipeline(transaction=False)
        for entity, key, value in records:
            pipe.set(self._key(snapshot_id, entity, key), json.dumps(value))
            count += 1
            if count % 5_000 == 0:
                pipe.execute()
        pipe.execute()
        return count

    def _switch(self, info):
        previous = self.client.getset(f"{self.namespace}:current", json.dumps(info.__dict__))
        return json.loads(previous)["snapshot_id"] if previous else None

    def _drop(self, snapshot_id):
        batch = []
        prefix = re.sub(r"([*?\[\]\\])", r"\\\1", f"{self.namespace}:{snapshot_id}:")  # SCAN MATCH is a glob
        for key in self.client.scan_iter(match=prefix + "*", count=5_000):
            batch.append(key)
            if len(batch) >= 5_000:
                self.client.unlink(*batch)
                batch = []
        if batch:
            self.client.unlink(*batch)

    def close(self):
        self.client.close()


def open_store(url: str, namespace: str) -> OnlineStore:
    """`sqlite:///path/to/file.db` (embedded) or `redis://host:port/db`."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = url.removeprefix("sqlite:///")  # sqlite:////abs/file.db is /abs/file.db, as in SQLAlchemy
        if not path or path == url:
            raise ValueError(f"online store URL {url!r}: expected sqlite:///<path to file>")
        return SqliteOnlineStore(path, namespace)
    if parsed.scheme in ("redis", "rediss", "unix"):
        return RedisOnlineStore(url, namespace)
    raise ValueError(f"online store URL {url!r}: use sqlite:///<file> or redis://<host>:<port>/<db>")
