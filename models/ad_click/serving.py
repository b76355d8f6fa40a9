"""Serving-time features for ad click: publish snapshots to the online store, assemble request features."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import datetime, timezone

import numpy as np
import polars as pl

from models.ad_click.features import ENTITIES, entity_key, entity_keys, online_features
from models.online_store import OnlineStore, SnapshotInfo

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

NAMESPACE = "ad_click"
FEATURE_VERSION = "ad_click_features_v1"


def snapshot_records(frames: dict[str, pl.DataFrame]) -> Iterator[tuple[str, str, dict]]:
    """(entity, key, record) of every entity of an `online_snapshot`; times become epoch microseconds."""
    for entity, frame in frames.items():
        keys = ENTITIES[entity][0]
        times = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
        frame = frame.with_columns(pl.col(c).dt.epoch("us") for c in times)
        for row in frame.iter_rows(named=True):
            key = entity_key([row.pop(k) for k in keys])
            recent = row.pop("recent_ads", None)
            if recent:
                row["recent_ads"] = {r["ad_id"]: [r["n"], r["last_us"]] for r in recent}
            yield entity, key, {k: v for k, v in row.items() if v is not None}


def publish_snapshot(store: OnlineStore, frames: dict[str, pl.DataFrame], as_of: datetime):
    return store.publish(snapshot_records(frames), FEATURE_VERSION, as_of.isoformat())


def fetch_features(store: OnlineStore, requests: pl.DataFrame, realtime=None) -> tuple[pl.DataFrame, list[str]]:
    """Model features for request rows (user_id, ad_id, ts, position, device), and the fallbacks taken.

    Unknown users get no demographics and no history; unknown ads no attributes and no history: the model
    then scores from the request context alone, and each fallback is reported. With `realtime` (the stream
    consumer's RealtimeAggregates), the user and ad 1-hour counts are the live ones at each request's time
    instead of the snapshot's.
    """
    info = store.current()
    snapshot = info.snapshot_id if info else None
    user_ids = requests["user_id"].unique(maintain_order=True).to_list()
    ad_ids = requests["ad_id"].unique(maintain_order=True).to_list()
    users = dict(zip(user_ids, store.get_in(snapshot, "user", user_ids) if snapshot else [None] * len(user_ids)))
    ads = dict(zip(ad_ids, store.get_in(snapshot, "ad", ad_ids) if snapshot else [None] * len(ad_ids)))
    records: dict[str, list] = {
        "user": [users[u] for u in requests["user_id"]],
        "ad": [ads[a] for a in requests["ad_id"]],
    }
    for entity, keys in entity_keys(requests, users, ads).items():
        records[entity] = store.get_in(snapshot, entity, keys) if snapshot else [None] * len(keys)
    if realtime is not None:
        ts_us = requests["ts"].dt.epoch("us").to_list()
        for entity, column in (("user", "user_id"), ("ad", "ad_id")):
            live = realtime.counts(entity, requests[column].to_list(), ts_us)
            records[entity] = [
                {**(record or {}), f"{entity}_impressions_1h": n, f"{entity}_clicks_1h": c} if record is not None else None
                for record, (n, c) in zip(records[entity], live)
            ]
    fallbacks = []
    if snapshot is None:
        fallbacks.append("online store has no snapshot: every entity uses cold-start defaults")
    fallbacks += [f"unknown user {u}: cold-start defaults (no demographics, no history)" for u in user_ids if users[u] is None]
    fallbacks += [f"unknown ad {a}: no attributes, no history" for a in ad_ids if ads[a] is None]
    return online_features(requests, records), fallbacks


# ---- The serving fast path: one request's design matrix straight from store records -----------------------------

# How each entity's key is found for a (user, candidate ad) row: from the user alone, from the ad and the user's
# segment (the same for every user of that segment), or from both the user and the ad.
_SEGMENT_FIELDS = ("age_bucket", "gender", "country")
_USER_ENTITIES = tuple(e for e, (keys, _) in ENTITIES.items() if keys == ("user_id",))
_AD_ENTITIES = tuple(e for e, (keys, _) in ENTITIES.items() if "user_id" not in keys)
_PAIR_ENTITIES = tuple(e for e, (keys, _) in ENTITIES.items() if "user_id" in keys and keys != ("user_id",))


# What the fast path holds per snapshot, as plain tuples of arrays, strings and numbers: the garbage collector stops
# tracking such a tuple, so the hundreds of thousands a worker holds cost no collection time. (As objects, 20,000
# users' worth made a full collection take 340 ms, and a 10-minute soak slow down; README, "Serving capacity".)
# A record: (counts, fields): its counts as a float64 vector in ENTITIES' window order [impressions_w1, clicks_w1,
# ...], and for the user and the ad the record itself (whose attributes the features read), else None.
_Record = tuple
COUNTS, FIELDS = 0, 1
# An ad's row for users of one segment: (known, counts of every ad-side entity concatenated, category, created_us).
_AdRow = tuple
ROW_KNOWN, ROW_COUNTS, ROW_CATEGORY, ROW_CREATED = 0, 1, 2, 3


class RequestFeatures:
    """The model's design matrix for one ranking request (one user, many candidate ads), from the online store.

    It computes what `encoder.transform(fetch_features(...)[0])` computes, row for row and bit for bit (tested),
    without polars frames per request. A snapshot's records never change, so while a snapshot is current each
    record read is kept, parsed into a vector, and each (segment, ad) pair's vector of ad-side counts (the ad, its
    advertiser, the segment's interest in its category) is kept too: a request then stacks prepared vectors.
    `online_features` stays the one definition of the features (the parity tests hold it to the offline
    point-in-time features); this class is its serving form. Per request the store sees one `current()` read and
    at most two reads of the records not yet held (one round trip each, `OnlineStore.get_many`).
    """

    def __init__(self, store: OnlineStore, vocabularies: dict[str, list[str]], realtime=None,
                 max_records: int = 500_000) -> None:
        from models.ad_click.features import AGGREGATE_FEATURES, FEATURE_COLUMNS

        self.store, self.realtime, self.max_records = store, realtime, max_records
        self.codes = {c: {v: float(i) for i, v in enumerate(values)} for c, values in vocabularies.items()}
        column = {c: i for i, c in enumerate(FEATURE_COLUMNS)}
        self.column, self.width = column, len(FEATURE_COLUMNS)

        def count_columns(entities):
            return np.array([column[f"{e}_{stat}_{w}"] for e in entities for w in ENTITIES[e][1]
                             for stat in ("impressions", "clicks")], dtype=np.intp)

        self.user_columns = count_columns(_USER_ENTITIES)
        self.ad_columns = count_columns(_AD_ENTITIES)
        self.pair_columns = count_columns(_PAIR_ENTITIES)
        windows = [(e, w) for e, (_, ws) in ENTITIES.items() for w in ws]
        self.impressions = np.array([column[f"{e}_impressions_{w}"] for e, w in windows], dtype=np.intp)
        self.clicks = np.array([column[f"{e}_clicks_{w}"] for e, w in windows], dtype=np.intp)
        self.ctr = np.array([column[f"{e}_ctr_{w}"] for e, w in windows], dtype=np.intp)
        counted = {*self.user_columns, *self.ad_columns, *self.pair_columns, *self.ctr}
        assert counted == {column[c] for c in AGGREGATE_FEATURES}, "every aggregate has one source"
        self.live = {e: (column[f"{e}_impressions_1h"], column[f"{e}_clicks_1h"]) for e in ("user", "ad")}
        self._snapshot: str | None = None
        self._records: dict[tuple[str, str], _Record | None] = {}
        self._ad_rows: dict[tuple, _AdRow] = {}

    def matrix(self, user_id: str, ad_ids: list[str], ts: datetime, position: int, device: str
               ) -> tuple[np.ndarray, list[str], SnapshotInfo | None]:
        """(float32 design matrix, one row per ad, in FEATURE_COLUMNS order; fallbacks taken; snapshot used)."""
        from models.ad_click.features import PRIOR_CTR, PRIOR_STRENGTH, age_bucket

        info = self.store.current()
        snapshot = info.snapshot_id if info else None
        if snapshot != self._snapshot or len(self._records) + len(self._ad_rows) > self.max_records:
            self._records.clear()
            self._ad_rows.clear()
            self._snapshot = snapshot
        user = self._fetch({"user": [user_id]})[("user", user_id)]
        fields = user[FIELDS] if user else {}
        segment = {"age_bucket": age_bucket(fields.get("age")), "gender": fields.get("gender"),
                   "country": fields.get("country")}
        rows = self._rows(ad_ids, segment)
        pairs = self._pair_counts(user_id, [row[ROW_CATEGORY] for row in rows])

        n = len(ad_ids)
        x = np.full((n, self.width), np.nan, dtype=np.float64)
        x[:, self.user_columns] = user[COUNTS] if user else 0.0
        x[:, self.ad_columns] = np.array([row[ROW_COUNTS] for row in rows])
        x[:, self.pair_columns] = np.array([pairs[row[ROW_CATEGORY]] for row in rows])
        ts_us = _epoch_us(ts)
        if self.realtime is not None:
            self._live_counts(x, user_id, user, ad_ids, rows, ts_us)
        # As features.ctr: float64 arithmetic, then float32.
        x[:, self.ctr] = ((x[:, self.clicks] + PRIOR_STRENGTH * PRIOR_CTR) / (x[:, self.impressions] + PRIOR_STRENGTH)
                          ).astype(np.float32)

        c = self.column
        x[:, c["device"]] = self._code("device", device)
        x[:, c["gender"]] = self._code("gender", fields.get("gender"))
        x[:, c["country"]] = self._code("country", fields.get("country"))
        x[:, c["category"]] = [self._code("category", row[ROW_CATEGORY]) for row in rows]
        x[:, c["position"]] = position
        x[:, c["hour_of_day"]] = ts.hour
        x[:, c["day_of_week"]] = ts.isoweekday()
        x[:, c["age"]] = _or_nan(fields.get("age"))
        x[:, c["user_tenure_days"]] = _days_since(ts_us, fields.get("signup_ts"))
        x[:, c["ad_age_days"]] = [_days_since(ts_us, row[ROW_CREATED]) for row in rows]
        recent = fields.get("recent_ads") or {}
        seen = [recent.get(a) for a in ad_ids]
        x[:, c["user_ad_impressions_7d"]] = [s[0] if s else 0 for s in seen]
        x[:, c["seconds_since_user_saw_ad"]] = [
            np.float32((ts_us - s[1]) / 1e6) if s and s[1] is not None else np.nan for s in seen
        ]

        fallbacks = []
        if snapshot is None:
            fallbacks.append("online store has no snapshot: every entity uses cold-start defaults")
        if user is None:
            fallbacks.append(f"unknown user {user_id}: cold-start defaults (no demographics, no history)")
        fallbacks += [f"unknown ad {a}: no attributes, no history"
                      for a in dict.fromkeys(a for a, row in zip(ad_ids, rows) if not row[ROW_KNOWN])]
        return x.astype(np.float32), fallbacks, info

    def advertisers(self, ad_ids: list[str]) -> list[str | None]:
        """Each ad's advertiser, from the ad records the last `matrix` call held (a network embeds it)."""
        return [_ad_fields(self._records.get(("ad", a)))["advertiser_id"] for a in ad_ids]

    def _rows(self, ad_ids: list[str], segment: dict) -> list[_AdRow]:
        """Each ad's prepared row for this segment, building the missing ones with one read of their records."""
        key = tuple(segment[f] for f in _SEGMENT_FIELDS)
        missing = [a for a in dict.fromkeys(ad_ids) if (key, a) not in self._ad_rows]
        if missing:
            ads = self._fetch({"ad": missing})
            parts = {a: {**segment, "ad_id": a, **_ad_fields(ads[("ad", a)])} for a in missing}
            derived = {e: [_entity_key(e, parts[a]) for a in missing] for e in _AD_ENTITIES if e != "ad"}
            records = self._fetch(derived)
            for a in missing:
                ad = ads[("ad", a)]
                counts = np.concatenate([
                    _counts(ad if e == "ad" else records.get((e, _entity_key(e, parts[a]))), e) for e in _AD_ENTITIES
                ])
                fields = ad[FIELDS] if ad else {}
                self._ad_rows[(key, a)] = (ad is not None, counts, fields.get("category"), fields.get("created_ts"))
        return [self._ad_rows[(key, a)] for a in ad_ids]

    def _pair_counts(self, user_id: str, categories: list[str | None]) -> dict[str | None, np.ndarray]:
        """The user-and-ad entities' counts (the user's history in a category) for each category among the ads."""
        keys = {c: {e: _entity_key(e, {"user_id": user_id, "category": c}) for e in _PAIR_ENTITIES}
                for c in dict.fromkeys(categories)}
        records = self._fetch({e: [k[e] for k in keys.values()] for e in _PAIR_ENTITIES})
        return {c: np.concatenate([_counts(records.get((e, k[e])), e) for e in _PAIR_ENTITIES]) for c, k in keys.items()}

    def _fetch(self, wanted: dict[str, list[str | None]]) -> dict[tuple[str, str], _Record | None]:
        """Prepared records of (entity, key), reading from the store only those not held for this snapshot."""
        missing = {e: list(dict.fromkeys(k for k in keys if k is not None and (e, k) not in self._records))
                   for e, keys in wanted.items()}
        missing = {e: keys for e, keys in missing.items() if keys}
        if missing:
            if self._snapshot is None:
                read = {e: [None] * len(keys) for e, keys in missing.items()}
            else:
                read = self.store.get_many(self._snapshot, missing)
            for entity, keys in missing.items():
                for key, record in zip(keys, read[entity]):
                    self._records[(entity, key)] = _prepare(entity, record)
        return {(e, k): self._records.get((e, k)) for e, keys in wanted.items() for k in keys if k is not None}

    def _code(self, column: str, value: str | None) -> float:
        return self.codes[column].get(value, np.nan) if value is not None else np.nan

    def _live_counts(self, x, user_id, user, ad_ids, rows, ts_us) -> None:
        """The stream's 1-hour counts in place of the snapshot's, for the entities the snapshot knows."""
        live_user = self.realtime.counts("user", [user_id], [ts_us])[0]
        live_ads = self.realtime.counts("ad", ad_ids, [ts_us] * len(ad_ids))
        if user is not None:
            x[:, self.live["user"]] = live_user
        impressions, clicks = self.live["ad"]
        for i, (row, (n, k)) in enumerate(zip(rows, live_ads)):
            if row[ROW_KNOWN]:
                x[i, impressions], x[i, clicks] = n, k


def _prepare(entity: str, record: dict | None) -> _Record | None:
    if record is None:
        return None
    windows = ENTITIES[entity][1]
    counts = np.array([record.get(f"{entity}_{stat}_{w}") or 0 for w in windows for stat in ("impressions", "clicks")],
                      dtype=np.float64)
    if entity == "user" and record.get("recent_ads"):  # [n, last] lists as tuples: no tracked object inside
        record = {**record, "recent_ads": {ad: tuple(seen) for ad, seen in record["recent_ads"].items()}}
    return counts, record if entity in ("user", "ad") else None


def _counts(record: _Record | None, entity: str) -> np.ndarray:
    return record[COUNTS] if record is not None else _zeros(entity)


@functools.cache
def _zeros(entity: str) -> np.ndarray:
    return np.zeros(2 * len(ENTITIES[entity][1]))


def _ad_fields(ad: _Record | None) -> dict:
    fields = ad[FIELDS] if ad else {}
    return {"advertiser_id": fields.get("advertiser_id"), "category": fields.get("category")}


def _entity_key(entity: str, values: dict) -> str | None:
    parts = [values[k] for k in ENTITIES[entity][0]]
    return None if any(p is None for p in parts) else entity_key(parts)


def _epoch_us(ts: datetime) -> int:
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _days_since(now_us: int, then_us: int | None) -> float:
    """As polars' (now - then).dt.total_seconds() / 86_400 in float32: whole seconds, truncated toward zero."""
    if then_us is None:
        return np.nan
    micros = now_us - then_us
    seconds = abs(micros) // 1_000_000 * (1 if micros >= 0 else -1)
    return float(np.float32(seconds / 86_400))


def _or_nan(value) -> float:
    return np.nan if value is None else float(value)
