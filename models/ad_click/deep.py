"""The book's click models in PyTorch: DeepFM and DCN-v2, which learn feature crosses over embeddings of the sparse
ids (user, ad, advertiser) and the categorical fields instead of having them hand-picked, next to the point-in-time
counts. One network with either head (`ClickNet(kind=...)`), trained from scratch or fine-tuned on fresh days.

Inputs are what XGBoost and the serving fast path already build, the encoded design matrix (CategoryEncoder's,
FEATURE_COLUMNS order), plus the three id columns: so the online path feeds the network exactly the matrix it
feeds the booster.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import nn

from models.ad_click.features import CATEGORICAL_FEATURES, FEATURE_COLUMNS, ID_COLUMNS, LABEL, NUMERIC_FEATURES

KINDS = ("deepfm", "dcn")
# Small integer features become fields of their own (an embedding per slot, hour and weekday): their effects on
# the log-odds are not monotone (the hour's is a daily wave), which a dense input would have to approximate.
ORDINAL_FIELDS = {"position": 21, "hour_of_day": 24, "day_of_week": 8}
DENSE_COLUMNS = tuple(c for c in NUMERIC_FEATURES if c not in ORDINAL_FIELDS)
_COLUMN = {c: i for i, c in enumerate(FEATURE_COLUMNS)}


@dataclass(frozen=True)
class DeepParams:
    kind: str = "deepfm"
    embedding_dim: int = 16
    hidden: tuple[int, ...] = (256, 128)
    cross_layers: int = 3
    dropout: float = 0.1
    batch_size: int = 2048
    learning_rate: float = 2e-3
    weight_decay: float = 1e-6
    embedding_l2: float = 1e-4
    max_epochs: int = 3
    checks_per_epoch: int = 4
    patience: int = 2  # validation checks without a better log loss before stopping (the best point is kept)
    # An id needs this many training impressions for a row of its own; rarer ids, and ids first seen after
    # training, share hashed rows (about one per `ids_per_bucket` vocabulary ids), which a fine-tune can train.
    min_id_count: int = 3
    ids_per_bucket: int = 8
    fine_tune_learning_rate: float = 5e-4
    fine_tune_epochs: int = 1
    threads: int = 2
    seed: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")

    @classmethod
    def from_dict(cls, values: dict) -> DeepParams:
        return cls(**{**values, "hidden": tuple(values.get("hidden", cls.hidden))})


class IdVocabulary:
    """One id field's rows: 0 for a missing id, 1..n for the ids seen often enough in training, then `buckets`
    rows shared by every other id through a stable hash (crc32), so a new ad gets a row that fine-tuning trains."""

    def __init__(self, ids: Sequence[str], buckets: int) -> None:
        self.ids, self.buckets = list(ids), int(buckets)
        self._enum = pl.Enum(self.ids)
        self._index = {v: i + 1 for i, v in enumerate(self.ids)}

    @classmethod
    def fit(cls, values: pl.Series, min_count: int, ids_per_bucket: int) -> IdVocabulary:
        counts = values.drop_nulls().value_counts()
        ids = counts.filter(pl.col("count") >= min_count)[values.name].sort().to_list()
        return cls(ids, max(16, len(ids) // ids_per_bucket))

    @property
    def size(self) -> int:
        return 1 + len(self.ids) + self.buckets

    def _bucket(self, value: str) -> int:
        return 1 + len(self.ids) + zlib.crc32(value.encode()) % self.buckets

    def encode(self, values: pl.Series) -> np.ndarray:
        codes = values.cast(pl.String).cast(self._enum, strict=False).to_physical().cast(pl.Int64) + 1
        unseen = values.is_not_null() & codes.is_null()
        if unseen.any():
            frame = pl.DataFrame({"v": values.cast(pl.String), "c": codes})
            others = frame.filter(unseen)["v"].unique()
            hashed = pl.DataFrame({"v": others, "h": [self._bucket(v) for v in others]},
                                  schema={"v": pl.String, "h": pl.Int64})
            codes = frame.join(hashed, on="v", how="left", maintain_order="left").select(
                pl.coalesce("c", "h"))["c"]
        return codes.fill_null(0).to_numpy()

    def encode_list(self, values: Sequence[str | None]) -> np.ndarray:
        """The serving form: a handful of ids, no polars."""
        return np.array([0 if v is None else self._index.get(v) or self._bucket(v) for v in values], dtype=np.int64)


@dataclass
class DeepInputs:
    """The network's tensors for a batch of rows: field indices (already offset into one table) and dense values."""

    sparse: torch.Tensor  # int64 [n, fields]
    dense: torch.Tensor  # float32 [n, dense width]

    def __len__(self) -> int:
        return self.sparse.shape[0]

    def rows(self, index: torch.Tensor) -> DeepInputs:
        return DeepInputs(self.sparse[index], self.dense[index])


