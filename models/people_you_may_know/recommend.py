"""What a champion is, and the batch it runs: for every active member, the top people from friends of friends,
scored by the edge model; members without a connection get people who share their school, company or city.

A `Recommender` is the registered model: the edge model, the standardizer of attributes and the vocabulary the model
was trained with (codes must mean the same at training and at batch time), and the candidate cap. Saved as one folder.
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from models.people_you_may_know.evaluation import top_k
from models.people_you_may_know.graph import (
    Snapshot,
    attribute_groups,
    candidates,
    chunk_size,
    chunks,
    complete_users,
    shared_attribute_suggestions,
)
from models.people_you_may_know.ranker import EdgeModel
from models.people_you_may_know.standardize import ATTRIBUTES, Standardizer

FRIENDS_OF_FRIENDS = "friends of friends"
SHARED_ATTRIBUTES = "shared school, company or city"
SUGGESTION_SCHEMA = {"user_id": pl.String, "rank": pl.Int64, "suggested_id": pl.String, "score": pl.Float64,
                     "mutual_friends": pl.Int64, "shared_attributes": pl.Int64, "source": pl.String}


@dataclass
class Recommender:
    model: EdgeModel
    standardizer: Standardizer
    vocabulary: dict[str, list[str]]
    candidate_cap: int = 200

    def snapshot(self, users: pl.DataFrame, connections: pl.DataFrame, requests: pl.DataFrame,
                 profile_views: pl.DataFrame, as_of: datetime) -> Snapshot:
        return Snapshot.build(self.standardizer.apply(users), connections, requests, profile_views, as_of, self.vocabulary)

    def codes(self, attributes: dict[str, str | None]) -> np.ndarray:
        """A new member's attribute codes from how they wrote them (unknown or missing: 0)."""
        found = []
        for attribute in ATTRIBUTES:
            canonical = self.standardizer.lookup(attribute, attributes.get(attribute))
            vocabulary = self.vocabulary.get(attribute, [])
            found.append(vocabulary.index(canonical) + 1 if canonical in vocabulary else 0)
        return np.asarray(found, dtype=np.int64)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "edge_model.bin").write_bytes(self.model.to_bytes())
        (folder / "standardizer.json").write_text(self.standardizer.to_json())
        (folder / "recommender.json").write_text(json.dumps({"kind": self.model.kind, "vocabulary": self.vocabulary,
                                                             "candidate_cap": self.candidate_cap}))

    @classmethod
    def load(cls, folder: Path) -> Recommender:
        meta = json.loads((folder / "recommender.json").read_text())
        return cls(EdgeModel.from_bytes(meta["kind"], (folder / "edge_model.bin").read_bytes()),
                   Standardizer.from_json((folder / "standardizer.json").read_text()), meta["vocabulary"],
                   meta["candidate_cap"])


def active_members(snapshot: Snapshot, connections: pl.DataFrame, requests: pl.DataFrame, profile_views: pl.DataFrame,
                   users: pl.DataFrame, days: int) -> np.ndarray:
    """Members who connected, sent or answered a request, viewed a profile or signed up in the `days` before the
    snapshot (indices)."""
    since = snapshot.as_of - timedelta(days=days)
    users = complete_users(users)
    recent = lambda frame: frame.filter((pl.col("ts") >= since) & (pl.col("ts") < snapshot.as_of))
    ids = pl.concat([
        recent(connections).select(pl.col("user_a").alias("id")), recent(connections).select(pl.col("user_b").alias("id")),
        recent(requests).select(pl.col("from_user").alias("id")), recent(requests).select(pl.col("to_user").alias("id")),
        recent(profile_views).select(pl.col("viewer").alias("id")),
        users.filter(pl.col("signup_ts") >= since, pl.col("signup_ts") < snapshot.as_of).select(pl.col("user_id").alias("id")),
    ])["id"].unique().to_list()
    return np.array(sorted(snapshot.index[i] for i in ids if i in snapshot.index), dtype=np.int64)


@dataclass
class BatchStats:
    seconds: dict[str, float] = field(default_factory=dict)
    members: int = 0
    cold_members: int = 0
    candidate_pairs: int = 0
    peak_rss_mb: float = 0.0

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds


def recommend(recommender: Recommender, snapshot: Snapshot, members: np.ndarray, k: int = 20,
              progress=None) -> tuple[pl.DataFrame, BatchStats]:
    """The top k per member: friends of friends scored by the edge model, members without a friend of a friend (or
    with fewer than k) filled from shared attributes. One row per suggestion (SUGGESTION_SCHEMA)."""
    stats = BatchStats(members=len(members))
    degree = snapshot.degree
    groups = attribute_groups(snapshot)
    rows: dict[str, list] = {name: [] for name in SUGGESTION_SCHEMA}
    done = 0
    for chunk in chunks(members, chunk_size(snapshot)):
        started = time.perf_counter()
        pairs = candidates(snapshot, chunk[degree[chunk] > 0], recommender.candidate_cap)
        stats.add("candidates and features", time.perf_counter() - started)
        stats.candidate_pairs += len(pairs["u"])
        started = time.perf_counter()
        scores = recommender.model.score(snapshot, pairs)
        stats.add("scoring", time.perf_counter() - started)
        started = time.perf_counter()
        best = top_k(pairs["u"], scores, k)
        by_member: dict[int, list] = {}
        for i in best:
            by_member.setdefault(int(pairs["u"][i]), []).append(
                (int(pairs["v"][i]), float(scores[i]), int(pairs["mutual_friends"][i]), FRIENDS_OF_FRIENDS))
        for member in chunk.tolist():
            found = by_member.get(member, [])
            if len(found) < k:
                if not found:
                    stats.cold_members += 1
                taken = {v for v, *_ in found}
                extra = [(v, s, 0, SHARED_ATTRIBUTES) for v, s, _ in
                         shared_attribute_suggestions(snapshot, member, k + len(found) + int(degree[member]), groups)
                         if v not in taken and v != member and not snapshot.adjacency[member, v]]
                found = found + extra[: k - len(found)]
            shared_counts = ((snapshot.categories[[v for v, *_ in found]] == snapshot.categories[member][None, :])
                             & (snapshot.categories[member][None, :] > 0))[:, :3].sum(axis=1) if found else []
            for rank, ((v, score, mutual, source), shared) in enumerate(zip(found, shared_counts), 1):
                rows["user_id"].append(snapshot.ids[member])
                rows["rank"].append(rank)
                rows["suggested_id"].append(snapshot.ids[v])
                rows["score"].append(score)
                rows["mutual_friends"].append(mutual)
                rows["shared_attributes"].append(int(shared))
                rows["source"].append(source)
        stats.add("ranking", time.perf_counter() - started)
        done += len(chunk)
        if progress is not None:
            progress(f"suggestions: {done}/{len(members)} members, {stats.candidate_pairs} candidate pairs scored")
    stats.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return pl.DataFrame(rows, schema=SUGGESTION_SCHEMA), stats


def group_records(snapshot: Snapshot, vocabulary: dict[str, list[str]], per_group: int = 50):
    """For new members the batch has never seen: per attribute value, its best-connected members (the service ranks
    the union of a newcomer's groups)."""
    degree = snapshot.degree
    for j, attribute in enumerate(ATTRIBUTES[:3]):
        for code, members in attribute_groups(snapshot)[j].items():
            best = members[np.argsort(-degree[members], kind="stable")[:per_group]]
            yield "group", f"{attribute}:{vocabulary[attribute][code - 1]}", {
                "members": [[str(snapshot.ids[m]), int(degree[m])] for m in best]}
