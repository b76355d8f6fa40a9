"""The two-tower retrieval model (PyTorch): a user tower and a video tower meeting in one embedding space.

User tower: id, age, gender, country, and the user's recent relevant videos (their ids and tags). Video tower:
id, tags, language, duration. Trained on relevant views with in-batch negatives (sampled softmax with a
log-popularity correction, so popular videos are not favoured merely for being frequent negatives). Ids are
dropped at random during training so the towers also learn to embed new users and new videos from features.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl
import torch
from torch import nn
from torch.nn import functional as F

from models.video_rec.features import HISTORY_LENGTH

MAX_TAGS = 6
AGE_EDGES = [18, 25, 35, 45, 55, 65]
DURATION_EDGES = [math.log(s) for s in (30, 60, 120, 300, 600, 1200, 2400)]


@dataclass
class Vocabulary:
    """Index 0 of every table means unknown (or padding): unseen users, new videos, new tags."""

    users: list[str]
    videos: list[str]
    tags: list[str]
    languages: list[str]
    countries: list[str]
    genders: list[str]

    def lookup(self, table: str) -> dict[str, int]:
        cache = self.__dict__.setdefault("_lookups", {})
        if table not in cache:
            cache[table] = {value: i + 1 for i, value in enumerate(getattr(self, table))}
        return cache[table]

    def state(self) -> dict:
        return asdict(self)

    @classmethod
    def fit(cls, users: pl.DataFrame, videos: pl.DataFrame) -> Vocabulary:
        def values(series: pl.Series) -> list[str]:
            return sorted(series.drop_nulls().unique().to_list())

        return cls(
            users=values(users["user_id"]),
            videos=values(videos["video_id"]),
            tags=values(videos["tags"].explode()),
            languages=values(videos["language"]),
            countries=values(users["country"]),
            genders=values(users["gender"]),
        )


def _index(values: pl.Series, lookup: dict[str, int]) -> np.ndarray:
    return values.replace_strict(lookup, default=0, return_dtype=pl.Int64).fill_null(0).to_numpy()


def _buckets(values: pl.Series, edges: list[float]) -> np.ndarray:
    """1..len(edges)+1 by value, 0 when missing."""
    array = values.cast(pl.Float64).to_numpy()
    return np.where(np.isnan(array), 0, np.digitize(np.nan_to_num(array), edges) + 1)


def _padded(lists: pl.Series, lookup: dict[str, int], width: int, keep_last: bool = False) -> np.ndarray:
    """A list column as a (rows, width) index matrix, 0-padded; long lists keep their first (or last) items."""
    rows = lists.to_list()
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, items in enumerate(rows):
        if not items:
            continue
        items = items[-width:] if keep_last else items[:width]
        out[i, : len(items)] = [lookup.get(x, 0) for x in items]
    return out


@dataclass
class EncodedVideos:
    ids: np.ndarray
    tags: np.ndarray
    language: np.ndarray
    duration: np.ndarray

    def tensors(self, rows: np.ndarray | slice = slice(None)) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.ascontiguousarray(v[rows])) for k, v in asdict(self).items()}


@dataclass
class EncodedUsers:
    ids: np.ndarray
    age: np.ndarray
    gender: np.ndarray
    country: np.ndarray
    history: np.ndarray  # (users, HISTORY_LENGTH) video indexes
    history_tags: np.ndarray  # (users, HISTORY_LENGTH * MAX_TAGS) tag indexes

    def tensors(self, rows: np.ndarray | slice = slice(None)) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.ascontiguousarray(v[rows])) for k, v in asdict(self).items()}


def encode_videos(vocab: Vocabulary, videos: pl.DataFrame) -> EncodedVideos:
    return EncodedVideos(
        ids=_index(videos["video_id"], vocab.lookup("videos")),
        tags=_padded(videos["tags"], vocab.lookup("tags"), MAX_TAGS),
        language=_index(videos["language"], vocab.lookup("languages")),
        duration=_buckets(videos["log_duration"], DURATION_EDGES),
    )


def video_tag_lookup(videos: pl.DataFrame) -> dict[str, list[str]]:
    return dict(zip(videos["video_id"].to_list(), videos["tags"].to_list()))


def encode_users(vocab: Vocabulary, profiles: pl.DataFrame, video_tags: dict[str, list[str]]) -> EncodedUsers:
    """`profiles` has user_id, age, gender, country and history (video ids, oldest first)."""
    history = profiles["history"]
    tag_lists = pl.Series(
        [[t for v in (h or [])[-HISTORY_LENGTH:] for t in (video_tags.get(v) or [])[:MAX_TAGS]] for h in history.to_list()],
        dtype=pl.List(pl.String),
    )
    return EncodedUsers(
        ids=_index(profiles["user_id"], vocab.lookup("users")),
        age=_buckets(profiles["age"], AGE_EDGES),
        gender=_index(profiles["gender"], vocab.lookup("genders")),
        country=_index(profiles["country"], vocab.lookup("countries")),
        history=_padded(history, vocab.lookup("videos"), HISTORY_LENGTH, keep_last=True),
        history_tags=_padded(tag_lists, vocab.lookup("tags"), HISTORY_LENGTH * MAX_TAGS, keep_last=True),
    )


@dataclass
class TwoTowerConfig:
    dim: int = 32
    hidden: int = 128
    temperature: float = 0.07
    epochs: int = 20
    batch_size: int = 1024
    # Measured on the default simulation (2 cores): 3e-3 with patience 3 peaked at epoch 11 of 14 (recall@100 0.426,
    # 63 s); 6e-3 with patience 2 peaks at epoch 7 of 9 (0.434, 40 s).
    learning_rate: float = 6e-3
    weight_decay: float = 1e-5
    id_dropout: float = 0.2  # share of training rows whose user or video id is hidden (cold-start practice)
    # Weight of the log-frequency (logQ) correction of in-batch negatives: 1 the unbiased softmax, 0 none (popular
    # videos then score higher, as frequent negatives push them down less).
    popularity_correction: float = 1.0
    patience: int = 2
    seed: int = 0


class TwoTower(nn.Module):
    def __init__(self, vocab: Vocabulary, config: TwoTowerConfig):
        super().__init__()
        self.config = config  # saved with the weights: the shapes depend on it
        d = config.dim
        self.user_id = nn.Embedding(len(vocab.users) + 1, d)
        self.video_id = nn.Embedding(len(vocab.videos) + 1, d)
        # Bags (means over a row's non-padding indexes) gather and reduce in one kernel: a user's 300 history tags
        # through a plain embedding and a masked mean made each epoch three times slower. Same weights, same keys.
        self.history_id = nn.EmbeddingBag(len(vocab.videos) + 1, d, mode="mean", padding_idx=0)
        self.tag = nn.EmbeddingBag(len(vocab.tags) + 1, d, mode="mean", padding_idx=0)
        self.language = nn.Embedding(len(vocab.languages) + 1, 8)
        self.country = nn.Embedding(len(vocab.countries) + 1, 8)
        self.gender = nn.Embedding(len(vocab.genders) + 1, 4)
        self.age = nn.Embedding(len(AGE_EDGES) + 2, 4)
        self.duration = nn.Embedding(len(DURATION_EDGES) + 2, 4)
        self.user_mlp = nn.Sequential(nn.Linear(3 * d + 16, config.hidden), nn.ReLU(), nn.Linear(config.hidden, d))
        self.video_mlp = nn.Sequential(nn.Linear(2 * d + 12, config.hidden), nn.ReLU(), nn.Linear(config.hidden, d))

    def users(self, ids, age, gender, country, history, history_tags) -> torch.Tensor:
        x = torch.cat(
            [
                self.user_id(ids),
                self.history_id(history),
                self.tag(history_tags),
                self.age(age),
                self.gender(gender),
                self.country(country),
            ],
            dim=1,
        )
        return F.normalize(self.user_mlp(x), dim=1)

    def videos(self, ids, tags, language, duration) -> torch.Tensor:
        x = torch.cat([self.video_id(ids), self.tag(tags), self.language(language), self.duration(duration)], 1)
        return F.normalize(self.video_mlp(x), dim=1)


@dataclass
class TrainingExamples:
    """One row per relevant view: the user as they were just before it, and the video."""

    users: EncodedUsers
    videos: EncodedVideos
    log_frequency: np.ndarray  # log of each example video's share of all examples (the sampling correction)


def training_examples(
    vocab: Vocabulary, positives: pl.DataFrame, users: pl.DataFrame, videos: pl.DataFrame
) -> TrainingExamples:
    """`positives`: relevant views (user_id, video_id, ts). Each example's history is the user's earlier relevant
    views only, so the model never sees the video it must predict in the user's history."""
    ordered = positives.sort("user_id", "ts").join(users, on="user_id", how="left", maintain_order="left")
    video_index = _index(ordered["video_id"], vocab.lookup("videos"))
    user_codes = ordered["user_id"].to_numpy()
    starts = np.r_[0, np.flatnonzero(user_codes[1:] != user_codes[:-1]) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(ordered)]))
    rows = np.arange(len(ordered))
    offsets = np.arange(-HISTORY_LENGTH, 0)
    previous = rows[:, None] + offsets[None, :]
    valid = previous >= group_start[:, None]
    history = np.where(valid, video_index[np.clip(previous, 0, None)], 0)
    tags_by_index = np.zeros((len(vocab.videos) + 1, MAX_TAGS), dtype=np.int64)
    encoded_catalogue = encode_videos(vocab, videos)
    tags_by_index[encoded_catalogue.ids] = encoded_catalogue.tags
    tags_by_index[0] = 0
    history_tags = tags_by_index[history].reshape(len(ordered), -1)
    encoded_users = EncodedUsers(
        ids=_index(ordered["user_id"], vocab.lookup("users")),
        age=_buckets(ordered["age"], AGE_EDGES),
        gender=_index(ordered["gender"], vocab.lookup("genders")),
        country=_index(ordered["country"], vocab.lookup("countries")),
        history=history,
        history_tags=history_tags,
    )
    by_id = videos.select("video_id", "tags", "language", "log_duration")
    example_videos = ordered.select("video_id").join(by_id, on="video_id", how="left", maintain_order="left")
    counts = np.bincount(video_index, minlength=len(vocab.videos) + 1)
    log_frequency = np.log(counts[video_index] / len(video_index))
    return TrainingExamples(encoded_users, encode_videos(vocab, example_videos), log_frequency)


