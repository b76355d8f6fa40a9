"""Re-ranking rules applied to the ranker's ordered list, as code: each is a documented, tested constraint.

In order: drop videos the user has seen; drop near-duplicates of a video already picked (re-uploads: the same
normalized title, or an embedding cosine above a threshold); at most `max_per_channel` videos of one channel; at most `max_per_topic` of
one primary tag (the diversity rule). When the constraints leave fewer than k, the best videos they held back
fill the list (never seen ones or duplicates).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class RerankRules:
    duplicate_similarity: float = 0.97
    max_per_channel: int = 2
    max_per_topic: int = 4


class Candidate(NamedTuple):  # a tuple: a batch builds hundreds of thousands of them
    video_id: str
    score: float
    channel: str | None
    topic: str | None  # the primary tag
    embedding: np.ndarray
    title_key: str | None = None  # normalized title: equal keys are the same content


def rerank(candidates: Sequence[Candidate], seen: set[str], k: int, rules: RerankRules = RerankRules(),
           embeddings: np.ndarray | None = None) -> list[Candidate]:
    """`candidates` in the ranker's order (best first); returns at most k. `embeddings` (one row per candidate), when
    given, saves stacking them: the candidates are then read only up to where the list fills, so a lazy sequence
    builds only those."""
    picked: list[Candidate] = []
    held_back: list[int] = []
    channels: Counter = Counter()
    topics: Counter = Counter()
    # Each pick marks the candidates it duplicates (one matrix-vector product a pick), so testing a candidate is a
    # lookup: re-stacking the picked embeddings for every candidate cost 34 ms a user for 100 of 270.
    if embeddings is None and len(candidates):
        embeddings = np.stack([c.embedding for c in candidates])
    duplicate = np.zeros(len(candidates), dtype=bool)
    titles: set[str] = set()

    def pick(i: int) -> None:
        candidate = candidates[i]
        picked.append(candidate)
        np.logical_or(duplicate, embeddings @ candidate.embedding >= rules.duplicate_similarity, out=duplicate)
        if candidate.title_key is not None:
            titles.add(candidate.title_key)

    def is_duplicate(i: int) -> bool:
        return bool(duplicate[i]) or (candidates[i].title_key is not None and candidates[i].title_key in titles)

    for i, candidate in enumerate(candidates):
        if len(picked) == k:
            break
        if candidate.video_id in seen or is_duplicate(i):
            continue
        if (candidate.channel is not None and channels[candidate.channel] >= rules.max_per_channel) or (
            candidate.topic is not None and topics[candidate.topic] >= rules.max_per_topic
        ):
            held_back.append(i)
            continue
        pick(i)
        channels[candidate.channel] += 1
        topics[candidate.topic] += 1
    for i in held_back:
        if len(picked) == k:
            break
        if not is_duplicate(i):
            pick(i)
    return picked


def duplicate_threshold(embeddings: np.ndarray, floor: float, quantile: float = 0.99, sample: int = 1_000) -> float:
    """The similarity at which two catalogue videos count as the same content: `floor` (the rule's threshold), or
    the catalogue's `quantile` of pairwise similarity when that is higher (a near-duplicate is also among the most
    similar 1% of pairs). A well-trained space is spread out and the rule stands as written (the default
    simulation's 99th percentile: 0.947); an undertrained one is crowded (a six-epoch model on a small world: more
    than half its pairs above 0.97), and the fixed rule would then drop nearly every candidate."""
    if len(embeddings) < 2:
        return floor
    rows = embeddings[np.random.default_rng(0).permutation(len(embeddings))[:sample]]
    similarity = rows @ rows.T
    pairs = similarity[np.triu_indices(len(rows), 1)]
    return max(floor, float(np.quantile(pairs, quantile)))


def title_key(title: str | None) -> str | None:
    """Lower case, single spaces: how a re-upload under the same title is recognised."""
    return " ".join(title.lower().split()) or None if title else None
