"""Listing embeddings from search sessions: skip-gram with negative sampling over click sentences, the book's way.

The book's two changes to word2vec (Grbovic and Cheng, "Real-time Personalization using Embeddings for Search
Ranking at Airbnb", KDD 2018):
- the booked listing is a *global context*: a positive for every listing clicked in a session that ended in that
  booking, whatever the window, so what guests finally book pulls together what they looked at;
- *hard negatives* from the same city as the centre listing: random negatives are mostly in other cities, which
  location alone tells apart, so they teach nothing about choosing within a city, which is what similar listings do.

gensim's Word2Vec trains the plain skip-gram (the reference) but cannot express either change: its loss draws
negatives from one global unigram table and its contexts are the sliding window only. So the book's variant is a
small PyTorch model; with both changes off it is plain skip-gram again, which the tests use to check it against
gensim.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import nn


@dataclass(frozen=True)
class SkipGramConfig:
    dim: int = 32
    window: int = 3  # clicks on either side
    # Negatives per positive: 3 random and 3 from the centre's city. On the default simulation's validation window
    # 3 + 3 reached a mean booked rank of 4.86, 5 + 5 4.88, and 10 + 5 4.86 at twice the training time.
    negatives: int = 3  # random ones
    # How random negatives are drawn: "uniform", or "unigram" (clicks^0.75, as word2vec does, which takes how often a
    # listing is clicked out of what the vectors learn: README says why this project draws them uniformly).
    negative_sampling: str = "uniform"
    hard_negatives: int = 3  # from the centre listing's city; 0: none
    booked_context: bool = True
    min_clicks: int = 2  # listings clicked fewer times get the cold-start vector instead
    epochs: int = 15  # at most: validation picks the best
    patience: int = 4  # the validation curve is flat and noisy near its best: three epochs stopped it early
    batch_size: int = 4096
    learning_rate: float = 0.01
    seed: int = 0

    @property
    def plain(self) -> SkipGramConfig:
        return replace(self, hard_negatives=0, booked_context=False)


@dataclass
class Trained:
    """Learned listing vectors (`ids` order) and how training went."""

    ids: list[str]
    vectors: np.ndarray  # centre ("input") vectors: the query side
    config: SkipGramConfig
    losses: list[float]
    validation: list[float]  # one per epoch, lower is better (the mean rank of the booked listing)
    best_epoch: int
    seconds: float
    pairs: int
    state: dict | None = None  # the network's weights, to fine-tune from

    @property
    def context_vectors(self) -> np.ndarray:
        """The context ("output") vectors: centre · context estimates how likely two listings are clicked together."""
        return self.state["context.weight"].numpy()

    def save(self, path: Path) -> None:
        torch.save({"ids": self.ids, "vectors": torch.from_numpy(self.vectors), "config": asdict(self.config),
                    "state": self.state}, path)

    @classmethod
    def load(cls, path: Path) -> Trained:
        saved = torch.load(path, weights_only=True)  # ids, a config dict and tensors: nothing to unpickle
        return cls(ids=list(saved["ids"]), vectors=saved["vectors"].numpy(), config=SkipGramConfig(**saved["config"]),
                   losses=[], validation=[], best_epoch=0, seconds=0.0, pairs=0, state=saved["state"])


class SkipGram(nn.Module):
    def __init__(self, listings: int, dim: int, seed: int):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.centre = nn.Embedding(listings, dim)
        self.context = nn.Embedding(listings, dim)
        with torch.no_grad():
            self.centre.weight.uniform_(-0.5 / dim, 0.5 / dim, generator=generator)
            self.context.weight.zero_()

    def forward(self, centres: torch.Tensor, contexts: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        c = self.centre(centres)
        positive = nn.functional.logsigmoid((c * self.context(contexts)).sum(-1))
        negative = nn.functional.logsigmoid(-(self.context(negatives) @ c.unsqueeze(-1)).squeeze(-1)).sum(-1)
        return -(positive + negative).mean()


def vocabulary(sentences: pl.DataFrame, listings: pl.DataFrame, min_clicks: int) -> pl.DataFrame:
    """Listings clicked at least `min_clicks` times, ordered by city (each city's are contiguous for hard
    negatives), with their click counts."""
    counts = sentences.select(pl.col("clicks").explode().alias("listing_id")).group_by("listing_id").len("clicks")
    counts = counts.filter(pl.col("clicks") >= min_clicks).join(listings.select("listing_id", "city"), on="listing_id")
    return counts.sort("city", "listing_id")


def training_pairs(sentences: pl.DataFrame, index: dict[str, int], config: SkipGramConfig) -> np.ndarray:
    """(centre, context) rows: each click with the clicks within the window, and with the booked listing."""
    pairs = []
    for clicks, booked in sentences.select("clicks", "booked").iter_rows():
        positions = [index[c] for c in clicks if c in index]
        for i, centre in enumerate(positions):
            for j in range(max(0, i - config.window), min(len(positions), i + config.window + 1)):
                if j != i and positions[j] != centre:
                    pairs.append((centre, positions[j]))
        if config.booked_context and booked is not None and booked in index:
            target = index[booked]
            pairs += [(centre, target) for centre in set(positions) if centre != target]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def same_city_negatives(centres: torch.Tensor, city_start: torch.Tensor, city_size: torch.Tensor, n: int) -> torch.Tensor:
    """`n` listings drawn uniformly from each centre's city (the vocabulary is ordered by city: a city's listings
    are the rows [city_start, city_start + city_size) of the centre's)."""
    offsets = (torch.rand(len(centres), n) * city_size[centres, None]).long()
    return city_start[centres, None] + offsets


