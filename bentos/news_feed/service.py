"""News feed: a user in, their feed out.

The book's three stages online: retrieval of the unseen posts of the user's friends and followed authors from the
last days, ranking by the weighted score of the champion's heads on online features (MLSD_ONLINE_STORE_URL:
sqlite:///<file> or redis://...), and re-ranking (posts of blocked authors filtered, no two posts of one author in a
row, at most a few per author and per topic). A request may pass its own weights (the business sets them); each post
comes back with every head's probability and its score. A user the online features do not know, or one without
history, gets the chronological feed ("strategy": "chronological").
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import bentoml
from bentoml.exceptions import ServiceUnavailable
from pydantic import BaseModel, Field, field_validator

from bentos.base import Id, Strict, UtcTimestamp, case_setting, online_service, service_config

MODEL_NAME = "news_feed_ranker"
try:  # written by bentos/package.py into each build: the bento serves exactly the model it was built with
    from bentos.news_feed.model_tag import MODEL_TAG
except ImportError:  # running from the source tree
    MODEL_TAG = f"{MODEL_NAME}:latest"
MAX_K = 100
CANDIDATE_DAYS = case_setting("NEWS_FEED", "CANDIDATE_DAYS", int, 3, 1, 365)
MAX_CANDIDATES = case_setting("NEWS_FEED", "MAX_CANDIDATES", int, 500, 1, 100_000)
# A request scores up to 500 candidates with every head; measured by `./dev.sh bench feed_serving`.
MAX_QUEUE_MS = 50
MAX_IN_FLIGHT = 4


class FeedRequest(Strict):
    user_id: Id
    k: int = Field(default=10, ge=1, le=MAX_K)
    ts: UtcTimestamp | None = Field(default=None, description="request time (UTC); now when absent")
    weights: dict[str, float] | None = Field(
        default=None, description="the business's weight of each head over the service's (click, like, comment, share, "
        "hide, block, skip, and dwell per second); unnamed heads keep theirs")
    device: str | None = Field(default=None, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")

    @field_validator("weights")
    @classmethod
    def _known_heads(cls, weights):
        from models.news_feed.evaluation import check_weights

        if weights is not None:
            check_weights(weights)  # a ValueError names the head: a 400 naming weights
        return weights


class FeedPost(BaseModel):
    rank: int
    post_id: str
    author_id: str
    topic: str | None
    media: str | None
    created_ts: str
    score: float = Field(description="the weighted score; for a chronological feed, the post's time (epoch seconds)")
    heads: dict[str, float] | None = Field(description="each head's probability and the expected dwell (seconds); "
                                           "none for a chronological feed")


class FeedResponse(BaseModel):
    user_id: str
    strategy: str = Field(description="personalized (the champion ranked) or chronological (newest first)")
    posts: list[FeedPost]
    counts: dict[str, int] = Field(description="what retrieval found at each step, and how many were ranked")
    weights: dict[str, float]
    notes: list[str]
    model_version: str
    feature_snapshot: str = Field(description="as-of time of the online features used")


@online_service(max_queue_ms=MAX_QUEUE_MS, max_in_flight=MAX_IN_FLIGHT)
@bentoml.service(**service_config())
class NewsFeedService:
    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        import bentoml.mlflow
        import torch

        from models.news_feed.evaluation import parse_weights
        from models.news_feed.online import NAMESPACE
        from models.news_feed.service_model import FeedRanker
        from models.online_store import open_store

        torch.set_num_threads(1)
        model = bentoml.mlflow.load_model(self.model_ref).unwrap_python_model().model
        self.model_version = self.model_ref.info.labels.get("mlflow_version", str(self.model_ref.tag.version))
        self.weights = parse_weights(os.environ.get("MLSD_NEWS_FEED_WEIGHTS", ""))  # the business's, over the defaults
        url = os.environ.get("MLSD_ONLINE_STORE_URL")
        self.ranker = FeedRanker(model, open_store(url, NAMESPACE), CANDIDATE_DAYS, MAX_CANDIDATES) if url else None

    @bentoml.api(input_spec=FeedRequest, output_spec=FeedResponse)
    async def feed(self, user_id: str, k: int = 10, ts: datetime | None = None, weights: dict[str, float] | None = None,
                   device: str | None = None) -> FeedResponse:
        """The user's feed: their ties' unseen recent posts, ranked by the weighted score and re-ranked."""
        from models.news_feed.service_model import NoFeatures

        if self.ranker is None:
            raise ServiceUnavailable("the online store is not configured (MLSD_ONLINE_STORE_URL)")
        try:
            answer = self.ranker.feed(user_id, k, (ts or datetime.now(timezone.utc)).astimezone(timezone.utc),
                                      {**self.weights, **(weights or {})}, device)
        except NoFeatures as error:
            raise ServiceUnavailable(str(error)) from None
        return FeedResponse(
            user_id=user_id, strategy=answer.strategy,
            posts=[FeedPost(rank=r, **post) for r, post in enumerate(answer.posts, 1)],
            counts=answer.counts, weights=answer.weights, notes=answer.notes, model_version=self.model_version,
            feature_snapshot=answer.snapshot_as_of,
        )
