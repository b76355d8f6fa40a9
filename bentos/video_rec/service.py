"""Homepage video recommendations: a user id in, the top-k videos out, through the whole chain (two-tower + ANN
candidates with popular and trending ones, ranker features, the XGBoost ranker, re-ranking rules).

Cold start, documented in the README: a user the model's state does not know is embedded from the context's
demographics (age, gender, country) when given ("strategy": "demographics"), and otherwise gets the trending
videos after the re-ranking rules ("strategy": "popular"). Known users get "history" (or "demographics" when they
have watched nothing relevant yet).
"""

from __future__ import annotations

from typing import Annotated

import bentoml
from pydantic import BaseModel, Field, StringConstraints, model_validator

from bentos.base import Id, Strict, online_service, service_config

MODEL_NAME = "video_rec_recommender"
try:  # written by bentos/package.py into each build: the bento serves exactly the model it was built with
    from bentos.video_rec.model_tag import MODEL_TAG
except ImportError:  # running from the source tree
    MODEL_TAG = f"{MODEL_NAME}:latest"
MAX_K = 100
MAX_EXCLUDE = 500


class UserContext(Strict):
    age: int | None = Field(default=None, ge=5, le=120)
    gender: Annotated[str, StringConstraints(min_length=1, max_length=16)] | None = None
    country: Annotated[str, StringConstraints(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$")] | None = None


class RecommendRequest(Strict):
    user_id: Id
    k: int = Field(default=10, ge=1, le=MAX_K)
    context: UserContext | None = Field(default=None, description="demographics for a user the service does not know")
    exclude_video_ids: list[Id] = Field(default_factory=list, max_length=MAX_EXCLUDE,
                                        description="videos not to recommend (e.g. already on screen)")

    @model_validator(mode="after")
    def _unique(self):
        if len(set(self.exclude_video_ids)) != len(self.exclude_video_ids):
            raise ValueError("exclude_video_ids: values must be unique")
        return self


class RecommendedVideo(BaseModel):
    rank: int
    video_id: str
    score: float = Field(description="ranker score (trending rank for the popular fallback); higher is better")


class RecommendResponse(BaseModel):
    user_id: str
    strategy: str = Field(description="history, demographics (cold start) or popular (cold start, no context)")
    recommendations: list[RecommendedVideo]
    model_version: str
    state_as_of: str


# The longest a request may wait for its worker, and how many it admits at once; past either, 503 with Retry-After
# (bentos/base.py ShedLoad). A request over a 100k-video catalogue takes 10 to 15 ms of a worker
# (bench/video_serving.py). Measured at twice capacity: 40 ms and 2 kept accepted requests' p99 at 89 ms, 50 ms and
# 4 let it reach 165 ms (and turned away more at 80% load, not fewer: README, "Serving capacity").
MAX_QUEUE_MS = 40
MAX_IN_FLIGHT = 2


# Each worker computes with one thread (service_config: one worker per core).
@online_service(max_queue_ms=MAX_QUEUE_MS, max_in_flight=MAX_IN_FLIGHT)
@bentoml.service(**service_config())
class VideoRecommender:
    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        import bentoml.mlflow
        import faiss
        import torch

        torch.set_num_threads(1)
        faiss.omp_set_num_threads(1)
        self.recommender = bentoml.mlflow.load_model(self.model_ref).unwrap_python_model().recommender
        self.recommender.ranker.set_param({"nthread": 1})
        self.model_version = self.model_ref.info.labels.get("mlflow_version", str(self.model_ref.tag.version))

    @bentoml.api(input_spec=RecommendRequest, output_spec=RecommendResponse)
    async def recommend(
        self, user_id: str, k: int = 10, context: UserContext | None = None, exclude_video_ids: list[str] | None = None
    ) -> RecommendResponse:
        """Top-k homepage videos for a user (computed on the worker's event loop: bentos/base.py ShedLoad)."""
        from models.video_rec.recommender import UserContext as Context

        request = RecommendRequest.model_construct(user_id=user_id, k=k, context=context, exclude_video_ids=exclude_video_ids or [])
        ctx = request.context
        if isinstance(ctx, dict):
            ctx = UserContext(**ctx)
        contexts = [Context(age=ctx.age, gender=ctx.gender, country=ctx.country) if ctx else None]
        exclude = [set(request.exclude_video_ids)]
        frame = self.recommender.recommend([request.user_id], request.k, contexts, exclude)
        return RecommendResponse(
            user_id=request.user_id,
            strategy=frame["strategy"][0] if frame.height else "popular",
            recommendations=[
                RecommendedVideo(rank=r, video_id=v, score=s)
                for r, v, s in zip(frame["rank"].to_list(), frame["video_id"].to_list(), frame["score"].to_list())
            ],
            model_version=self.model_version,
            state_as_of=self.recommender.state.as_of.isoformat(),
        )