def train(
    sentences: pl.DataFrame,
    listings: pl.DataFrame,
    config: SkipGramConfig,
    validate: Callable[[list[str], np.ndarray, np.ndarray], float] | None = None,
    progress: Callable[[str], None] = lambda message: None,
    epochs: int | None = None,
    start: Trained | None = None,
) -> Trained:
    """Trains on the sessions' click sentences; with `validate` (ids, vectors -> lower is better) keeps the best
    epoch and stops after `patience` epochs without improvement (`validate` gets the centre and context vectors); `epochs` fixes the count instead. From `start`
    (a fine-tune) the known listings keep their vectors and new ones are added."""
    started = time.perf_counter()
    vocab = vocabulary(sentences, listings, config.min_clicks)
    if start is not None:  # a fine-tune keeps every listing it knew, and adds the new ones
        known = pl.DataFrame({"listing_id": start.ids}).join(listings.select("listing_id", "city"), on="listing_id", how="left")
        vocab = (pl.concat([vocab.select("listing_id", "city"), known.select("listing_id", "city")])
                 .unique("listing_id").sort("city", "listing_id"))
        vocab = vocab.join(sentences.select(pl.col("clicks").explode().alias("listing_id")).group_by("listing_id")
                           .len("clicks"), on="listing_id", how="left").fill_null(0)
    ids = vocab["listing_id"].to_list()
    if len(ids) < 2:
        raise ValueError(f"fewer than 2 listings were clicked at least {config.min_clicks} times: too few sessions to "
                         "learn embeddings from")
    index = {listing: i for i, listing in enumerate(ids)}
    pairs = training_pairs(sentences, index, config)
    if len(pairs) == 0:
        raise ValueError("no two listings were clicked in the same session: too few sessions to learn embeddings from")
    city_codes = vocab["city"].fill_null("").to_numpy()
    _, city_of = np.unique(city_codes, return_inverse=True)
    frequency = vocab["clicks"].to_numpy().astype(float) ** 0.75 + 1e-3
    if config.negative_sampling == "uniform":
        frequency = np.ones(len(ids))
    unigram = torch.from_numpy(frequency / frequency.sum())

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches of small lookups: a second thread only adds contention (measured)
    try:
        return _fit(sentences, config, validate, progress, epochs, start, ids, index, pairs, city_of, unigram, started)
    finally:
        torch.set_num_threads(threads)


