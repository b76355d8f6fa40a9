"""The edge-formation models: XGBoost over the pair's features, and GraphSAGE (the book's GNN) over the graph.

Both score candidate pairs of a snapshot (graph.candidates) with the probability-like chance that they connect in the
label window, and save to plain bytes (XGBoost's JSON; a torch state dict read with weights_only).

GraphSAGE: each member starts from embeddings of their standardized school, company, city and industry and their
scaled activity features; two SAGEConv layers (mean aggregation, full batch over the snapshot's sparse adjacency, so
no neighbour sampler and no compiled extension) give every member a vector. A pair scores the dot product of the two
vectors, the book's decoder, plus a small network over the pair's features (mutual friends, Adamic-Adar, shared
attributes, views): a dot product of smoothed neighbourhoods cannot count mutual friends exactly, which is the
strongest single signal among friends of friends. It is trained on link prediction among friends of friends: every
pair that connected in the training window is a positive, and `negatives` non-connecting candidates per positive are
drawn each epoch from the training snapshot's friends of friends (negative sampling among friends of friends).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from models.people_you_may_know.graph import NODE_FEATURES, PAIR_FEATURES, Snapshot
from models.people_you_may_know.standardize import ATTRIBUTES
from models.tabular import Standardizer

XGB_FEATURES = (*PAIR_FEATURES, *(f"member_{f}" for f in NODE_FEATURES), *(f"candidate_{f}" for f in NODE_FEATURES))
LOGGED_PAIR = [i for i, f in enumerate(PAIR_FEATURES) if not f.startswith("same_") and f != "jaccard"]
LOGGED_NODE = [i for i, f in enumerate(NODE_FEATURES) if f not in ("log_connections", "acceptance_rate")]


def xgb_matrix(snapshot: Snapshot, pairs: dict[str, np.ndarray]) -> np.ndarray:
    return np.column_stack([*(pairs[f] for f in PAIR_FEATURES), snapshot.node[pairs["u"]], snapshot.node[pairs["v"]]]
                           ).astype(np.float32)


def pair_matrix(pairs: dict[str, np.ndarray]) -> np.ndarray:
    return np.column_stack([pairs[f] for f in PAIR_FEATURES]).astype(np.float32)


class EdgeModel:
    kind: str = ""

    def score(self, snapshot: Snapshot, pairs: dict[str, np.ndarray]) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def to_bytes(self) -> bytes:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def from_bytes(kind: str, payload: bytes) -> EdgeModel:
        return {"xgboost": XGBoostEdges, "graphsage": GraphSageEdges}[kind].load(payload)


@dataclass
class Fitted:
    model: EdgeModel
    validation: list[float]  # the validation figure per boosting round (logloss) or epoch (mAP@10)
    train_loss: list[float]
    best: int  # rounds or epochs
    seconds: float
    pairs: int


# --- XGBoost ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class XGBoostParams:
    max_depth: int = 5
    eta: float = 0.05
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 5.0
    num_boost_round: int = 600
    early_stopping_rounds: int = 40
    negatives_kept: float = 0.3  # share of non-connecting candidates trained on (reweighted back)
    seed: int = 0


class XGBoostEdges(EdgeModel):
    kind = "xgboost"

    def __init__(self, booster):
        self.booster = booster

    def score(self, snapshot: Snapshot, pairs: dict[str, np.ndarray]) -> np.ndarray:
        if len(pairs["u"]) == 0:
            return np.zeros(0, dtype=np.float32)
        return self.booster.inplace_predict(xgb_matrix(snapshot, pairs)).astype(np.float32)

    def to_bytes(self) -> bytes:
        return bytes(self.booster.save_raw("json"))

    @classmethod
    def load(cls, payload: bytes) -> XGBoostEdges:
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(bytearray(payload))
        booster.set_param({"nthread": 1})
        return cls(booster)


def train_xgboost(train_x: np.ndarray, train_y: np.ndarray, valid_x: np.ndarray, valid_y: np.ndarray,
                  params: XGBoostParams, progress: Callable[[str], None] | None = None) -> Fitted:
    """Early-stopped on the validation snapshot's log loss; negatives subsampled and reweighted."""
    import xgboost as xgb

    started = time.perf_counter()
    rng = np.random.default_rng(params.seed)
    keep = (train_y == 1) | (rng.random(len(train_y)) < params.negatives_kept)
    weight = np.where(train_y[keep] == 1, 1.0, 1 / params.negatives_kept)
    dtrain = xgb.DMatrix(train_x[keep], label=train_y[keep], weight=weight, feature_names=list(XGB_FEATURES))
    dvalid = xgb.DMatrix(valid_x, label=valid_y, feature_names=list(XGB_FEATURES))
    history: dict = {}

    class Progress(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            if progress is not None and epoch % 25 == 0:
                progress(f"xgboost round {epoch}: validation logloss {evals_log['validation']['logloss'][-1]:.5f}")
            return False

    booster = xgb.train({"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": params.max_depth,
                         "eta": params.eta, "subsample": params.subsample, "colsample_bytree": params.colsample_bytree,
                         "min_child_weight": params.min_child_weight, "seed": params.seed, "nthread": 2,
                         "tree_method": "hist"},
                        dtrain, params.num_boost_round, evals=[(dtrain, "train"), (dvalid, "validation")],
                        early_stopping_rounds=params.early_stopping_rounds, evals_result=history, verbose_eval=False,
                        callbacks=[Progress()])
    best = booster.best_iteration + 1
    booster = booster[:best]
    if progress is not None:
        progress(f"xgboost: {best} rounds, validation logloss {history['validation']['logloss'][best - 1]:.5f}")
    return Fitted(XGBoostEdges(booster), history["validation"]["logloss"], history["train"]["logloss"], best,
                  time.perf_counter() - started, int(keep.sum()))


# --- GraphSAGE -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphSageParams:
    dim: int = 64
    attribute_dim: int = 16
    epochs: int = 12  # at most: validation mAP@10 picks the best
    negatives: int = 20  # non-connecting friends of friends per positive, drawn each epoch
    batch_pairs: int = 512
    learning_rate: float = 0.005
    weight_decay: float = 1e-5
    seed: int = 0
    pair_network: bool = True  # False: the book's decoder alone (the dot product), for comparison


def _network(vocabulary_sizes: list[int], node_width: int, pair_width: int, params: GraphSageParams):
    import torch
    from torch import nn
    from torch_geometric.nn import SAGEConv

    class LinkPredictor(nn.Module):
        def __init__(self):
            super().__init__()
            self.attributes = nn.ModuleList(nn.Embedding(size + 1, params.attribute_dim) for size in vocabulary_sizes)
            self.inputs = nn.Linear(params.attribute_dim * len(vocabulary_sizes) + node_width, params.dim)
            self.conv1 = SAGEConv(params.dim, params.dim)
            self.conv2 = SAGEConv(params.dim, params.dim)
            self.pair = nn.Sequential(nn.Linear(pair_width, 32), nn.ReLU(), nn.Linear(32, 1))

        def embed(self, categories, node, adjacency):
            """adjacency: torch sparse CSR (target x source), as SAGEConv reads a sparse adjacency."""
            x = torch.cat([*(e(categories[:, j]) for j, e in enumerate(self.attributes)), node], dim=1)
            x = torch.relu(self.inputs(x))
            x = torch.relu(self.conv1(x, adjacency))
            return self.conv2(x, adjacency)

        def score(self, z, u, v, pair):
            dot = (z[u] * z[v]).sum(dim=1) / z.shape[1] ** 0.5
            return dot + self.pair(pair).squeeze(1) if params.pair_network else dot

    return LinkPredictor()


def torch_adjacency(snapshot: Snapshot):
    import warnings

    import torch

    coo = snapshot.adjacency.tocsr()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": SAGEConv's sparse path is what we rely on
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(coo.indptr.astype(np.int64)), torch.from_numpy(coo.indices.astype(np.int64)),
                                       torch.from_numpy(coo.data.astype(np.float32)), size=coo.shape)


