"""What the service does for one feed request, in the book's three stages: retrieval of the unseen recent posts of the
user's friends and followed authors, ranking by the weighted score of the champion's heads on online features, and
re-ranking (filters, then diversity: no two posts of one author in a row, at most a few per author and per topic).

A user the online features do not know, or one with no history yet, gets the chronological feed (newest first) and
the answer says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from models.news_feed.evaluation import DEFAULT_WEIGHTS, weighted_score
from models.news_feed.features import compose, feature_matrix
from models.news_feed.online import decode_vector, serving_aggregates
from models.news_feed.ranker import OUTPUTS, EngagementModel
from models.text_embeddings import DIM


class NoFeatures(RuntimeError):
    """The online store holds no snapshot for this case: publish the online features first."""


@dataclass(frozen=True)
class Diversity:
    max_per_author: int = 2
    max_per_topic: int = 4


@dataclass
class Feed:
    posts: list[dict]
    strategy: str  # personalized, or chronological
    counts: dict[str, int]
    snapshot_as_of: str
    weights: dict[str, float]
    notes: list[str] = field(default_factory=list)


def rerank(order: list[int], authors: list[str], topics: list[str], k: int, diversity: Diversity) -> list[int]:
    """Greedy re-ranking of `order` (indices, best first): each next post is the best one whose author is not the
    previous post's and whose author and topic are under their caps; when none is, the caps are relaxed (topic
    first, then author) rather than a shorter feed served."""
    chosen: list[int] = []
    left = list(order)
    per_author: dict[str, int] = {}
    per_topic: dict[str, int] = {}
    while left and len(chosen) < k:
        previous = authors[chosen[-1]] if chosen else None
        rules = [
            lambda i: authors[i] != previous and per_author.get(authors[i], 0) < diversity.max_per_author
            and per_topic.get(topics[i], 0) < diversity.max_per_topic,
            lambda i: authors[i] != previous and per_author.get(authors[i], 0) < diversity.max_per_author,
            lambda i: authors[i] != previous,
            lambda i: True,
        ]
        for rule in rules:
            pick = next((i for i in left if rule(i)), None)
            if pick is not None:
                break
        left.remove(pick)
        chosen.append(pick)
        per_author[authors[pick]] = per_author.get(authors[pick], 0) + 1
        per_topic[topics[pick]] = per_topic.get(topics[pick], 0) + 1
    return chosen


class FeedRanker:
    """Ranks feeds from the online store's current snapshot. Post and author records are immutable within a snapshot,
    so they are kept in memory once read (a feed reads hundreds, and decoding them is most of a request's time); the
    memory is dropped when a new snapshot is published."""

    def __init__(self, model: EngagementModel, store, candidate_days: int = 3, max_candidates: int = 500,
                 diversity: Diversity = Diversity(), dim: int = DIM):
        self.model, self.store, self.dim = model, store, dim
        self.candidate_days, self.max_candidates, self.diversity = candidate_days, max_candidates, diversity
        self._snapshot_id: str | None = None
        self._cached: dict[str, dict[str, dict | None]] = {}

    def _snapshot(self):
        info = self.store.current()
        if info is None:
            raise NoFeatures("the online store holds no news_feed snapshot: materialize news_feed_online_features")
        return info

    def _records(self, snapshot: str, entity: str, keys: list[str]) -> list[dict | None]:
        """Records of a snapshot's posts and authors, read from the store once per snapshot."""
        if snapshot != self._snapshot_id:
            self._snapshot_id, self._cached = snapshot, {}
        cache = self._cached.setdefault(entity, {})
        missing = list(dict.fromkeys(k for k in keys if k not in cache))
        if missing:
            for key, record in zip(missing, self.store.get_in(snapshot, entity, missing)):
                if record is not None and "vector" in record:
                    record = {**record, "vector": decode_vector(record["vector"], self.dim),
                              "created": datetime.fromisoformat(record["created_ts"]).timestamp()}
                cache[key] = record
        return [cache[k] for k in keys]

    def _posts(self, snapshot: str, ids: list[str]) -> dict[str, dict]:
        return {i: r for i, r in zip(ids, self._records(snapshot, "post", ids)) if r is not None}

    def feed(self, user_id: str, k: int = 10, ts: datetime | None = None, weights: dict[str, float] | None = None,
             device: str | None = None) -> Feed:
        info = self._snapshot()
        ts = ts or datetime.now(timezone.utc)
        weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        (user,) = self.store.get_in(info.snapshot_id, "user", [user_id])
        window_start = ts - timedelta(days=self.candidate_days)
        notes: list[str] = []

        lo, hi = window_start.timestamp(), ts.timestamp()

        def fresh(record: dict) -> bool:
            return lo <= record["created"] <= hi

        if user is None:
            (catalogue,) = self._records(info.snapshot_id, "catalogue", ["recent"])
            newest = (catalogue or {}).get("post_ids", [])  # newest first: read until k fresh ones
            posts = {}
            for start in range(0, len(newest), 4 * k):
                posts.update({i: r for i, r in self._posts(info.snapshot_id, newest[start:start + 4 * k]).items() if fresh(r)})
                if len(posts) >= k:
                    break
            notes.append(f"user_id {user_id!r} is not in the online features (as of {info.as_of}): the platform's newest "
                         "posts, newest first")
            return self._chronological(posts, k, info, weights, {"recent_posts": len(posts)}, notes)
        ties = {a: t for a, t in user.get("ties", {}).items() if datetime.fromisoformat(t[1]) < ts}
        blocked = set(user.get("blocked_authors", []))
        authors = [a for a in ties if a not in blocked]
        records = self._records(info.snapshot_id, "author", authors) if authors else []
        ids = [pid for r in records if r for pid in r.get("recent", [])]
        counts = {"tie_authors": len(ties), "blocked_authors": len(ties) - len(authors), "recent_posts": len(ids)}
        seen = set(user.get("seen", []))
        ids = [i for i in ids if i not in seen]
        counts["unseen"] = len(ids)
        posts = {i: r for i, r in self._posts(info.snapshot_id, ids).items() if fresh(r)}
        counts["in_window"] = len(posts)
        if len(posts) > self.max_candidates:
            newest = sorted(posts, key=lambda i: posts[i]["created_ts"], reverse=True)[: self.max_candidates]
            posts = {i: posts[i] for i in newest}
            notes.append(f"more than {self.max_candidates} candidates: the newest were ranked")
        counts["ranked"] = len(posts)
        if user.get("u_imps", 0) == 0:
            notes.append("no history yet: the chronological feed of the user's friends and followed authors")
            return self._chronological(posts, k, info, weights, counts, notes)
        if not posts:
            return Feed([], "personalized", counts, info.as_of, weights, notes + ["no unseen recent posts from the user's ties"])
        frame = compose(serving_aggregates({**user, "user_id": user_id}, posts, ts, self.dim, position=1, device=device))
        predicted = self.model.predict(feature_matrix(frame))
        scores = weighted_score(predicted, weights)
        order = [int(i) for i in np.argsort(-scores, kind="stable")]
        post_ids = frame["post_id"].to_list()
        authors_of, topics_of = frame["author_id"].to_list(), frame["topic"].fill_null("").to_list()
        chosen = rerank(order, authors_of, topics_of, k, self.diversity)
        out = [self._post(post_ids[i], posts[post_ids[i]], float(scores[i]), {h: float(predicted[h][i]) for h in OUTPUTS})
               for i in chosen]
        return Feed(out, "personalized", counts, info.as_of, weights, notes)

    @staticmethod
    def _post(post_id: str, record: dict, score: float, heads: dict[str, float] | None) -> dict:
        return {"post_id": post_id, "author_id": record["author_id"], "topic": record.get("topic"),
                "media": record.get("media"), "created_ts": record["created_ts"], "score": score, "heads": heads}

    def _chronological(self, posts: dict[str, dict], k: int, info, weights, counts, notes) -> Feed:
        newest = sorted(posts, key=lambda i: (posts[i]["created_ts"], i), reverse=True)[:k]
        out = [self._post(i, posts[i], datetime.fromisoformat(posts[i]["created_ts"]).timestamp(), None) for i in newest]
        return Feed(out, "chronological", counts, info.as_of, weights, notes)