def _fit(sentences, config, validate, progress, epochs, start, ids, index, pairs, city_of, unigram, started) -> Trained:
    city_start = np.searchsorted(city_of, city_of, side="left")
    city_size = np.searchsorted(city_of, city_of, side="right") - city_start
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = SkipGram(len(ids), config.dim, config.seed)
    if start is not None and start.state is not None:
        with torch.no_grad():
            old = {listing: i for i, listing in enumerate(start.ids)}
            mine = [index[listing] for listing in start.ids if listing in index]
            theirs = [old[listing] for listing in start.ids if listing in index]
            model.centre.weight[mine] = start.state["centre.weight"][theirs]
            model.context.weight[mine] = start.state["context.weight"][theirs]
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    tensor_pairs = torch.from_numpy(pairs)
    city_start_t, city_size_t = torch.from_numpy(city_start), torch.from_numpy(city_size)
    losses, validation, best, best_state, best_epoch, stale = [], [], float("inf"), None, 0, 0
    for epoch in range(1, (epochs or config.epochs) + 1):
        order = torch.from_numpy(rng.permutation(len(pairs)))
        total = 0.0
        for begin in range(0, len(pairs), config.batch_size):
            batch = tensor_pairs[order[begin:begin + config.batch_size]]
            centres, contexts = batch[:, 0], batch[:, 1]
            negatives = torch.multinomial(unigram, len(batch) * config.negatives, replacement=True).view(len(batch), -1)
            if config.hard_negatives:
                hard = same_city_negatives(centres, city_start_t, city_size_t, config.hard_negatives)
                negatives = torch.cat([negatives, hard], dim=1)
            loss = model(centres, contexts, negatives)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / len(pairs))
        vectors = model.centre.weight.detach().numpy().copy()
        if validate is None:
            progress(f"epoch {epoch}: loss {losses[-1]:.4f}")
            best_state, best_epoch = {k: v.clone() for k, v in model.state_dict().items()}, epoch
            continue
        validation.append(validate(ids, vectors, model.context.weight.detach().numpy().copy()))
        progress(f"epoch {epoch}: loss {losses[-1]:.4f}, validation mean booked rank {validation[-1]:.3f}")
        if validation[-1] < best:
            best, best_epoch, stale = validation[-1], epoch, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience and epochs is None:
                break
    return Trained(ids=ids, vectors=best_state["centre.weight"].numpy(), config=config, losses=losses,
                   validation=validation, best_epoch=best_epoch, seconds=time.perf_counter() - started, pairs=len(pairs),
                   state=best_state)


def train_gensim(sentences: pl.DataFrame, config: SkipGramConfig, epochs: int) -> Trained:
    """Plain skip-gram with negative sampling by gensim (one worker, seeded, so a run repeats itself)."""
    from zlib import crc32

    from gensim.models import Word2Vec

    started = time.perf_counter()
    corpus = [list(clicks) for clicks in sentences["clicks"].to_list()]
    model = Word2Vec(corpus, vector_size=config.dim, window=config.window, sg=1, negative=config.negatives,
                     min_count=config.min_clicks, epochs=epochs, workers=1, seed=config.seed,
                     hashfxn=lambda text: crc32(text.encode()))
    ids = list(model.wv.index_to_key)
    state = {"centre.weight": torch.from_numpy(model.wv.vectors.copy()), "context.weight": torch.from_numpy(model.syn1neg.copy())}
    return Trained(ids=ids, vectors=model.wv.vectors.copy(), config=replace(config.plain, negative_sampling="unigram"),
                   losses=[], validation=[], best_epoch=epochs, seconds=time.perf_counter() - started, pairs=0, state=state)
