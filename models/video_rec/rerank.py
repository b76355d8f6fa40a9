"""Re-ranking rules applied to the ranker's ordered list, as code: each is a documented, tested constraint.

In order: drop videos the user has seen; drop near-duplicates of a video already picked (re-uploads: the same
normalized title, or an embedding cosine above a threshold); at most `max_per_channel` videos of one channel; at most `max_per_topic` of
one primary tag (the diversity rule). When the constraints leave fewer than k, the best videos they held back
fill the list (never seen ones or duplicates).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RerankRules:
    duplicate_similarity: float = 0.97
    max_per_channel: int = 2
    max_per_topic: int = 4


@dataclass(frozen=True)
class Candidate:
    video_id: str
    score: float
    channel: str | None
    topic: str | None  # the primary tag
    embedding: np.ndarray
    title_key: str | None = None  # normalized title: equal keys are the same content


def rerank(candidates: list[Candidate], seen: set[str], k: int, rules: RerankRules = RerankRules()) -> list[Candidate]:
    """`candidates` in the ranker's order (best first); returns at most k."""
    picked: list[Candidate] = []
    held_back: list[Candidate] = []
    channels: Counter = Counter()
    topics: Counter = Counter()
    for candidate in candidates:
        if len(picked) == k:
            break
        if candidate.video_id in seen or _duplicate(candidate, picked, rules.duplicate_similarity):
            continue
        if (candidate.channel is not None and channels[candidate.channel] >= rules.max_per_channel) or (
            candidate.topic is not None and topics[candidate.topic] >= rules.max_per_topic
        ):
            held_back.append(candidate)
            continue
        picked.append(candidate)
        channels[candidate.channel] += 1
        topics[candidate.topic] += 1
    for candidate in held_back:
        if len(picked) == k:
            break
        if not _duplicate(candidate, picked, rules.duplicate_similarity):
            picked.append(candidate)
    return picked


def _duplicate(candidate: Candidate, picked: list[Candidate], threshold: float) -> bool:
    if not picked:
        return False
    if candidate.title_key is not None and any(p.title_key == candidate.title_key for p in picked):
        return True
    similarity = np.stack([p.embedding for p in picked]) @ candidate.embedding
    return bool((similarity >= threshold).any())


def title_key(title: str | None) -> str | None:
    """Lower case, single spaces: how a re-upload under the same title is recognised."""
    return " ".join(title.lower().split()) or None if title else None
