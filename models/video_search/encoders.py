"""The learned parts of video search: the dual encoder (a query tower over the frozen MiniLM query embedding, a video
tower over averaged frames and the metadata's embedding, trained contrastively on (query, clicked video) pairs) and
the auto-tagger (tags predicted from frames, for videos uploaded without any).

Both are trained with torch and kept as numpy weights: the service runs a matrix product per query, not torch.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.video_search.text import normalize


@dataclass(frozen=True)
class EncoderConfig:
    dim: int = 64
    hidden: int = 256
    epochs: int = 30  # at most: validation picks the best
    batch_size: int = 256
    learning_rate: float = 3e-3
    temperature: float = 0.05
    patience: int = 4
    seed: int = 0


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)).astype(np.float32)


def video_inputs(frames: np.ndarray, metadata_vectors: np.ndarray, tagged: np.ndarray) -> np.ndarray:
    """The video tower's input: mean frame, metadata embedding and whether the video has tags (how far to trust it)."""
    return np.hstack([frames, metadata_vectors, tagged.astype(np.float32)[:, None]]).astype(np.float32)


@dataclass
class DualEncoder:
    """Weights as numpy: query = unit(q W + b); video = unit(relu(x W1 + b1) W2 + b2)."""

    weights: dict[str, np.ndarray]
    config: EncoderConfig = field(default_factory=EncoderConfig)

    def encode_queries(self, text_vectors: np.ndarray) -> np.ndarray:
        w = self.weights
        return _unit(np.asarray(text_vectors, dtype=np.float32) @ w["query.weight"].T + w["query.bias"])

    def encode_videos(self, inputs: np.ndarray) -> np.ndarray:
        w = self.weights
        hidden = np.maximum(inputs @ w["video.0.weight"].T + w["video.0.bias"], 0)
        return _unit(hidden @ w["video.2.weight"].T + w["video.2.bias"])

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **self.weights)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> DualEncoder:
        with np.load(io.BytesIO(data)) as arrays:
            return cls({k: arrays[k] for k in arrays.files})


@dataclass
class TrainingHistory:
    losses: list[float]
    validation: list[float]
    best_epoch: int
    seconds: float
    pairs: int


def train_dual_encoder(query_vectors: np.ndarray, targets: np.ndarray, videos: np.ndarray,
                       validate: Callable[[DualEncoder], float], config: EncoderConfig = EncoderConfig(),
                       progress: Callable[[str], None] | None = None) -> tuple[DualEncoder, TrainingHistory]:
    """Contrastive training on (query, clicked video) pairs: each query against every video of its batch (softmax over
    in-batch videos, cross-entropy; a batch's other clicks on the same video are not counted as negatives). `validate`
    scores an encoder (higher is better) after each epoch; the best epoch's weights are kept."""
    import torch
    from torch import nn

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    class Towers(nn.Module):
        def __init__(self):
            super().__init__()
            self.query = nn.Linear(query_vectors.shape[1], config.dim)
            self.video = nn.Sequential(nn.Linear(videos.shape[1], config.hidden), nn.ReLU(),
                                       nn.Linear(config.hidden, config.dim))

    model = Towers()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=1e-5)
    q_all = torch.from_numpy(np.asarray(query_vectors, dtype=np.float32))
    v_all = torch.from_numpy(np.asarray(videos, dtype=np.float32))
    t_all = torch.from_numpy(np.asarray(targets, dtype=np.int64))

    def snapshot() -> DualEncoder:
        return DualEncoder({k: v.detach().numpy().copy() for k, v in model.state_dict().items()}, config)

    started = time.perf_counter()
    losses, scores, best, best_score, stale = [], [], snapshot(), -np.inf, 0
    for epoch in range(1, config.epochs + 1):
        order = torch.from_numpy(rng.permutation(len(targets)))
        total, batches = 0.0, 0
        model.train()
        for begin in range(0, len(order), config.batch_size):
            batch = order[begin:begin + config.batch_size]
            if len(batch) < 2:
                continue
            target = t_all[batch]
            q = nn.functional.normalize(model.query(q_all[batch]), dim=-1)
            v = nn.functional.normalize(model.video(v_all[target]), dim=-1)
            logits = q @ v.T / config.temperature
            same = target[:, None] == target[None, :]
            logits = logits.masked_fill(same & ~torch.eye(len(batch), dtype=torch.bool), float("-inf"))
            loss = nn.functional.cross_entropy(logits, torch.arange(len(batch)))
            if not torch.isfinite(loss):
                raise ValueError(f"the dual encoder's loss is {float(loss)} in epoch {epoch}: a non-finite input "
                                 "(frame vector or text embedding) reached training")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, batches = total + float(loss.detach()), batches + 1
        model.eval()
        encoder = snapshot()
        score = float(validate(encoder))
        losses.append(total / max(batches, 1))
        scores.append(score)
        if progress is not None:
            progress(f"dual encoder epoch {epoch}: loss {losses[-1]:.4f}, validation MRR@10 {score:.4f}")
        if score > best_score:
            best, best_score, stale = encoder, score, 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    return best, TrainingHistory(losses, scores, int(np.argmax(scores)) + 1, time.perf_counter() - started, len(targets))


