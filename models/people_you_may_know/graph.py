"""The network as of a time, and the pairs worth scoring in it.

A `Snapshot` holds only what happened strictly before its `as_of`: members signed up, connections formed, requests
sent, profiles viewed. Friends of friends are the candidates (the book's cut from every member to a few hundred),
capped per member by mutual-friend count; each candidate pair gets its features from the snapshot alone:

- pair: mutual friends, Adamic-Adar, resource allocation, Jaccard, time-discounted mutual friends (each mutual friend
  counts exp(-age/30 days) for each of the two connections), shared school, company, city and industry (standardized),
  views each way (all and the last 14 days), requests between them ignored (unanswered for 14 days) and pending;
- each member: connections, account age, new connections, requests sent and views given in the last 14 days,
  requests received and answered and the share accepted, views received.

A request's outcome is read from the graph as of the snapshot (accepted: the pair is connected by then), never from
the raw table's `accepted`, which is known only once the member answers.

Work is done in chunks of members so that memory stays flat at any size (bench/pymk_batch.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import scipy.sparse as sp

from models.people_you_may_know.standardize import ATTRIBUTES

RECENT = timedelta(days=14)
RESPONSE_HORIZON = timedelta(days=14)  # a request unanswered this long is taken as ignored
DISCOUNT_DAYS = 30.0
NODE_FEATURES = ("log_connections", "account_age_days", "new_connections_14d", "requests_sent_14d",
                 "requests_received", "acceptance_rate", "views_given_14d", "views_received")
PAIR_FEATURES = ("mutual_friends", "adamic_adar", "resource_allocation", "jaccard", "discounted_mutual", "same_school",
                 "same_company", "same_city", "same_industry", "views_to", "views_from", "recent_views_to",
                 "recent_views_from", "ignored_requests", "pending_requests")
CHUNK = 2_000


def _seconds(column: pl.Series) -> np.ndarray:
    return column.dt.epoch("us").to_numpy() / 1e6


def _matrix(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n: int) -> sp.csr_matrix:
    matrix = sp.csr_matrix((values.astype(np.float32), (rows, cols)), shape=(n, n))
    matrix.sum_duplicates()
    return matrix


def complete_users(users: pl.DataFrame) -> pl.DataFrame:
    """Members with every optional column of the contract (a missing one is all unknown)."""
    missing = [pl.lit(None, dtype=pl.String).alias(a) for a in ATTRIBUTES if a not in users.columns]
    if "signup_ts" not in users.columns:
        missing.append(pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("signup_ts"))
    return users.with_columns(missing) if missing else users


@dataclass
class Snapshot:
    as_of: datetime
    ids: np.ndarray  # member ids by index
    index: dict[str, int]
    adjacency: sp.csr_matrix  # symmetric 0/1
    recency: sp.csr_matrix  # symmetric: exp(-age / DISCOUNT_DAYS) of each connection
    views: sp.csr_matrix  # viewer x viewed: all views
    recent_views: sp.csr_matrix  # ... in the last 14 days
    ignored: sp.csr_matrix  # symmetric: requests either way not accepted within RESPONSE_HORIZON
    pending: sp.csr_matrix  # symmetric: requests either way still unanswered at the snapshot
    node: np.ndarray  # members x NODE_FEATURES
    categories: np.ndarray  # members x ATTRIBUTES: 0 unknown, else 1 + the value's code
    last_event: datetime | None  # the latest event the snapshot read (the leakage audit's)

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def degree(self) -> np.ndarray:
        return np.asarray(self.adjacency.sum(axis=1)).ravel()

    @classmethod
    def build(cls, users: pl.DataFrame, connections: pl.DataFrame, requests: pl.DataFrame, profile_views: pl.DataFrame,
              as_of: datetime, vocabulary: dict[str, list[str]]) -> Snapshot:
        """`users` standardized (canonical ids); `vocabulary` the canonical ids each attribute's codes follow."""
        before = lambda frame: frame.filter(pl.col("ts") < as_of)
        users = complete_users(users)
        members = users.filter(pl.col("signup_ts").is_null() | (pl.col("signup_ts") < as_of)).sort("user_id")
        ids = members["user_id"].to_numpy().astype(object)
        index = {u: i for i, u in enumerate(ids.tolist())}
        n = len(ids)
        now = as_of.timestamp()
        lookup = pl.DataFrame({"id": members["user_id"], "i": pl.int_range(n, dtype=pl.Int64, eager=True)})

        def indexed(frame: pl.DataFrame, a: str, b: str) -> pl.DataFrame:
            return (frame.join(lookup.rename({"id": a, "i": "ia"}), on=a).join(lookup.rename({"id": b, "i": "ib"}), on=b)
                    .filter(pl.col("ia") != pl.col("ib")))

        edges = indexed(before(connections), "user_a", "user_b").with_columns(
            lo=pl.min_horizontal("ia", "ib"), hi=pl.max_horizontal("ia", "ib")).sort("ts").unique(["lo", "hi"], keep="first")
        lo, hi = edges["lo"].to_numpy(), edges["hi"].to_numpy()
        age_days = (now - _seconds(edges["ts"])) / 86_400
        both = lambda x: np.concatenate([x, x])
        adjacency = _matrix(np.concatenate([lo, hi]), np.concatenate([hi, lo]), np.ones(2 * len(lo)), n)
        discount = np.maximum(np.exp(-age_days / DISCOUNT_DAYS), 1e-12)  # never 0: one sparsity pattern for all
        recency = _matrix(np.concatenate([lo, hi]), np.concatenate([hi, lo]), both(discount), n)

        seen = indexed(before(profile_views), "viewer", "viewed")
        recent_seen = seen.filter(pl.col("ts") >= as_of - RECENT)
        views = _matrix(seen["ia"].to_numpy(), seen["ib"].to_numpy(), np.ones(seen.height), n)
        recent_views = _matrix(recent_seen["ia"].to_numpy(), recent_seen["ib"].to_numpy(), np.ones(recent_seen.height), n)
        # A request's outcome is read from the graph as of the snapshot, not from its `accepted` column (which may
        # be filled in after the snapshot's time): accepted when the pair is connected by then, ignored when it is
        # not and the request is older than RESPONSE_HORIZON, pending otherwise.
        asked = indexed(before(requests), "from_user", "to_user").with_columns(
            lo=pl.min_horizontal("ia", "ib"), hi=pl.max_horizontal("ia", "ib"))
        asked = asked.join(edges.select("lo", "hi", connected=pl.lit(True)), on=["lo", "hi"], how="left").with_columns(
            connected=pl.col("connected").fill_null(False))
        asked = asked.with_columns(answered=pl.col("connected") | (pl.col("ts") < as_of - RESPONSE_HORIZON))
        refused = asked.filter(pl.col("answered") & ~pl.col("connected"))
        waiting = asked.filter(~pl.col("answered"))
        symmetric = lambda frame: _matrix(  # noqa: E731
            np.concatenate([frame["ia"].to_numpy(), frame["ib"].to_numpy()]),
            np.concatenate([frame["ib"].to_numpy(), frame["ia"].to_numpy()]), np.ones(2 * frame.height), n)
        ignored, pending = symmetric(refused), symmetric(waiting)

        degree = np.asarray(adjacency.sum(axis=1)).ravel()
        recent_edges = edges.filter(pl.col("ts") >= as_of - RECENT)
        new_connections = np.bincount(np.concatenate([recent_edges["lo"].to_numpy(), recent_edges["hi"].to_numpy()]),
                                      minlength=n)
        recent_asked = asked.filter(pl.col("ts") >= as_of - RECENT)
        answered = asked.filter(pl.col("answered"))
        received = np.bincount(answered["ib"].to_numpy(), minlength=n)
        accepted = np.bincount(answered["ib"].to_numpy(), weights=answered["connected"].cast(pl.Float64).to_numpy(),
                               minlength=n)
        signup = members["signup_ts"]
        account_age = np.where(signup.is_null().to_numpy(), np.nan, (now - np.nan_to_num(_seconds(signup))) / 86_400)
        node = np.column_stack([
            np.log1p(degree), account_age, new_connections, np.bincount(recent_asked["ia"].to_numpy(), minlength=n),
            received, (accepted + 1) / (received + 2), np.asarray(recent_views.sum(axis=1)).ravel(),
            np.asarray(views.sum(axis=0)).ravel(),
        ]).astype(np.float32)
        categories = np.zeros((n, len(ATTRIBUTES)), dtype=np.int64)
        for j, attribute in enumerate(ATTRIBUTES):
            codes = {v: i + 1 for i, v in enumerate(vocabulary.get(attribute, []))}
            if attribute in members.columns:
                categories[:, j] = [codes.get(v, 0) for v in members[attribute].to_list()]
        last = [frame["ts"].max() for frame in (edges, seen, asked) if frame.height]
        return cls(as_of, ids, index, adjacency, recency, views, recent_views, ignored, pending, node, categories,
                   max(last) if last else None)

    def new_edges(self, connections: pl.DataFrame, days: int) -> pl.DataFrame:
        """Connections formed in [as_of, as_of + days) between members of the snapshot who were not connected: the
        labels (lo < hi, indices)."""
        window = connections.filter((pl.col("ts") >= self.as_of) & (pl.col("ts") < self.as_of + timedelta(days=days)))
        lookup = pl.DataFrame({"id": pl.Series(self.ids.tolist(), dtype=pl.String),
                               "i": pl.int_range(self.size, dtype=pl.Int64, eager=True)})
        pairs = (window.join(lookup.rename({"id": "user_a", "i": "ia"}), on="user_a")
                 .join(lookup.rename({"id": "user_b", "i": "ib"}), on="user_b").filter(pl.col("ia") != pl.col("ib"))
                 .select(lo=pl.min_horizontal("ia", "ib"), hi=pl.max_horizontal("ia", "ib"), ts="ts").unique(["lo", "hi"]))
        existing = np.asarray(self.adjacency[pairs["lo"].to_numpy(), pairs["hi"].to_numpy()]).ravel() if pairs.height else np.array([])
        return pairs.filter(pl.Series(existing == 0)) if pairs.height else pairs


