"""A trained video recommender over a catalogue grown to N videos, for the ANN and serving benchmarks.

The two-tower model is trained on the default simulation (3,000 users, about 4,700 videos). The catalogue is then
grown with new uploads whose content (primary topic, topic tags, language, duration) is drawn from the
catalogue's own distribution; the video tower embeds them from content, as it embeds any new video, and a small
per-video perturbation (std 0.05, then renormalized) stands in for what their id embeddings would learn, so the
vectors keep the catalogue's clustered shape without exact ties.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl


def trained_chain(progress=print):
    """(recommender as of the end of the data, labeled interactions, world) on the default simulation: the chain as
    the training job builds it, the item-item source included."""
    from models.video_rec import two_tower as tt
    from models.video_rec.baselines import fit_ease_on_split
    from models.video_rec.features import Cutoffs, label_interactions
    from models.video_rec.recommender import ChainConfig, Recommender, build_state
    from models.video_rec.simulator import VideoSimulationConfig, simulate
    from models.video_rec.train import fit_ranker, fit_retrieval, ranker_examples

    started = time.monotonic()
    world = simulate(VideoSimulationConfig())
    labeled = label_interactions(world.interactions)
    cutoffs = Cutoffs.from_interactions(labeled, "4d", "4d")
    model, vocab, _ = fit_retrieval(labeled, world.users, world.videos, cutoffs, tt.TwoTowerConfig(), progress=lambda _: None)
    ease, _ = fit_ease_on_split(labeled, cutoffs.retrieval_end, cutoffs.test_start)
    config = ChainConfig()
    state = build_state(model, vocab, labeled, world.users, world.videos, cutoffs.retrieval_end, config, ease=ease)
    ranker, _ = fit_ranker(ranker_examples(state, labeled, world.videos, cutoffs.retrieval_end, cutoffs.test_start, config))
    final = build_state(model, vocab, labeled, world.users, world.videos, cutoffs.test_end, config, ease=ease)
    progress(f"trained two-tower and ranker on the default simulation ({time.monotonic() - started:.0f}s)")
    return Recommender(model, vocab, ranker, final, config), labeled, world


def grown_catalogue(stats: pl.DataFrame, n: int, seed: int = 0) -> pl.DataFrame:
    """`stats` plus new videos (no views yet) up to n rows, content drawn from the catalogue's distribution."""
    extra = n - stats.height
    if extra <= 0:
        return stats.head(n)
    rng = np.random.default_rng(seed)
    primaries = [t[0] for t in stats["tags"].to_list() if t]
    topic_tags = {}
    for tags in stats["tags"].to_list():
        if tags:
            topic_tags.setdefault(tags[0], set()).update(tags[1:])
    topic_tags = {k: sorted(v) for k, v in topic_tags.items()}
    primary = rng.choice(primaries, extra)
    counts = rng.integers(2, 5, extra)
    tags = [[p, *rng.choice(topic_tags[p], min(c, len(topic_tags[p])), replace=False).tolist()] for p, c in zip(primary, counts)]
    sample = stats.sample(extra, with_replacement=True, seed=seed)
    new = sample.with_columns(
        video_id=pl.Series([f"n{i:08d}" for i in range(extra)]),
        title=pl.Series([f"new upload {i}" for i in range(extra)]),
        tags=pl.Series(tags, dtype=pl.List(pl.String)),
        channel_id=pl.Series([f"nc{i % 20_000:05d}" for i in range(extra)]),
        views_7d=pl.lit(0.0), views_1d=pl.lit(0.0), relevant_7d=pl.lit(0.0), relevance_rate=pl.lit(0.5), trending=pl.lit(0.0),
        age_days=pl.Series(rng.uniform(0, 1, extra)),
    )
    return pl.concat([stats, new.select(stats.columns)], how="vertical_relaxed")


def embed_catalogue(recommender, catalogue: pl.DataFrame, seed: int = 0) -> np.ndarray:
    from models.video_rec import two_tower as tt

    vectors = tt.embed_videos(recommender.model, tt.encode_videos(recommender.vocab, catalogue))
    known = recommender.state.videos.height
    rng = np.random.default_rng(seed)
    vectors[known:] += rng.normal(0, 0.05, vectors[known:].shape).astype(np.float32)
    vectors[known:] /= np.linalg.norm(vectors[known:], axis=1, keepdims=True)
    return vectors
