"""The pointwise rankers of P(register | user, event): XGBoost (the book's first model), a PyTorch MLP (the book's
continual learner) and logistic regression (a strong simple baseline), over the same FEATURES.

Every ranker takes the float32 feature matrix with NaN for a missing value (`features.feature_matrix`), can be
fine-tuned on newer rows (the MLP by more epochs at a lower rate, XGBoost by more trees) and saves to plain bytes:
XGBoost's JSON, a torch state dict read with weights_only, numpy arrays. Nothing is pickled.

Class imbalance (about one registration in twenty-five impressions) is left as it is: the probabilities are judged
by NCE and are what the service returns, and reweighting or undersampling would bend them; the ranking metric
does not need them bent.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from models.event_recommendation.features import FEATURES
from models.tabular import Standardizer

# Counts and durations with long tails enter the MLP and the logistic regression as log1p.
LOGGED = ("distance_km", "hours_to_event", "hours_on_sale", "registrations_so_far", "impressions_so_far",
          "friends_registered", "friends_inviting", "host_past_events", "host_past_attendance", "user_registrations")


def _scaler(state: dict) -> Standardizer:
    """A saved scaler; one saved before `logged` was stored logged LOGGED, as every event ranker did."""
    return Standardizer(**{"logged": [FEATURES.index(name) for name in LOGGED], **state})


def _fit_scaler(matrix: np.ndarray) -> Standardizer:
    return Standardizer.fit(matrix, [FEATURES.index(name) for name in LOGGED])


@dataclass
class XGBoostParams:
    max_depth: int = 6
    learning_rate: float = 0.08
    min_child_weight: float = 5.0
    subsample: float = 0.9
    colsample_bytree: float = 0.9
    reg_lambda: float = 5.0
    num_boost_round: int = 600
    early_stopping_rounds: int = 30
    fine_tune_rounds: int = 20  # trees added per day by the daily fine-tune

    def booster_params(self) -> dict:
        return {"objective": "binary:logistic", "eval_metric": "logloss", "tree_method": "hist",
                "max_depth": self.max_depth, "eta": self.learning_rate, "min_child_weight": self.min_child_weight,
                "subsample": self.subsample, "colsample_bytree": self.colsample_bytree, "lambda": self.reg_lambda,
                "nthread": 2, "seed": 0}


@dataclass
class MLPParams:
    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.1
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    batch_size: int = 1024
    max_epochs: int = 12
    patience: int = 2
    fine_tune_epochs: int = 2
    fine_tune_learning_rate: float = 5e-4
    seed: int = 0


@dataclass
class Fitted:
    """What a training run chose on the validation rows."""

    ranker: "Ranker"
    curve: list[float]  # validation log loss per round or epoch
    best: int  # rounds or epochs that minimised it
    seconds: float
    train_curve: list[float] = field(default_factory=list)


class Ranker:
    kind: str = ""

    def predict(self, matrix: np.ndarray) -> np.ndarray:  # pragma: no cover - every kind overrides it
        raise NotImplementedError

    def fine_tune(self, matrix: np.ndarray, labels: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError

    def to_bytes(self) -> bytes:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def from_bytes(kind: str, payload: bytes) -> Ranker:
        return {"xgboost": XGBoostRanker, "mlp": MLPRanker, "logistic": LogisticRanker}[kind].load(payload)


# --- XGBoost --------------------------------------------------------------------------------------------------------


class XGBoostRanker(Ranker):
    kind = "xgboost"

    def __init__(self, booster, params: XGBoostParams):
        self.booster, self.params = booster, params

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.inplace_predict(np.asarray(matrix, np.float32), validate_features=False).astype(np.float64)

    def fine_tune(self, matrix: np.ndarray, labels: np.ndarray) -> None:
        """More trees on the newer rows, on top of the ones there (XGBoost's training continuation)."""
        import xgboost as xgb

        data = xgb.DMatrix(matrix, label=labels, feature_names=list(FEATURES))
        self.booster = xgb.train(self.params.booster_params(), data, num_boost_round=self.params.fine_tune_rounds,
                                 xgb_model=self.booster, verbose_eval=False)

    def to_bytes(self) -> bytes:
        return json.dumps({"params": asdict(self.params), "booster": bytes(self.booster.save_raw("json")).decode()}).encode()

    @classmethod
    def load(cls, payload: bytes) -> XGBoostRanker:
        import xgboost as xgb

        state = json.loads(payload)
        booster = xgb.Booster(params={"nthread": 1})
        booster.load_model(bytearray(state["booster"].encode()))
        return cls(booster, XGBoostParams(**state["params"]))


def train_xgboost(train_x, train_y, valid_x, valid_y, params: XGBoostParams, rounds: int | None = None,
                  progress: Callable[[str], None] | None = None) -> Fitted:
    """Early-stopped on the validation log loss; with `rounds`, exactly that many (the refit)."""
    import xgboost as xgb

    started = time.perf_counter()
    dtrain = xgb.DMatrix(train_x, label=train_y, feature_names=list(FEATURES))
    history: dict = {}
    callbacks = []
    if progress is not None:
        class Progress(xgb.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log):
                if evals_log and epoch % 50 == 0:
                    progress(f"xgboost round {epoch}: validation log loss {evals_log['validation']['logloss'][-1]:.5f}")
                return False
        callbacks.append(Progress())
    if rounds is None:
        dvalid = xgb.DMatrix(valid_x, label=valid_y, feature_names=list(FEATURES))
        booster = xgb.train(params.booster_params(), dtrain, num_boost_round=params.num_boost_round,
                            evals=[(dvalid, "validation")], early_stopping_rounds=params.early_stopping_rounds,
                            evals_result=history, verbose_eval=False, callbacks=callbacks)
        curve = history["validation"]["logloss"]
        best = booster.best_iteration + 1
        booster = booster[:best]
    else:
        booster = xgb.train(params.booster_params(), dtrain, num_boost_round=rounds, verbose_eval=False)
        curve, best = [], rounds
    return Fitted(XGBoostRanker(booster, params), curve, best, time.perf_counter() - started)


# --- MLP --------------------------------------------------------------------------------------------------------------


def _network(width: int, params: MLPParams):
    from torch import nn

    layers, previous = [], width
    for size in params.hidden:
        layers += [nn.Linear(previous, size), nn.ReLU(), nn.Dropout(params.dropout)]
        previous = size
    layers.append(nn.Linear(previous, 1))
    return nn.Sequential(*layers)


class MLPRanker(Ranker):
    kind = "mlp"

    def __init__(self, network, scaler: Standardizer, params: MLPParams):
        self.network, self.scaler, self.params = network, scaler, params

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        import torch

        self.network.eval()
        with torch.no_grad():
            logits = self.network(torch.from_numpy(self.scaler.transform(matrix))).squeeze(-1)
        return torch.sigmoid(logits).double().numpy()

    def batch_size(self, rows: int) -> int:
        """The configured batch, smaller on small data so that an epoch still takes a couple of hundred steps."""
        return min(self.params.batch_size, max(64, rows // 200))

    def epoch(self, x, y, optimizer, generator) -> float:
        import torch

        self.network.train()
        loss_fn = torch.nn.BCEWithLogitsLoss()
        order = torch.randperm(len(x), generator=generator)
        total, batch = 0.0, self.batch_size(len(x))
        for start in range(0, len(x), batch):
            index = order[start : start + batch]
            optimizer.zero_grad()
            loss = loss_fn(self.network(x[index]).squeeze(-1), y[index])
            loss.backward()
            optimizer.step()
            total += loss.detach().item() * len(index)
        return total / max(len(x), 1)

    def fine_tune(self, matrix: np.ndarray, labels: np.ndarray) -> None:
        """A few epochs on the newer rows at a lower learning rate: the book's continual learning."""
        import torch

        generator = torch.Generator().manual_seed(self.params.seed + 1)
        optimizer = torch.optim.Adam(self.network.parameters(), lr=self.params.fine_tune_learning_rate,
                                     weight_decay=self.params.weight_decay)
        x = torch.from_numpy(self.scaler.transform(matrix))
        y = torch.from_numpy(np.asarray(labels, np.float32))
        for _ in range(self.params.fine_tune_epochs):
            self.epoch(x, y, optimizer, generator)

    def to_bytes(self) -> bytes:
        import torch

        buffer = io.BytesIO()
        torch.save({"state": self.network.state_dict(), "scaler": json.dumps(asdict(self.scaler)),
                    "params": json.dumps(asdict(self.params))}, buffer)
        return buffer.getvalue()

    @classmethod
    def load(cls, payload: bytes) -> MLPRanker:
        import torch

        state = torch.load(io.BytesIO(payload), weights_only=True)
        scaler = _scaler(json.loads(state["scaler"]))
        raw = json.loads(state["params"])
        params = MLPParams(**{**raw, "hidden": tuple(raw["hidden"])})
        network = _network(scaler.width, params)
        network.load_state_dict(state["state"])
        return cls(network, scaler, params)


def train_mlp(train_x, train_y, valid_x, valid_y, params: MLPParams, epochs: int | None = None,
              progress: Callable[[str], None] | None = None) -> Fitted:
    """Adam on binary cross-entropy; keeps the epoch with the best validation log loss (patience `params.patience`);
    with `epochs`, exactly that many (the refit)."""
    import copy

    import torch

    from models.metrics import log_loss

    started = time.perf_counter()
    torch.manual_seed(params.seed)
    generator = torch.Generator().manual_seed(params.seed)
    scaler = _fit_scaler(train_x)
    ranker = MLPRanker(_network(scaler.width, params), scaler, params)
    optimizer = torch.optim.Adam(ranker.network.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay)
    x = torch.from_numpy(scaler.transform(train_x))
    y = torch.from_numpy(np.asarray(train_y, np.float32))
    curve, train_curve, best_state, best = [], [], None, 0
    for epoch in range(1, (epochs or params.max_epochs) + 1):
        train_curve.append(ranker.epoch(x, y, optimizer, generator))
        if epochs is not None:
            continue
        curve.append(log_loss(valid_y, ranker.predict(valid_x)))
        if progress is not None:
            progress(f"mlp epoch {epoch}: train log loss {train_curve[-1]:.5f}, validation {curve[-1]:.5f}")
        if curve[-1] <= min(curve):
            best, best_state = epoch, copy.deepcopy(ranker.network.state_dict())
        elif epoch - best >= params.patience:
            break
    if best_state is not None:
        ranker.network.load_state_dict(best_state)
    return Fitted(ranker, curve, best if epochs is None else epochs, time.perf_counter() - started, train_curve)


# --- Logistic regression ----------------------------------------------------------------------------------------------


class LogisticRanker(Ranker):
    kind = "logistic"

    def __init__(self, coef: np.ndarray, intercept: float, scaler: Standardizer):
        self.coef, self.intercept, self.scaler = np.asarray(coef, np.float64), float(intercept), scaler

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.scaler.transform(matrix) @ self.coef + self.intercept)))

    def fine_tune(self, matrix: np.ndarray, labels: np.ndarray) -> None:
        raise NotImplementedError("the logistic-regression baseline is refitted, not fine-tuned")

    def to_bytes(self) -> bytes:
        return json.dumps({"coef": self.coef.tolist(), "intercept": self.intercept, "scaler": asdict(self.scaler)}).encode()

    @classmethod
    def load(cls, payload: bytes) -> LogisticRanker:
        state = json.loads(payload)
        return cls(np.asarray(state["coef"]), state["intercept"], _scaler(state["scaler"]))


def train_logistic(train_x, train_y) -> Fitted:
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    scaler = _fit_scaler(train_x)
    model = LogisticRegression(C=1.0, max_iter=1_000).fit(scaler.transform(train_x), train_y)
    return Fitted(LogisticRanker(model.coef_[0], model.intercept_[0], scaler), [], 0, time.perf_counter() - started)