def _gather(matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    if len(rows) == 0:
        return np.zeros(0, dtype=np.float32)
    return np.asarray(matrix[rows, cols]).ravel().astype(np.float32)


def _aligned(products: dict[str, sp.csr_matrix]) -> dict[str, np.ndarray]:
    """Each product's values at the mutual-friend product's entries. Every weight is positive, so the patterns are
    one and scipy lays them out alike; should a weight underflow to zero (an old connection's discount) and drop an
    entry from one product, that product is matched by key instead."""
    base = products["mutual_friends"]
    values = {}
    for name, product in products.items():
        if np.array_equal(product.indptr, base.indptr) and np.array_equal(product.indices, base.indices):
            values[name] = product.data.astype(np.float32)
            continue
        width = base.shape[1]
        keys = np.repeat(np.arange(base.shape[0], dtype=np.int64), np.diff(base.indptr)) * width + base.indices
        own = np.repeat(np.arange(product.shape[0], dtype=np.int64), np.diff(product.indptr)) * width + product.indices
        order = np.argsort(own, kind="stable")
        own, data = own[order], product.data[order]
        at = np.minimum(np.searchsorted(own, keys), max(len(own) - 1, 0))
        values[name] = (np.where(own[at] == keys, data[at], 0.0).astype(np.float32) if len(own)
                        else np.zeros(len(keys), np.float32))
    return values


def candidates(snapshot: Snapshot, members: np.ndarray, cap: int) -> dict[str, np.ndarray]:
    """Friends of friends of `members` (indices) who are not already their friends, at most `cap` each (most mutual
    friends first; ties by Adamic-Adar), with the pair features: {"u", "v", *PAIR_FEATURES}."""
    A, n = snapshot.adjacency, snapshot.size
    degree = snapshot.degree
    block = A[members]
    weights = {
        "mutual_friends": np.ones(n, dtype=np.float32),
        "adamic_adar": (1 / np.log(np.maximum(degree, 2))).astype(np.float32),
        "resource_allocation": (1 / np.maximum(degree, 1)).astype(np.float32),
    }
    products = {name: (block @ sp.diags(w) @ A).tocsr() for name, w in weights.items()}
    products["discounted_mutual"] = (snapshot.recency[members] @ snapshot.recency).tocsr()
    values = _aligned(products)
    base = products["mutual_friends"]
    indptr, v = base.indptr, base.indices.astype(np.int64)
    r = np.repeat(np.arange(len(members), dtype=np.int64), np.diff(indptr))
    # Friends and the member themselves are not candidates: a dense mask of the chunk's rows (the chunk is sized so
    # that this stays small).
    excluded = np.zeros((len(members), n), dtype=bool)
    excluded[np.repeat(np.arange(len(members)), np.diff(block.indptr)), block.indices] = True
    excluded[np.arange(len(members)), members] = True
    # Most mutual friends first, then Adamic-Adar (below 1.45 a mutual friend, so it only breaks ties).
    key = values["mutual_friends"].astype(np.float64) * 1e4 + values["adamic_adar"]
    key[excluded[r, v]] = -1.0
    chosen = []
    for row in range(len(members)):
        begin, end = indptr[row], indptr[row + 1]
        if end - begin <= cap:
            chosen.append(np.arange(begin, end))
        else:
            chosen.append(begin + np.argpartition(-key[begin:end], cap - 1)[:cap])
    chosen = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    chosen = chosen[key[chosen] >= 0]
    u, v = members[r[chosen]], v[chosen]
    order = np.lexsort((v, u))  # a canonical order, so that ties in any score break the same way every run
    chosen, u, v = chosen[order], u[order], v[order]
    return {"u": u, "v": v, **_pair_features(snapshot, u, v, {name: x[chosen] for name, x in values.items()})}


def _pair_features(snapshot: Snapshot, u: np.ndarray, v: np.ndarray, counts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    degree = snapshot.degree
    mutual = counts["mutual_friends"]
    features = {
        **counts,
        "jaccard": mutual / np.maximum(degree[u] + degree[v] - mutual, 1),
        **{f"same_{a}": ((snapshot.categories[u, j] == snapshot.categories[v, j]) & (snapshot.categories[u, j] > 0)).astype(np.float32)
           for j, a in enumerate(ATTRIBUTES)},
        "views_to": _gather(snapshot.views, u, v),
        "views_from": _gather(snapshot.views, v, u),
        "recent_views_to": _gather(snapshot.recent_views, u, v),
        "recent_views_from": _gather(snapshot.recent_views, v, u),
        "ignored_requests": _gather(snapshot.ignored, u, v),
        "pending_requests": _gather(snapshot.pending, u, v),
    }
    return {name: np.asarray(features[name], dtype=np.float32) for name in PAIR_FEATURES}


def pair_features(snapshot: Snapshot, u: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    """The features of given pairs (indices), as `candidates` computes them for friends of friends."""
    A, degree = snapshot.adjacency, snapshot.degree
    common = lambda left, right, weight=None: np.asarray(  # noqa: E731
        (left[u].multiply(right[v]) if weight is None else left[u].multiply(right[v]).multiply(weight[None, :])).sum(axis=1)
    ).ravel().astype(np.float32)
    counts = {
        "mutual_friends": common(A, A),
        "adamic_adar": common(A, A, (1 / np.log(np.maximum(degree, 2))).astype(np.float32)),
        "resource_allocation": common(A, A, (1 / np.maximum(degree, 1)).astype(np.float32)),
        "discounted_mutual": common(snapshot.recency, snapshot.recency),
    }
    return {"u": u, "v": v, **_pair_features(snapshot, u, v, counts)}


def chunk_size(snapshot: Snapshot, paths_per_chunk: int = 4_000_000, mask_cells: int = 50_000_000) -> int:
    """Members per chunk so that a chunk's two-step paths (what the sparse products hold before the cap) stay near
    `paths_per_chunk` and its friends mask near `mask_cells`: memory stays flat whatever the graph's size and
    density."""
    degree = snapshot.degree
    paths_per_member = float((degree ** 2).sum() / max(1, (degree > 0).sum()))
    by_paths = paths_per_chunk / max(paths_per_member, 1.0)
    return int(min(CHUNK, max(50, min(by_paths, mask_cells / max(snapshot.size, 1)))))


def chunks(members: np.ndarray, size: int = CHUNK):
    for begin in range(0, len(members), size):
        yield members[begin:begin + size]


def all_candidates(snapshot: Snapshot, members: np.ndarray, cap: int) -> dict[str, np.ndarray]:
    parts = [candidates(snapshot, chunk, cap) for chunk in chunks(members, chunk_size(snapshot))]
    if not parts:
        return {"u": np.zeros(0, np.int64), "v": np.zeros(0, np.int64), **{f: np.zeros(0, np.float32) for f in PAIR_FEATURES}}
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def labels(pairs: dict[str, np.ndarray], new_edges: pl.DataFrame, n: int) -> np.ndarray:
    """1 where the candidate pair connected in the label window."""
    positive = np.sort(new_edges["lo"].to_numpy().astype(np.int64) * n + new_edges["hi"].to_numpy())
    lo, hi = np.minimum(pairs["u"], pairs["v"]), np.maximum(pairs["u"], pairs["v"])
    return np.isin(lo * n + hi, positive).astype(np.int8)


def attribute_groups(snapshot: Snapshot) -> list[dict[int, np.ndarray]]:
    """Per attribute, the members holding each value (code > 0)."""
    groups = []
    for j in range(len(ATTRIBUTES)):
        codes = snapshot.categories[:, j]
        order = np.argsort(codes, kind="stable")
        values, starts = np.unique(codes[order], return_index=True)
        groups.append({int(c): g for c, g in zip(values, np.split(order, starts[1:])) if c > 0})
    return groups


def shared_attribute_suggestions(snapshot: Snapshot, member: int, k: int, groups: list[dict[int, np.ndarray]],
                                 codes: np.ndarray | None = None) -> list[tuple[int, float, int]]:
    """For a member without connections (or a new one with `codes`): members sharing the most of school, company and
    city, industry breaking ties, the better connected first. (index, score, attributes shared of the three)."""
    codes = snapshot.categories[member] if codes is None else codes
    found, weights = [], []
    for j, code in enumerate(codes):
        members = groups[j].get(int(code)) if code > 0 else None
        if members is not None:
            found.append(members)
            weights.append(np.full(len(members), 1.0 if j < 3 else 0.25))
    if not found:
        return []
    candidates = np.concatenate(found)
    shared = np.bincount(candidates, weights=np.concatenate(weights), minlength=snapshot.size)
    if member >= 0:
        shared[member] = 0
    main = np.floor(shared)
    holders = np.flatnonzero(main >= 1)
    score = shared[holders] + 0.01 * np.log1p(snapshot.degree[holders])
    best = holders[np.argsort(-score, kind="stable")[:k]]
    return [(int(i), float(shared[i] + 0.01 * np.log1p(snapshot.degree[i])), int(main[i])) for i in best]
