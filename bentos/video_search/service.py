"""Video search: a text query in, the videos it is looking for out.

The query is normalized (Unicode, accents, case) and runs down two paths side by side: BM25 over titles, descriptions,
tags and auto-tags, and the dual encoder (the query's MiniLM embedding projected into the video vectors' space,
searched exactly under 20k videos and with HNSW above). The union of both paths' best candidates is fused with
popularity and freshness by the weights chosen on validation. A query no word of which is in the text index still
answers from the vector path, and the response says so.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field, field_validator

import bentoml

from bentos.base import Strict, online_service, service_config

MODEL_NAME = "video_search_fusion"
try:  # written by bentos/package.py into each build: the bento serves exactly the model it was built with
    from bentos.video_search.model_tag import MODEL_TAG
except ImportError:  # running from the source tree
    MODEL_TAG = f"{MODEL_NAME}:latest"
MAX_K = 100
MAX_QUERY_CHARS = 200


class SearchRequest(Strict):
    q: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="the query as typed")
    k: int = Field(default=10, ge=1, le=MAX_K)

    @field_validator("q")
    @classmethod
    def _searchable(cls, q: str) -> str:
        from models.video_search.text import normalize

        if not normalize(q):
            raise ValueError("has no letter or digit to search for")
        return q


class Video(BaseModel):
    rank: int
    video_id: str
    title: str
    score: float = Field(description="the fused score: higher is more relevant")
    text_score: float = Field(description="BM25 relative to the query's best match (0 to 1)")
    vector_score: float = Field(description="cosine of the query's and the video's vectors")
    paths: list[str] = Field(description="which paths proposed it: text, vector or both")


class SearchResponse(BaseModel):
    q: str
    normalized: str = Field(description="the query as the text index reads it")
    videos: list[Video]
    notes: list[str]
    weights: dict[str, float]
    model_version: str
    index_as_of: str


# At a million videos a request costs about 7.6 ms of the workers' CPU over HTTP, and in-process the query's MiniLM
# encoding takes p50 10 ms against 5 ms for both paths and fusion (`./dev.sh bench search_serving`). Chosen by
# measurement at 80% of capacity and at twice it (README "Video search: serving benchmark"): with the encoding on the
# event loop, 2 admitted requests turned 33% away at 80% (8 admitted: 26%, and the accepted p99 rose to 129 ms); with
# the encoding on a thread, 3 admitted turn 20% away, the accepted p99 is 55 ms at 80% and 88 ms at twice capacity
# (4 admitted: 16% and 76 ms, but 137 ms at twice capacity).
MAX_QUEUE_MS = 60
MAX_IN_FLIGHT = 3


@online_service(max_queue_ms=MAX_QUEUE_MS, max_in_flight=MAX_IN_FLIGHT)
@bentoml.service(**service_config())
class VideoSearchService:
    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        import bentoml.mlflow
        import faiss
        import torch

        from models.text_embeddings import encode

        torch.set_num_threads(1)
        faiss.omp_set_num_threads(1)
        self.engine = bentoml.mlflow.load_model(self.model_ref).unwrap_python_model().search
        self.model_version = self.model_ref.info.labels.get("mlflow_version", str(self.model_ref.tag.version))
        self.engine.ann()
        encode(["warm up the text encoder"])  # the first encoding loads it: not on a user's request

    @bentoml.api(input_spec=SearchRequest, output_spec=SearchResponse)
    async def search(self, q: str, k: int = 10) -> SearchResponse:
        """The k videos that best match a query, with each path's score."""
        from dataclasses import asdict

        from models.text_embeddings import encode
        from models.video_search.text import normalize

        # The encoding (torch, which releases the GIL) runs off the event loop, so the loop keeps answering and
        # turning requests away while a query is encoded.
        vector = (await asyncio.to_thread(encode, [q]))[0]
        hits = self.engine.search(q, vector, k)
        notes = []
        if not any("text" in h.paths for h in hits):
            notes.append("no word of the query is in the text index: answered from the vector path")
        return SearchResponse(
            q=q, normalized=normalize(q),
            videos=[Video(rank=r, video_id=h.video_id, title=h.title, score=h.score, text_score=h.text_score,
                          vector_score=h.vector_score, paths=list(h.paths)) for r, h in enumerate(hits, 1)],
            notes=notes, weights=asdict(self.engine.weights), model_version=self.model_version,
            index_as_of=self.engine.as_of.isoformat(),
        )