class DeepEncoder:
    """From the design matrix and the id columns to DeepInputs: categorical codes and ordinals as field indices,
    counts on a log scale, every dense column standardized on the training rows, with a missing flag where the
    training rows had gaps. Fitted once on the training days; a fine-tune keeps it, so the rows keep their meaning."""

    def __init__(self, vocabularies: dict[str, list[str]], ids: dict[str, IdVocabulary], mean: list[float],
                 scale: list[float], nullable: list[str]) -> None:
        self.vocabularies, self.ids = vocabularies, ids
        self.mean, self.scale = np.asarray(mean, dtype=np.float32), np.asarray(scale, dtype=np.float32)
        self.nullable = list(nullable)
        sizes = [1 + len(vocabularies[c]) for c in CATEGORICAL_FEATURES]
        sizes += [n + 1 for n in ORDINAL_FIELDS.values()]
        sizes += [ids[c].size for c in ID_COLUMNS]
        self.field_sizes = sizes
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._categorical = np.array([_COLUMN[c] for c in CATEGORICAL_FEATURES])
        self._ordinal = np.array([_COLUMN[c] for c in ORDINAL_FIELDS])
        self._ordinal_max = np.array(list(ORDINAL_FIELDS.values()), dtype=np.float32) - 1
        self._dense = np.array([_COLUMN[c] for c in DENSE_COLUMNS])
        self._logged = np.array(["_ctr_" not in c for c in DENSE_COLUMNS])
        self._nullable = np.array([DENSE_COLUMNS.index(c) for c in self.nullable], dtype=np.intp)

    @property
    def dense_width(self) -> int:
        return len(DENSE_COLUMNS) + len(self.nullable)

    @classmethod
    def fit(cls, vocabularies: dict[str, list[str]], matrix: np.ndarray, ids: pl.DataFrame, params: DeepParams
            ) -> DeepEncoder:
        raw = _dense_values(matrix[:, [_COLUMN[c] for c in DENSE_COLUMNS]],
                            np.array(["_ctr_" not in c for c in DENSE_COLUMNS]))
        nullable = [c for c, gap in zip(DENSE_COLUMNS, np.isnan(raw).any(axis=0)) if gap]
        mean = np.nan_to_num(np.nanmean(raw, axis=0))
        scale = np.nan_to_num(np.nanstd(raw, axis=0))
        scale[scale < 1e-6] = 1.0
        id_vocabularies = {c: IdVocabulary.fit(ids[c], params.min_id_count, params.ids_per_bucket) for c in ID_COLUMNS}
        return cls(vocabularies, id_vocabularies, mean.tolist(), scale.tolist(), nullable)

    def inputs(self, matrix: np.ndarray, id_codes: np.ndarray) -> DeepInputs:
        """`matrix`: CategoryEncoder's float32 design matrix; `id_codes`: [n, 3] rows of each id vocabulary."""
        categorical = matrix[:, self._categorical]
        categorical = np.where(np.isnan(categorical), 0, categorical + 1)
        ordinal = matrix[:, self._ordinal]
        ordinal = np.where(np.isnan(ordinal), 0, np.clip(np.rint(ordinal), 0, self._ordinal_max) + 1)
        sparse = np.concatenate([categorical, ordinal], axis=1).astype(np.int64)
        sparse = np.concatenate([sparse, id_codes.astype(np.int64)], axis=1) + self.offsets
        raw = _dense_values(matrix[:, self._dense], self._logged)
        missing = np.isnan(raw[:, self._nullable]).astype(np.float32)
        dense = np.nan_to_num((raw - self.mean) / self.scale, nan=0.0, posinf=0.0, neginf=0.0)
        dense = np.clip(dense, -10, 10)
        return DeepInputs(torch.from_numpy(sparse), torch.from_numpy(np.concatenate([dense, missing], axis=1)
                                                                       .astype(np.float32)))

    def id_codes(self, ids: pl.DataFrame) -> np.ndarray:
        return np.stack([self.ids[c].encode(ids[c]) for c in ID_COLUMNS], axis=1)

    def id_codes_of(self, values: dict[str, Sequence[str | None]]) -> np.ndarray:
        return np.stack([self.ids[c].encode_list(values[c]) for c in ID_COLUMNS], axis=1)

    def state(self) -> dict:
        return {
            "vocabularies": self.vocabularies,
            "ids": {c: {"ids": v.ids, "buckets": v.buckets} for c, v in self.ids.items()},
            "mean": self.mean.tolist(), "scale": self.scale.tolist(), "nullable": self.nullable,
        }

    @classmethod
    def from_state(cls, state: dict) -> DeepEncoder:
        ids = {c: IdVocabulary(v["ids"], v["buckets"]) for c, v in state["ids"].items()}
        return cls(state["vocabularies"], ids, state["mean"], state["scale"], state["nullable"])