@dataclass
class AutoTagger:
    """Tags from a video's mean frame: a one-hidden-layer network with a sigmoid per tag of the vocabulary."""

    vocabulary: list[str]
    weights: dict[str, np.ndarray]
    threshold: float = 0.5
    max_tags: int = 4

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        w = self.weights
        hidden = np.maximum(frames @ w["0.weight"].T + w["0.bias"], 0)
        return 1 / (1 + np.exp(-(hidden @ w["2.weight"].T + w["2.bias"])))

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, vocabulary=np.asarray(self.vocabulary, dtype=str), threshold=np.float32(self.threshold),
                 **{f"w.{k}": v for k, v in self.weights.items()})
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> AutoTagger:
        with np.load(io.BytesIO(data)) as arrays:
            return cls([str(v) for v in arrays["vocabulary"]], {k[2:]: arrays[k] for k in arrays.files if k.startswith("w.")},
                       float(arrays["threshold"]))

    def predict(self, frames: np.ndarray) -> list[str | None]:
        """Comma-separated tags per video (the most probable above the threshold), None when none is."""
        if not len(frames):
            return []
        p = self.probabilities(frames)
        top = np.argsort(-p, axis=1)[:, :self.max_tags]
        out = []
        for row, best in zip(p, top):
            chosen = [self.vocabulary[j] for j in best if row[j] >= self.threshold]
            out.append(",".join(chosen) or None)
        return out


def tag_lists(tags: list[str | None]) -> list[list[str]]:
    return [[t for t in (normalize(x) for x in (g or "").split(",")) if t] for g in tags]


def train_tagger(frames: np.ndarray, tags: list[str | None], min_count: int = 3, epochs: int = 60,
                 seed: int = 0) -> AutoTagger:
    """Learns the tags videos were uploaded with from their frames (tags used at least `min_count` times)."""
    import torch
    from torch import nn

    lists = tag_lists(tags)
    counts: dict[str, int] = {}
    for tl in lists:
        for t in set(tl):
            counts[t] = counts.get(t, 0) + 1
    vocabulary = sorted(t for t, c in counts.items() if c >= min_count)
    if not vocabulary or not len(frames):
        return AutoTagger(vocabulary, {"0.weight": np.zeros((1, frames.shape[1]), np.float32), "0.bias": np.zeros(1, np.float32),
                                       "2.weight": np.zeros((len(vocabulary), 1), np.float32),
                                       "2.bias": np.full(len(vocabulary), -10.0, np.float32)})
    index = {t: i for i, t in enumerate(vocabulary)}
    y = np.zeros((len(lists), len(vocabulary)), dtype=np.float32)
    for row, tl in enumerate(lists):
        for t in tl:
            if t in index:
                y[row, index[t]] = 1
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(frames.shape[1], 128), nn.ReLU(), nn.Linear(128, len(vocabulary)))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-5)
    x_all, y_all = torch.from_numpy(np.asarray(frames, dtype=np.float32)), torch.from_numpy(y)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(y)))
        for begin in range(0, len(order), 512):
            batch = order[begin:begin + 512]
            loss = nn.functional.binary_cross_entropy_with_logits(model(x_all[batch]), y_all[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return AutoTagger(vocabulary, {k: v.detach().numpy().copy() for k, v in model.state_dict().items()})


def tagger_report(tagger: AutoTagger, frames: np.ndarray, tags: list[str | None]) -> dict[str, float]:
    """Precision and recall of the predicted tags against the tags videos were uploaded with (videos with tags)."""
    predicted = [set((p or "").split(",")) - {""} for p in tagger.predict(frames)]
    actual = [set(tl) for tl in tag_lists(tags)]
    hits = sum(len(p & a) for p, a in zip(predicted, actual))
    return {"tagger_precision": hits / max(sum(len(p) for p in predicted), 1),
            "tagger_recall": hits / max(sum(len(a) for a in actual), 1), "tagger_videos": float(len(actual))}
