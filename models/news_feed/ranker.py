"""The engagement models: one XGBoost model per head (the baseline), and the book's multi-task network (a shared tower,
one head per reaction, a skip head and a dwell regression) in PyTorch. Both predict every head for rows of FEATURES
(float32, NaN where unknown) and save to plain bytes: XGBoost's JSON, a torch state dict read with weights_only.

Negatives are downsampled per head in the multi-task loss, as the book says: a rare head (comment, share, hide,
block) sees all its positives and a fraction of its negatives each epoch, and its probability is corrected back for
that fraction when it predicts (p = q / (q + (1 - q) / rate)), so every head stays a calibrated probability and the
weighted score is a sum of expectations.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from models.news_feed.data import DWELL, DWELL_CAP, HEADS
from models.news_feed.features import FEATURES, LOGGED
from models.tabular import Standardizer

OUTPUTS = (*HEADS, DWELL)


def _labels(frame) -> dict[str, np.ndarray]:
    return {head: frame[head].to_numpy().astype(np.float32) for head in OUTPUTS}


def labels_of(frame) -> dict[str, np.ndarray]:
    """Each head's targets of a labelled frame: 0/1 for the binary heads, capped seconds for dwell."""
    return _labels(frame)


@dataclass
class Fitted:
    """What a training run chose on the validation rows."""

    model: "EngagementModel"
    curve: list[float]  # validation loss per round or epoch (the mean over heads)
    best: int | dict[str, int]  # epochs, or rounds per head
    seconds: float
    train_curve: list[float] = field(default_factory=list)
    head_curves: dict[str, list[float]] = field(default_factory=dict)


class EngagementModel:
    kind: str = ""

    def predict(self, matrix: np.ndarray) -> dict[str, np.ndarray]:  # pragma: no cover - every kind overrides it
        raise NotImplementedError

    def fine_tune(self, matrix: np.ndarray, labels: dict[str, np.ndarray]) -> None:  # pragma: no cover
        raise NotImplementedError

    def to_bytes(self) -> bytes:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def from_bytes(kind: str, payload: bytes) -> EngagementModel:
        return {"xgboost": XGBoostHeads, "multitask": MultiTaskModel}[kind].load(payload)


# --- one XGBoost model per head -------------------------------------------------------------------------------------


@dataclass
class XGBoostParams:
    max_depth: int = 6
    learning_rate: float = 0.08
    min_child_weight: float = 5.0
    subsample: float = 0.9
    colsample_bytree: float = 0.9
    reg_lambda: float = 5.0
    num_boost_round: int = 400
    early_stopping_rounds: int = 25
    fine_tune_rounds: int = 15

    def booster_params(self, head: str) -> dict:
        objective = ({"objective": "reg:squarederror", "eval_metric": "rmse"} if head == DWELL
                     else {"objective": "binary:logistic", "eval_metric": "logloss"})
        return {**objective, "tree_method": "hist", "max_depth": self.max_depth, "eta": self.learning_rate,
                "min_child_weight": self.min_child_weight, "subsample": self.subsample,
                "colsample_bytree": self.colsample_bytree, "lambda": self.reg_lambda, "nthread": 2, "seed": 0}