def _dense_values(values: np.ndarray, logged: np.ndarray) -> np.ndarray:
    values = values.astype(np.float32, copy=True)
    values[:, logged] = np.sign(values[:, logged]) * np.log1p(np.abs(values[:, logged]))
    return values


def _mlp(width: int, hidden: Sequence[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
        width = size
    return nn.Sequential(*layers)


class ClickNet(nn.Module):
    """`deepfm`: a first-order term, a factorization machine's pairwise products of every field's embedding (the
    dense values projected as one more field) and a deep MLP, summed. `dcn` (DCN-v2): cross layers
    x_{l+1} = x0 * (W x_l + b) + x_l over the concatenated embeddings and dense values, beside a deep MLP."""

    def __init__(self, kind: str, field_sizes: Sequence[int], dense_width: int, params: DeepParams) -> None:
        super().__init__()
        self.kind = kind
        dim, fields = params.embedding_dim, len(field_sizes)
        self.embedding = nn.Embedding(int(sum(field_sizes)), dim)
        nn.init.normal_(self.embedding.weight, std=0.01)
        width = fields * dim + dense_width
        self.deep = _mlp(width, params.hidden, params.dropout)
        if kind == "deepfm":
            self.first_order = nn.Embedding(int(sum(field_sizes)), 1)
            nn.init.zeros_(self.first_order.weight)
            self.dense_linear = nn.Linear(dense_width, 1)
            self.dense_field = nn.Linear(dense_width, dim, bias=False)
            self.head = nn.Linear(params.hidden[-1], 1)
        else:
            self.cross = nn.ModuleList(nn.Linear(width, width) for _ in range(params.cross_layers))
            for layer in self.cross:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
            self.head = nn.Linear(width + params.hidden[-1], 1)

    def forward(self, inputs: DeepInputs) -> torch.Tensor:
        embedded = self.embedding(inputs.sparse)  # [n, fields, dim]
        x0 = torch.cat([embedded.flatten(1), inputs.dense], dim=1)
        deep = self.deep(x0)
        if self.kind == "deepfm":
            fields = torch.cat([embedded, self.dense_field(inputs.dense).unsqueeze(1)], dim=1)
            square_of_sum = fields.sum(dim=1).pow(2)
            sum_of_squares = fields.pow(2).sum(dim=1)
            pairwise = 0.5 * (square_of_sum - sum_of_squares).sum(dim=1, keepdim=True)
            first = self.first_order(inputs.sparse).sum(dim=1) + self.dense_linear(inputs.dense)
            return (first + pairwise + self.head(deep)).squeeze(1)
        x = x0
        for layer in self.cross:
            x = x0 * layer(x) + x
        return self.head(torch.cat([x, deep], dim=1)).squeeze(1)


@dataclass
class DeepClickModel:
    """A trained network with the encoders it was trained with: what MLflow logs and the service scores with."""

    net: ClickNet
    encoder: DeepEncoder
    params: DeepParams
    # Platt scaling of the network's log-odds, sigmoid(scale * z + shift); (1, 0) when it did not help (calibrate).
    calibration: tuple[float, float] = (1.0, 0.0)

    def logits(self, matrix: np.ndarray, id_codes: np.ndarray, batch_size: int = 65_536) -> np.ndarray:
        self.net.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, matrix.shape[0], batch_size):
                inputs = self.encoder.inputs(matrix[start:start + batch_size], id_codes[start:start + batch_size])
                out.append(self.net(inputs).numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def predict(self, matrix: np.ndarray, id_codes: np.ndarray, batch_size: int = 65_536) -> np.ndarray:
        scale, shift = self.calibration
        return 1.0 / (1.0 + np.exp(-(scale * self.logits(matrix, id_codes, batch_size) + shift)))

    def inputs_of(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(design matrix, id codes) of feature rows with their ids: the batch path's inputs."""
        return design(frame, self.encoder.vocabularies), self.encoder.id_codes(frame.select(ID_COLUMNS))

    def predict_frame(self, frame: pl.DataFrame) -> np.ndarray:
        return self.predict(*self.inputs_of(frame))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), folder / "net.pt")
        (folder / "encoder.json").write_text(json.dumps(self.encoder.state()))
        (folder / "params.json").write_text(json.dumps(asdict(self.params)))
        (folder / "calibration.json").write_text(json.dumps(list(self.calibration)))

    @classmethod
    def load(cls, folder: Path) -> DeepClickModel:
        params = DeepParams.from_dict(json.loads((folder / "params.json").read_text()))
        encoder = DeepEncoder.from_state(json.loads((folder / "encoder.json").read_text()))
        net = ClickNet(params.kind, encoder.field_sizes, encoder.dense_width, params)
        net.load_state_dict(torch.load(folder / "net.pt", weights_only=True))
        net.eval()
        calibration = folder / "calibration.json"
        return cls(net, encoder, params, tuple(json.loads(calibration.read_text())) if calibration.exists() else (1.0, 0.0))


@dataclass(frozen=True)
class Epoch:
    """A point of the learning curve: `epoch` counts passes over the training rows (1.25 is a quarter into the
    second); the train log loss is the mean over the batches since the previous point."""

    epoch: float
    train_log_loss: float
    validation_log_loss: float
    seconds: float


@dataclass(frozen=True)
class Calibration:
    """Whether Platt scaling helped: fitted on the first half of the validation rows (by time), judged on the second."""

    scale: float
    shift: float
    log_loss_before: float  # on the second half, the network as trained
    log_loss_after: float  # on the second half, with the scaling fitted on the first
    kept: bool


def _platt(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The (scale, shift) minimising the log loss of sigmoid(scale * z + shift): Newton's method on two parameters,
    each step halved until the loss falls (a full step can overshoot on log-odds far from calibrated)."""
    scale, shift = 1.0, 0.0
    loss = _log_loss_of(z, y)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(scale * z + shift)))
        gradient = np.array([np.sum((p - y) * z), np.sum(p - y)])
        w = p * (1 - p)
        hessian = np.array([[np.sum(w * z * z), np.sum(w * z)], [np.sum(w * z), np.sum(w)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        for _ in range(40):
            trial = _log_loss_of(z, y, scale - step[0], shift - step[1])
            if trial <= loss:
                break
            step = step / 2
        else:
            break
        scale, shift, improved = scale - step[0], shift - step[1], loss - trial
        loss = trial
        if improved < 1e-12:
            break
    return float(scale), float(shift)


def _log_loss_of(z: np.ndarray, y: np.ndarray, scale: float = 1.0, shift: float = 0.0) -> float:
    p = np.clip(1.0 / (1.0 + np.exp(-(scale * z + shift))), 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def calibrate(model: DeepClickModel, validation: pl.DataFrame) -> Calibration:
    """Platt scaling where it helps: fitted on the earlier half of the validation rows and kept (refitted on all of
    them) only if it lowers the log loss of the later half, which it did not see. Early stopping on the log loss
    already calibrates a network roughly; this corrects what is left, such as a base rate that moved."""
    ordered = validation.sort("ts")
    z = model.logits(*model.inputs_of(ordered))
    y = ordered[LABEL].to_numpy().astype(np.float64)
    half = len(y) // 2
    scale, shift = _platt(z[:half], y[:half])
    before, after = _log_loss_of(z[half:], y[half:]), _log_loss_of(z[half:], y[half:], scale, shift)
    kept = after < before
    if kept:
        model.calibration = _platt(z, y)
    return Calibration(*model.calibration, before, after, kept) if kept else Calibration(scale, shift, before, after, False)


def design(frame: pl.DataFrame, vocabularies: dict[str, list[str]]) -> np.ndarray:
    from models.ad_click.train import CategoryEncoder

    return CategoryEncoder(vocabularies).transform(frame)


def train_click_net(
    train: pl.DataFrame,
    validation: pl.DataFrame,
    vocabularies: dict[str, list[str]],
    params: DeepParams,
    on_epoch: Callable[[Epoch], None] | None = None,
) -> tuple[DeepClickModel, list[Epoch]]:
    """Trains from scratch on the training rows, stops on the validation log loss and keeps the best epoch."""
    torch.manual_seed(params.seed)
    matrix = design(train, vocabularies)
    encoder = DeepEncoder.fit(vocabularies, matrix, train.select(ID_COLUMNS), params)
    net = ClickNet(params.kind, encoder.field_sizes, encoder.dense_width, params)
    model = DeepClickModel(net, encoder, params)
    data = _tensors(model, train, matrix)
    # The output starts at the base rate's log-odds, so the first steps learn effects rather than the rate.
    rate = min(max(float(data[1].mean()), 1e-4), 1 - 1e-4)
    with torch.no_grad():
        net.head.bias.fill_(math.log(rate / (1 - rate)))
    curve = _fit(model, data, _tensors(model, validation), params.learning_rate,
                 params.max_epochs, params.patience, on_epoch)
    return model, curve


def fine_tune(
    model: DeepClickModel,
    fresh: pl.DataFrame,
    validation: pl.DataFrame | None = None,
    on_epoch: Callable[[Epoch], None] | None = None,
) -> tuple[DeepClickModel, list[Epoch]]:
    """Continual learning: the same network trained further on fresh rows at a lower rate, for a pass or two, with
    its encoders unchanged (a new id lands in a hashed row, which this trains). The original is left as it was."""
    import copy

    # The champion's calibration goes with it: the fresh rows are too few to refit it on.
    tuned = DeepClickModel(copy.deepcopy(model.net), model.encoder, model.params, model.calibration)
    params = model.params
    held = _tensors(tuned, validation) if validation is not None and validation.height else None
    curve = _fit(tuned, _tensors(tuned, fresh), held, params.fine_tune_learning_rate, params.fine_tune_epochs,
                 params.fine_tune_epochs * params.checks_per_epoch, on_epoch)
    return tuned, curve


def _tensors(model: DeepClickModel, frame: pl.DataFrame, matrix: np.ndarray | None = None
             ) -> tuple[DeepInputs, torch.Tensor]:
    if matrix is None:
        matrix = design(frame, model.encoder.vocabularies)
    inputs = model.encoder.inputs(matrix, model.encoder.id_codes(frame.select(ID_COLUMNS)))
    return inputs, torch.from_numpy(frame[LABEL].to_numpy().astype(np.float32))


def _log_loss(net: ClickNet, data: tuple[DeepInputs, torch.Tensor], batch_size: int = 65_536) -> float:
    inputs, y = data
    net.eval()
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            index = torch.arange(start, min(start + batch_size, len(inputs)))
            logits = net(inputs.rows(index))
            total += float(nn.functional.binary_cross_entropy_with_logits(logits, y[index], reduction="sum"))
    return total / max(1, len(inputs))


def _fit(model: DeepClickModel, train: tuple[DeepInputs, torch.Tensor], validation, learning_rate: float,
         max_epochs: int, patience: int, on_epoch) -> list[Epoch]:
    """Adam over shuffled batches; with validation rows, judged `checks_per_epoch` times an epoch and stopped after
    `patience` checks without a better log loss, keeping the best weights. Click networks overfit sharply once they
    see rows a second time (their id embeddings memorise), so the best point is often inside the first epoch."""
    params, net = model.params, model.net
    torch.set_num_threads(params.threads)
    optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=params.weight_decay)
    generator = torch.Generator().manual_seed(params.seed)
    inputs, y = train
    checks = params.checks_per_epoch if validation is not None else 1
    curve: list[Epoch] = []
    best, best_state, waited = math.inf, None, 0
    for epoch in range(max_epochs):
        order = torch.randperm(len(inputs), generator=generator)
        batches = list(range(0, len(order), params.batch_size))
        bounds = np.linspace(0, len(batches), checks + 1).round().astype(int)
        for check in range(checks):
            started = time.perf_counter()
            net.train()
            total, seen = 0.0, 0
            for start in batches[bounds[check]:bounds[check + 1]]:
                index = order[start:start + params.batch_size]
                batch = inputs.rows(index)
                loss = nn.functional.binary_cross_entropy_with_logits(net(batch), y[index])
                total += loss.item() * len(index)
                seen += len(index)
                if params.embedding_l2:
                    # L2 on the rows this batch used: a rare id's row is pulled to zero as often as it is seen.
                    loss = loss + params.embedding_l2 * net.embedding(batch.sparse).pow(2).sum(dim=(1, 2)).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            validation_loss = _log_loss(net, validation) if validation is not None else math.nan
            record = Epoch(round(epoch + (check + 1) / checks, 3), total / max(1, seen), validation_loss,
                           time.perf_counter() - started)
            curve.append(record)
            if on_epoch:
                on_epoch(record)
            if validation is None:
                continue
            if validation_loss < best - 1e-6:
                best, waited = validation_loss, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                waited += 1
                if waited >= patience:
                    break
        if validation is not None and waited >= patience:
            break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return curve