@dataclass
class TrainingReport:
    losses: list[float] = field(default_factory=list)
    validation: list[float] = field(default_factory=list)  # the validation callback's metric per epoch
    best_epoch: int = 0
    seconds: float = 0.0


def train_two_tower(
    vocab: Vocabulary,
    examples: TrainingExamples,
    config: TwoTowerConfig,
    validate: Callable[[TwoTower], float] | None = None,
    progress: Callable[[str], None] = print,
) -> tuple[TwoTower, TrainingReport]:
    """Sampled softmax over in-batch negatives; keeps the epoch with the best validation metric (higher is better)."""
    torch.manual_seed(config.seed)
    generator = np.random.default_rng(config.seed)
    model = TwoTower(vocab, config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    n = len(examples.log_frequency)
    report = TrainingReport()
    best_state, best_metric, started = None, -math.inf, time.monotonic()
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = generator.permutation(n)
        total = 0.0
        for begin in range(0, n, config.batch_size):
            rows = order[begin : begin + config.batch_size]
            if len(rows) < 2:
                continue
            users = examples.users.tensors(rows)
            videos = examples.videos.tensors(rows)
            users["ids"] = users["ids"] * (torch.rand(len(rows)) >= config.id_dropout)
            videos["ids"] = videos["ids"] * (torch.rand(len(rows)) >= config.id_dropout)
            u, v = model.users(**users), model.videos(**videos)
            correction = config.popularity_correction * torch.from_numpy(examples.log_frequency[rows]).float()
            logits = u @ v.T / config.temperature - correction[None, :]
            # The same video twice in a batch is not a negative of itself.
            same = videos["ids"][None, :] == videos["ids"][:, None]
            same &= ~torch.eye(len(rows), dtype=torch.bool)
            same &= videos["ids"][None, :] > 0
            loss = F.cross_entropy(logits.masked_fill(same, -1e9), torch.arange(len(rows)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        report.losses.append(total / n)
        metric = validate(model) if validate else -report.losses[-1]
        report.validation.append(metric)
        progress(f"epoch {epoch}/{config.epochs}: loss {report.losses[-1]:.4f}, validation {metric:.4f} "
                 f"({time.monotonic() - started:.0f}s)")
        if metric > best_metric:
            best_metric, report.best_epoch = metric, epoch
            best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
        elif epoch - report.best_epoch >= config.patience:
            progress(f"early stop: no better validation for {config.patience} epochs")
            break
    model.load_state_dict(best_state)
    model.eval()
    report.seconds = time.monotonic() - started
    return model, report


@torch.no_grad()
def embed_videos(model: TwoTower, encoded: EncodedVideos, batch: int = 65_536) -> np.ndarray:
    model.eval()
    n = len(encoded.ids)
    parts = [model.videos(**encoded.tensors(slice(i, i + batch))).numpy() for i in range(0, n, batch)]
    return np.concatenate(parts) if parts else np.zeros((0, model.video_id.embedding_dim), dtype=np.float32)


@torch.no_grad()
def embed_users(model: TwoTower, encoded: EncodedUsers, batch: int = 8_192) -> np.ndarray:
    model.eval()
    n = len(encoded.ids)
    parts = [model.users(**encoded.tensors(slice(i, i + batch))).numpy() for i in range(0, n, batch)]
    return np.concatenate(parts) if parts else np.zeros((0, model.user_id.embedding_dim), dtype=np.float32)


def save(model: TwoTower, vocab: Vocabulary, path) -> None:
    torch.save({"state_dict": model.state_dict(), "vocab": vocab.state(), "config": asdict(model.config)}, path)


def load(path) -> tuple[TwoTower, Vocabulary, TwoTowerConfig]:
    saved = torch.load(path, weights_only=True)
    vocab, config = Vocabulary(**saved["vocab"]), TwoTowerConfig(**saved["config"])
    model = TwoTower(vocab, config)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return model, vocab, config