class XGBoostHeads(EngagementModel):
    kind = "xgboost"

    def __init__(self, boosters: dict, params: XGBoostParams):
        self.boosters, self.params = boosters, params

    def predict(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        x = np.asarray(matrix, np.float32)
        out = {h: b.inplace_predict(x, validate_features=False).astype(np.float64) for h, b in self.boosters.items()}
        out[DWELL] = np.clip(out[DWELL], 0, DWELL_CAP)
        return out

    def fine_tune(self, matrix: np.ndarray, labels: dict[str, np.ndarray]) -> None:
        """More trees per head on the newer rows, on top of the ones there (XGBoost's training continuation)."""
        import xgboost as xgb

        for head, booster in self.boosters.items():
            data = xgb.DMatrix(matrix, label=labels[head], feature_names=list(FEATURES))
            self.boosters[head] = xgb.train(self.params.booster_params(head), data, self.params.fine_tune_rounds,
                                            xgb_model=booster, verbose_eval=False)

    def to_bytes(self) -> bytes:
        return json.dumps({"params": asdict(self.params),
                           "boosters": {h: bytes(b.save_raw("json")).decode() for h, b in self.boosters.items()}}).encode()

    @classmethod
    def load(cls, payload: bytes) -> XGBoostHeads:
        import xgboost as xgb

        state = json.loads(payload)
        boosters = {}
        for head, raw in state["boosters"].items():
            booster = xgb.Booster(params={"nthread": 1})
            booster.load_model(bytearray(raw.encode()))
            boosters[head] = booster
        return cls(boosters, XGBoostParams(**state["params"]))


def train_xgboost(train_x, train_y: dict, valid_x, valid_y: dict | None, params: XGBoostParams,
                  rounds: dict[str, int] | None = None, progress: Callable[[str], None] | None = None) -> Fitted:
    """One booster per head, each early-stopped on its validation loss; with `rounds`, exactly that many (the refit)."""
    import xgboost as xgb

    started = time.perf_counter()
    boosters, best, curves = {}, {}, {}
    for head in OUTPUTS:
        dtrain = xgb.DMatrix(train_x, label=train_y[head], feature_names=list(FEATURES))
        if rounds is None:
            history: dict = {}
            callbacks = []
            if progress is not None:
                class Progress(xgb.callback.TrainingCallback):
                    def after_iteration(self, model, epoch, evals_log, head=head):
                        if evals_log and epoch % 25 == 0:
                            metric, values = next(iter(evals_log["validation"].items()))
                            progress(f"xgboost {head} round {epoch}: validation {metric} {values[-1]:.5f}")
                        return False
                callbacks.append(Progress())
            dvalid = xgb.DMatrix(valid_x, label=valid_y[head], feature_names=list(FEATURES))
            booster = xgb.train(params.booster_params(head), dtrain, params.num_boost_round, evals=[(dvalid, "validation")],
                                early_stopping_rounds=params.early_stopping_rounds, evals_result=history, verbose_eval=False,
                                callbacks=callbacks)
            best[head] = booster.best_iteration + 1
            boosters[head] = booster[: best[head]]
            curves[head] = list(history["validation"].values())[0]
            if progress is not None:
                progress(f"xgboost {head}: {best[head]} rounds, validation "
                         f"{list(history['validation'])[0]} {curves[head][best[head] - 1]:.5f}")
        else:
            boosters[head] = xgb.train(params.booster_params(head), dtrain, rounds[head], verbose_eval=False)
            best[head] = rounds[head]
    return Fitted(XGBoostHeads(boosters, params), [], best, time.perf_counter() - started, head_curves=curves)


# --- the multi-task network -------------------------------------------------------------------------------------------


@dataclass
class MultiTaskParams:
    shared: tuple[int, ...] = (128, 64)
    head_hidden: int = 16
    dropout: float = 0.1
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    batch_size: int = 512
    max_epochs: int = 14
    patience: int = 3
    # Each head's weight in the loss; dwell's loss is the squared error of seconds / DWELL_CAP.
    loss_weights: dict[str, float] = field(default_factory=lambda: {
        "click": 1.0, "like": 1.0, "comment": 1.0, "share": 1.0, "hide": 1.0, "block": 1.0, "skip": 1.0, DWELL: 4.0})
    # The share of each head's negatives a training epoch keeps (positives are all kept).
    negative_rates: dict[str, float] = field(default_factory=lambda: {
        "click": 1.0, "like": 1.0, "comment": 0.3, "share": 0.3, "hide": 0.3, "block": 0.2, "skip": 1.0})
    fine_tune_epochs: int = 2
    fine_tune_learning_rate: float = 5e-4
    seed: int = 0


def _network(width: int, params: MultiTaskParams):
    import torch
    from torch import nn

    class MultiTaskNetwork(nn.Module):
        """A shared tower over every feature, then one small tower per head (a logit, or dwell seconds / cap)."""

        def __init__(self):
            super().__init__()
            layers, previous = [], width
            for size in params.shared:
                layers += [nn.Linear(previous, size), nn.ReLU(), nn.Dropout(params.dropout)]
                previous = size
            self.shared = nn.Sequential(*layers)
            self.heads = nn.ModuleDict({h: nn.Sequential(nn.Linear(previous, params.head_hidden), nn.ReLU(),
                                                         nn.Linear(params.head_hidden, 1)) for h in OUTPUTS})

        def forward(self, x):
            shared = self.shared(x)
            return torch.cat([self.heads[h](shared) for h in OUTPUTS], dim=1)

    return MultiTaskNetwork()


class MultiTaskModel(EngagementModel):
    kind = "multitask"

    def __init__(self, network, scaler: Standardizer, params: MultiTaskParams):
        self.network, self.scaler, self.params = network, scaler, params

    def raw(self, matrix: np.ndarray) -> np.ndarray:
        import torch

        self.network.eval()
        with torch.no_grad():
            return self.network(torch.from_numpy(self.scaler.transform(matrix))).double().numpy()

    def predict(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        out = self.raw(matrix)
        predictions = {}
        for i, head in enumerate(OUTPUTS):
            if head == DWELL:
                predictions[head] = np.clip(out[:, i] * DWELL_CAP, 0, DWELL_CAP)
                continue
            q = 1 / (1 + np.exp(-out[:, i]))
            rate = self.params.negative_rates.get(head, 1.0)
            predictions[head] = q / (q + (1 - q) / rate)  # back from the downsampled negatives
        return predictions

    def batch_size(self, rows: int) -> int:
        """The configured batch, smaller on small data so that an epoch still takes a couple of hundred steps."""
        return min(self.params.batch_size, max(64, rows // 200))

    def epoch(self, x, y, optimizer, generator) -> float:
        import torch
        import torch.nn.functional as F

        self.network.train()
        order = torch.randperm(len(x), generator=generator)
        heads = [h for h in OUTPUTS if h != DWELL]
        rates = torch.tensor([self.params.negative_rates.get(h, 1.0) for h in heads])
        weights = torch.tensor([self.params.loss_weights.get(h, 1.0) for h in heads])
        dwell_weight = self.params.loss_weights.get(DWELL, 1.0)
        total, batch = 0.0, self.batch_size(len(x))
        for start in range(0, len(x), batch):
            index = order[start : start + batch]
            target = y[index]
            out = self.network(x[index])
            binary_target = target[:, : len(heads)]
            keep = ((binary_target > 0.5) | (torch.rand(binary_target.shape, generator=generator) < rates)).float()
            bce = F.binary_cross_entropy_with_logits(out[:, : len(heads)], binary_target, reduction="none")
            per_head = (bce * keep).sum(0) / keep.sum(0).clamp(min=1)
            dwell = F.mse_loss(out[:, -1], target[:, -1] / DWELL_CAP)
            loss = (weights * per_head).sum() + dwell_weight * dwell
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach().item() * len(index)
        return total / max(len(x), 1)

    def _fit_epochs(self, matrix, labels, epochs: int, learning_rate: float, seed: int) -> list[float]:
        import torch

        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(self.network.parameters(), lr=learning_rate, weight_decay=self.params.weight_decay)
        x = torch.from_numpy(self.scaler.transform(matrix))
        y = torch.from_numpy(np.stack([labels[h] for h in OUTPUTS], axis=1).astype(np.float32))
        return [self.epoch(x, y, optimizer, generator) for _ in range(epochs)]

    def fine_tune(self, matrix: np.ndarray, labels: dict[str, np.ndarray]) -> None:
        """A few epochs on the newer rows at a lower learning rate: the book's continual learning."""
        self._fit_epochs(matrix, labels, self.params.fine_tune_epochs, self.params.fine_tune_learning_rate, self.params.seed + 1)

    def to_bytes(self) -> bytes:
        import torch

        buffer = io.BytesIO()
        torch.save({"state": self.network.state_dict(), "scaler": json.dumps(asdict(self.scaler)),
                    "params": json.dumps(asdict(self.params))}, buffer)
        return buffer.getvalue()

    @classmethod
    def load(cls, payload: bytes) -> MultiTaskModel:
        import torch

        state = torch.load(io.BytesIO(payload), weights_only=True)
        scaler = Standardizer(**json.loads(state["scaler"]))
        raw = json.loads(state["params"])
        params = MultiTaskParams(**{**raw, "shared": tuple(raw["shared"])})
        network = _network(scaler.width, params)
        network.load_state_dict(state["state"])
        return cls(network, scaler, params)


def validation_loss(model: EngagementModel, x: np.ndarray, y: dict[str, np.ndarray]) -> tuple[float, dict[str, float]]:
    """The mean over heads of normalized cross-entropy (log loss over the log loss of the head's base rate), with the
    dwell head's mean squared error over its variance: every head weighs the same whatever its rate."""
    from models.metrics import log_loss

    predicted = model.predict(x)
    per_head = {}
    for head in HEADS:
        rate = float(np.clip(y[head].mean(), 1e-4, 1 - 1e-4))
        per_head[head] = log_loss(y[head], np.clip(predicted[head], 1e-7, 1 - 1e-7)) / log_loss(y[head], np.full(len(x), rate))
    variance = float(np.var(y[DWELL])) or 1.0
    per_head[DWELL] = float(np.mean((predicted[DWELL] - y[DWELL]) ** 2)) / variance
    return float(np.mean(list(per_head.values()))), per_head


def train_multitask(train_x, train_y: dict, valid_x, valid_y: dict | None, params: MultiTaskParams, epochs: int | None = None,
                    progress: Callable[[str], None] | None = None) -> Fitted:
    """Adam on the weighted sum of the heads' losses; keeps the epoch with the best validation loss (patience
    `params.patience`); with `epochs`, exactly that many (the refit)."""
    import copy

    import torch

    started = time.perf_counter()
    torch.manual_seed(params.seed)
    scaler = Standardizer.fit(train_x, [FEATURES.index(name) for name in LOGGED])
    model = MultiTaskModel(_network(scaler.width, params), scaler, params)
    generator = torch.Generator().manual_seed(params.seed)
    optimizer = torch.optim.Adam(model.network.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay)
    x = torch.from_numpy(scaler.transform(train_x))
    y = torch.from_numpy(np.stack([train_y[h] for h in OUTPUTS], axis=1).astype(np.float32))
    curve, train_curve, head_curves, best_state, best = [], [], {h: [] for h in OUTPUTS}, None, 0
    for epoch in range(1, (epochs or params.max_epochs) + 1):
        train_curve.append(model.epoch(x, y, optimizer, generator))
        if epochs is not None:
            continue
        loss, per_head = validation_loss(model, valid_x, valid_y)
        curve.append(loss)
        for head, value in per_head.items():
            head_curves[head].append(value)
        if progress is not None:
            progress(f"multi-task epoch {epoch}: train loss {train_curve[-1]:.4f}, validation loss {loss:.4f} "
                     f"({', '.join(f'{h} {v:.3f}' for h, v in per_head.items())})")
        if loss <= min(curve):
            best, best_state = epoch, copy.deepcopy(model.network.state_dict())
        elif epoch - best >= params.patience:
            break
    if best_state is not None:
        model.network.load_state_dict(best_state)
    return Fitted(model, curve, best if epochs is None else epochs, time.perf_counter() - started, train_curve,
                  head_curves if epochs is None else {})