class GraphSageEdges(EdgeModel):
    kind = "graphsage"

    def __init__(self, network, vocabulary_sizes: list[int], node_scaler: Standardizer, pair_scaler: Standardizer,
                 params: GraphSageParams):
        self.network, self.vocabulary_sizes, self.params = network, vocabulary_sizes, params
        self.node_scaler, self.pair_scaler = node_scaler, pair_scaler
        self._embedded: tuple[Snapshot, object] | None = None

    def inputs(self, snapshot: Snapshot):
        import torch

        # A value beyond the training vocabulary reads as unknown (row 0).
        categories = np.where(snapshot.categories > np.asarray(self.vocabulary_sizes)[None, :], 0, snapshot.categories)
        return (torch.from_numpy(categories), torch.from_numpy(self.node_scaler.transform(snapshot.node)),
                torch_adjacency(snapshot))

    def embed(self, snapshot: Snapshot):
        """Every member's vector in the snapshot (cached for the last snapshot embedded: the object itself is kept, as an
        id() could be reused by the next snapshot once this one is freed)."""
        import torch

        if self._embedded is None or self._embedded[0] is not snapshot:
            self.network.eval()
            with torch.no_grad():
                self._embedded = (snapshot, self.network.embed(*self.inputs(snapshot)))
        return self._embedded[1]

    def score(self, snapshot: Snapshot, pairs: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        if len(pairs["u"]) == 0:
            return np.zeros(0, dtype=np.float32)
        z = self.embed(snapshot)
        with torch.no_grad():
            logits = self.network.score(z, torch.from_numpy(pairs["u"]), torch.from_numpy(pairs["v"]),
                                        torch.from_numpy(self.pair_scaler.transform(pair_matrix(pairs))))
        return torch.sigmoid(logits).numpy().astype(np.float32)

    def to_bytes(self) -> bytes:
        import torch

        buffer = io.BytesIO()
        torch.save({"state": self.network.state_dict(), "meta": json.dumps({
            "vocabulary_sizes": self.vocabulary_sizes, "params": asdict(self.params),
            "node_scaler": asdict(self.node_scaler), "pair_scaler": asdict(self.pair_scaler)})}, buffer)
        return buffer.getvalue()

    @classmethod
    def load(cls, payload: bytes) -> GraphSageEdges:
        import torch

        saved = torch.load(io.BytesIO(payload), weights_only=True)
        meta = json.loads(saved["meta"])
        params = GraphSageParams(**meta["params"])
        node_scaler, pair_scaler = Standardizer(**meta["node_scaler"]), Standardizer(**meta["pair_scaler"])
        network = _network(meta["vocabulary_sizes"], node_scaler.width, pair_scaler.width, params)
        network.load_state_dict(saved["state"])
        network.eval()
        return cls(network, meta["vocabulary_sizes"], node_scaler, pair_scaler, params)


@dataclass
class Labelled:
    """A snapshot's candidate pairs and whether each connected in the label window."""

    snapshot: Snapshot
    pairs: dict[str, np.ndarray]
    y: np.ndarray
    extra: dict = field(default_factory=dict)


def train_graphsage(train: Labelled, validation: Labelled, params: GraphSageParams,
                    judge: Callable[[EdgeModel], float], progress: Callable[[str], None] | None = None) -> Fitted:
    """Link prediction among friends of friends on the training snapshot; the epoch with the best `judge` (validation
    mAP@10) is kept."""
    import torch

    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    started = time.perf_counter()
    sizes = [int(max(train.snapshot.categories[:, j].max(), validation.snapshot.categories[:, j].max()))
             for j in range(len(ATTRIBUTES))]
    node_scaler = Standardizer.fit(train.snapshot.node, LOGGED_NODE)
    pair_scaler = Standardizer.fit(pair_matrix(train.pairs), LOGGED_PAIR)
    network = _network(sizes, node_scaler.width, pair_scaler.width, params)
    model = GraphSageEdges(network, sizes, node_scaler, pair_scaler, params)
    categories, node, adjacency = model.inputs(train.snapshot)
    pair_x = torch.from_numpy(pair_scaler.transform(pair_matrix(train.pairs)))
    u_all, v_all = torch.from_numpy(train.pairs["u"]), torch.from_numpy(train.pairs["v"])
    positives = np.flatnonzero(train.y == 1)
    negatives = np.flatnonzero(train.y == 0)
    if len(positives) == 0:
        raise ValueError("no candidate pair of the training snapshot connected in its label window: nothing to learn")
    optimizer = torch.optim.Adam(network.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best_state, best_score, best_epoch, scores, losses = None, -np.inf, 0, [], []
    for epoch in range(1, params.epochs + 1):
        network.train()
        drawn = rng.choice(negatives, size=min(len(negatives), params.negatives * len(positives)), replace=False)
        rows = rng.permutation(np.concatenate([positives, drawn]))
        total, count = 0.0, 0
        for begin in range(0, len(rows), params.batch_pairs):
            batch = torch.from_numpy(rows[begin:begin + params.batch_pairs])
            z = network.embed(categories, node, adjacency)
            logits = network.score(z, u_all[batch], v_all[batch], pair_x[batch])
            loss = loss_fn(logits, torch.from_numpy(train.y[batch.numpy()].astype(np.float32)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            count += len(batch)
        model._embedded = None
        network.eval()
        score = judge(model)
        losses.append(total / count)
        scores.append(score)
        if progress is not None:
            progress(f"graphsage epoch {epoch}: train loss {losses[-1]:.4f}, validation mAP@10 {score:.4f}")
        if score > best_score:
            best_score, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
    network.load_state_dict(best_state)
    network.eval()
    model._embedded = None
    return Fitted(model, scores, losses, best_epoch, time.perf_counter() - started, len(positives) * (1 + params.negatives))
