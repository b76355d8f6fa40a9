"""What the service does for one request: rule-based event filtering over the live events, then ranking the
survivors with the champion on online features (the book's two serving stages).

Filtering keeps events that start more than an hour after the request, went on sale before it, are within the
radius of the user (their home, or the request's location), have capacity left and that the user has not
registered for; if more than `max_candidates` remain, the nearest are ranked. A user the store does not know is
answered from location and popularity (the cold start), and the answer says so.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from models.event_recommendation.features import compose, distance_km, feature_matrix
from models.event_recommendation.online import LiveEvents, serving_aggregates
from models.event_recommendation.ranker import Ranker
from models.text_embeddings import DIM

MIN_LEAD = timedelta(hours=1)
KM_PER_DEGREE = 111.0  # of latitude, and of longitude at the equator (at most: the box errs wide)


class NoFeatures(RuntimeError):
    """The online store holds no snapshot for this case: publish the online features first."""


class NeedLocation(ValueError):
    """An unknown user without a location: there is nothing to filter events by."""


@dataclass
class Recommendation:
    events: list[dict]
    strategy: str  # personalized, or cold_start: location and popularity
    filters: dict[str, int]
    snapshot_as_of: str
    location: str  # home, request
    notes: list[str] = field(default_factory=list)


class Recommender:
    """Holds the live events of the online store's current snapshot in memory. A new snapshot is noticed within
    `refresh_seconds` and loaded in the background while requests go on with the previous live events (loading
    100,000 takes seconds, longer than a request may); users are read from the new snapshot as soon as the old one's
    records are gone."""

    def __init__(self, ranker: Ranker, store, radius_km: float = 80.0, max_candidates: int = 500,
                 refresh_seconds: float = 5.0, live_registrations=None):
        self.ranker, self.store = ranker, store
        # The stream consumer's counts (models/event_recommendation/stream.py), added to the snapshot's when given.
        self.live_registrations = live_registrations
        self.radius_km, self.max_candidates = radius_km, max_candidates
        self.refresh_seconds = refresh_seconds
        self._current: tuple[LiveEvents, str] | None = None
        self._checked = 0.0
        self._loading = threading.Lock()

    def _load(self, info) -> None:
        (catalogue,) = self.store.get_in(info.snapshot_id, "catalogue", ["live"])
        ids = (catalogue or {}).get("event_ids", [])
        records = self.store.get_in(info.snapshot_id, "event", ids)
        live = LiveEvents({i: r for i, r in zip(ids, records) if r is not None}, datetime.fromisoformat(info.as_of), DIM)
        self._current = (live, info.snapshot_id)

    def _load_in_background(self, info) -> None:
        if not self._loading.acquire(blocking=False):
            return  # already loading

        def load():
            try:
                self._load(info)
            finally:
                self._loading.release()

        threading.Thread(target=load, daemon=True).start()

    def live(self) -> tuple[LiveEvents, str]:
        """The live events of the store's current snapshot (the previous one while a new one loads)."""
        now = time.monotonic()
        if self._current is None or now - self._checked >= self.refresh_seconds:
            self._checked = now
            info = self.store.current()
            if info is None:
                raise NoFeatures("the online store holds no event_recommendation snapshot: materialize "
                                 "event_recommendation_online_features")
            if self._current is None:
                with self._loading:
                    if self._current is None:
                        self._load(info)
            elif info.snapshot_id != self._current[1]:
                self._load_in_background(info)
        return self._current

    def recommend(self, user_id: str, k: int = 10, location: tuple[float, float] | None = None,
                  ts: datetime | None = None, radius_km: float | None = None) -> Recommendation:
        live, snapshot = self.live()
        ts = ts or datetime.now(timezone.utc)
        (user,) = self.store.get_in(snapshot, "user", [user_id])
        if user is None:
            # A snapshot published since this worker last looked has replaced the one its live events came from (the
            # store keeps only the newest): read the user from that one while the new live events load.
            info = self.store.current()
            if info is not None and info.snapshot_id != snapshot:
                (user,) = self.store.get_in(info.snapshot_id, "user", [user_id])
                self._load_in_background(info)
        radius = radius_km or self.radius_km
        if user is None and location is None:
            raise NeedLocation(f"user_id: {user_id!r} is not in the online features (as of {live.as_of:%Y-%m-%d %H:%M}); "
                               "send a location to get events near it")
        lat, lon = location if location is not None else (user["u_lat"], user["u_lon"])
        counts = {"live": len(live)}
        when = ts.timestamp()
        keep = (live.start > when + MIN_LEAD.total_seconds()) & (live.created <= when)
        counts["upcoming"] = int(keep.sum())
        # A box around the location first, so the great-circle distance is computed only for what is inside it
        # (a tenth of 100,000 live events, not all of them).
        box = keep & (np.abs(live.lat - lat) <= radius / KM_PER_DEGREE)
        if abs(lat) + radius / KM_PER_DEGREE < 89:
            reach = radius / (KM_PER_DEGREE * np.cos(np.radians(abs(lat) + radius / KM_PER_DEGREE)))
            box &= np.abs((live.lon - lon + 180) % 360 - 180) <= reach
        distance = np.full(len(live), np.inf)
        inside = np.flatnonzero(box)
        distance[inside] = distance_km(lat, lon, live.lat[inside], live.lon[inside])
        keep &= distance <= radius
        counts["within_radius"] = int(keep.sum())
        keep &= live.regs < live.capacity
        counts["capacity_left"] = int(keep.sum())
        registered = [live.position[e] for e in (user or {}).get("registered", []) if e in live.position]
        keep[registered] = False
        counts["not_registered"] = int(keep.sum())
        candidates = np.flatnonzero(keep)
        if len(candidates) > self.max_candidates:
            nearest = np.argpartition(distance[candidates], self.max_candidates - 1)[: self.max_candidates]
            candidates = np.sort(candidates[nearest])
        notes = []
        registrations = live.regs[candidates]
        if self.live_registrations is not None and len(candidates) and ts > live.as_of:
            since = self.live_registrations.counts([str(live.ids[i]) for i in candidates],
                                                   int(live.as_of.timestamp() * 1e6), int(ts.timestamp() * 1e6))
            registrations = registrations + np.asarray(since, dtype=registrations.dtype)
            open_ = registrations < live.capacity[candidates]
            candidates, registrations = candidates[open_], registrations[open_]
            notes.append(f"registrations so far: the snapshot's plus {int(np.sum(since))} from the stream since "
                         f"{live.as_of:%Y-%m-%d %H:%M}; {int((~open_).sum())} events sold out since")
        counts["ranked"] = len(candidates)
        if user is None:
            # Cold start: popular events near the location, nearest first among equals.
            order = np.lexsort((distance[candidates], -registrations))
            chosen = candidates[order[:k]]
            scores = registrations[order[:k]].astype(float)
            notes.append("unknown user: ranked by registrations so far, near the request's location")
            strategy = "cold_start"
        else:
            user = {**user, "user_id": user_id}
            if location is not None:
                user = {**user, "u_lat": lat, "u_lon": lon}
            features = compose(serving_aggregates(user, live, candidates, ts, registrations))
            p = self.ranker.predict(feature_matrix(features)) if len(candidates) else np.zeros(0)
            order = np.argsort(-p, kind="stable")[:k]
            chosen, scores = candidates[order], p[order]
            strategy = "personalized"
        events = [{"event_id": str(live.ids[i]), "score": float(s), "category": live.frame["category"][int(i)],
                   "start_ts": live.frame["start_ts"][int(i)].isoformat(), "distance_km": float(distance[i]),
                   "price": live.frame["price"][int(i)]} for i, s in zip(chosen, scores)]
        return Recommendation(events, strategy, counts, live.as_of.isoformat(),
                              "request" if location is not None else "home", notes)
