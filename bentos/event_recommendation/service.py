"""Event recommendation: a user in, the events they are likeliest to register for out.

Two stages, as the book serves it: rule-based filtering of the live events (upcoming, within the radius of the
user's home or the request's location, capacity left, not already registered), then ranking the survivors by the
champion's P(register) on online features (MLSD_ONLINE_STORE_URL: sqlite:///<file> or redis://...), with each
event's registrations so far brought up to the request from the stream consumer's counts when MLSD_REALTIME_URL
names its Redis. The response carries the filter's counts. A user the online features do not know gets popular events near the request's
location ("strategy": "cold_start"); without a location, a 404 that says to send one.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import bentoml
from bentoml.exceptions import NotFound, ServiceUnavailable
from pydantic import BaseModel, Field

from bentos.base import Id, Strict, UtcTimestamp, case_setting, online_service, service_config

MODEL_NAME = "event_recommendation_ranker"
try:  # written by bentos/package.py into each build: the bento serves exactly the model it was built with
    from bentos.event_recommendation.model_tag import MODEL_TAG
except ImportError:  # running from the source tree
    MODEL_TAG = f"{MODEL_NAME}:latest"
MAX_K = 100
MAX_RADIUS_KM = 500.0


RADIUS_KM = case_setting("EVENT_RECOMMENDATION", "RADIUS_KM", float, 80.0, 0.1, MAX_RADIUS_KM)
MAX_CANDIDATES = case_setting("EVENT_RECOMMENDATION", "MAX_CANDIDATES", int, 500, 1, 100_000)
# A request filters the live events and ranks up to 500 of them; measured by `./dev.sh bench event_serving`.
MAX_QUEUE_MS = 50
MAX_IN_FLIGHT = 4


class Location(Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class RecommendRequest(Strict):
    user_id: Id
    k: int = Field(default=10, ge=1, le=MAX_K)
    location: Location | None = Field(default=None, description="where the user is now; their home when absent")
    ts: UtcTimestamp | None = Field(default=None, description="request time (UTC); now when absent")
    radius_km: float | None = Field(default=None, ge=0.1, le=MAX_RADIUS_KM,
                                    description="the filter's radius; the service's setting when absent")


class RecommendedEvent(BaseModel):
    rank: int
    event_id: str
    score: float = Field(description="P(register) from the champion; registrations so far for a cold start")
    category: str | None
    start_ts: str
    distance_km: float
    price: float | None


class RecommendResponse(BaseModel):
    user_id: str
    strategy: str = Field(description="personalized (the champion ranked) or cold_start (location and popularity)")
    location: str = Field(description="home (the user's) or request (the location sent)")
    events: list[RecommendedEvent]
    filters: dict[str, int] = Field(description="live events left after each filter, in order, and how many were ranked")
    notes: list[str]
    model_version: str
    feature_snapshot: str = Field(description="as-of time of the online features used")


@online_service(max_queue_ms=MAX_QUEUE_MS, max_in_flight=MAX_IN_FLIGHT)
@bentoml.service(**service_config())
class EventRecommendationService:
    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        import bentoml.mlflow
        import torch

        from models.event_recommendation.online import NAMESPACE
        from models.event_recommendation.service_model import NoFeatures, Recommender
        from models.online_store import open_store

        torch.set_num_threads(1)
        ranker = bentoml.mlflow.load_model(self.model_ref).unwrap_python_model().ranker
        self.model_version = self.model_ref.info.labels.get("mlflow_version", str(self.model_ref.tag.version))
        url = os.environ.get("MLSD_ONLINE_STORE_URL")
        realtime_url = os.environ.get("MLSD_REALTIME_URL")  # the stream consumer's Redis: registrations since the snapshot
        live_registrations = None
        if realtime_url:
            from models.event_recommendation.stream import LiveRegistrations

            live_registrations = LiveRegistrations(realtime_url)
        self.recommender = Recommender(ranker, open_store(url, NAMESPACE), RADIUS_KM, MAX_CANDIDATES,
                                       live_registrations=live_registrations) if url else None
        if self.recommender is not None:
            try:  # the live events load now, not in the first request's second
                self.recommender.live()
            except NoFeatures:
                pass  # answered with a 503 until the features are published

    @bentoml.api(input_spec=RecommendRequest, output_spec=RecommendResponse)
    async def recommend(self, user_id: str, k: int = 10, location: Location | None = None, ts: datetime | None = None,
                        radius_km: float | None = None) -> RecommendResponse:
        """The k events the user is likeliest to register for, among the live events near them."""
        from models.event_recommendation.service_model import NeedLocation, NoFeatures

        if self.recommender is None:
            raise ServiceUnavailable("the online store is not configured (MLSD_ONLINE_STORE_URL)")
        if isinstance(location, dict):
            location = Location(**location)
        try:
            answer = self.recommender.recommend(
                user_id, k, (location.lat, location.lon) if location else None,
                (ts or datetime.now(timezone.utc)).astimezone(timezone.utc), radius_km)
        except NeedLocation as error:
            raise NotFound(str(error)) from None
        except NoFeatures as error:
            raise ServiceUnavailable(str(error)) from None
        return RecommendResponse(
            user_id=user_id, strategy=answer.strategy, location=answer.location,
            events=[RecommendedEvent(rank=r, **event) for r, event in enumerate(answer.events, 1)],
            filters=answer.filters, notes=answer.notes, model_version=self.model_version,
            feature_snapshot=answer.snapshot_as_of,
        )
