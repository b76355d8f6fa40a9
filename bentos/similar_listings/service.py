"""Similar listings: a listing id in, the most similar listings of the same city out, within the request's price
and type filters.

The listing's embedding is the one its sessions taught ("strategy": "learned"), or, for a listing no session has
clicked enough yet (a new one), the mean of its nearest listings of the same type and price band ("strategy":
"cold_start"). A listing the model's catalogue does not hold is a 404 that says so.
"""

from __future__ import annotations

from typing import Literal

import bentoml
from bentoml.exceptions import NotFound
from pydantic import BaseModel, Field, model_validator

from bentos.base import Id, Strict, online_service, service_config

MODEL_NAME = "similar_listings_embeddings"
try:  # written by bentos/package.py into each build: the bento serves exactly the model it was built with
    from bentos.similar_listings.model_tag import MODEL_TAG
except ImportError:  # running from the source tree
    MODEL_TAG = f"{MODEL_NAME}:latest"
MAX_K = 100
MAX_EXCLUDE = 500
ListingType = Literal["entire_home", "private_room", "shared_room"]


class Filters(Strict):
    min_price: float | None = Field(default=None, ge=0, le=100_000)
    max_price: float | None = Field(default=None, ge=0, le=100_000)
    types: list[ListingType] | None = Field(default=None, min_length=1, max_length=3)

    @model_validator(mode="after")
    def _ordered(self):
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError("filters.min_price: must not be above filters.max_price")
        return self


class SimilarRequest(Strict):
    listing_id: Id
    k: int = Field(default=10, ge=1, le=MAX_K)
    filters: Filters | None = None
    exclude_listing_ids: list[Id] = Field(default_factory=list, max_length=MAX_EXCLUDE,
                                          description="listings not to return (e.g. already on screen)")


class SimilarListing(BaseModel):
    rank: int
    listing_id: str
    score: float = Field(description="the model's likelihood score: higher is more similar")
    price: float
    type: str


class SimilarResponse(BaseModel):
    listing_id: str
    strategy: str = Field(description="learned (the listing's own embedding) or cold_start (its neighbours' mean)")
    search: str = Field(description="ann, or exact_in_city when the filters left too few of the index's neighbours")
    similar: list[SimilarListing]
    model_version: str
    catalogue_as_of: str


# The model's part of a request is 0.14 ms at the median and 0.28 ms at p99 in-process, 0.8 ms of the workers' CPU
# over HTTP (`./dev.sh bench listings_serving`). The video service's numbers (40 ms, 2) were chosen by measurement; a
# request here costs a tenth of one there, so twice as many are let in at once. At twice capacity the accepted
# requests' p99 stays at 14 ms with only 200s and 503s; at 80% of capacity 2.4% are already turned away (README).
MAX_QUEUE_MS = 40
MAX_IN_FLIGHT = 4


@online_service(max_queue_ms=MAX_QUEUE_MS, max_in_flight=MAX_IN_FLIGHT)
@bentoml.service(**service_config())
class SimilarListingsService:
    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        import bentoml.mlflow
        import faiss
        import torch

        torch.set_num_threads(1)
        faiss.omp_set_num_threads(1)
        self.model = bentoml.mlflow.load_model(self.model_ref).unwrap_python_model().model
        self.model_version = self.model_ref.info.labels.get("mlflow_version", str(self.model_ref.tag.version))

    @bentoml.api(input_spec=SimilarRequest, output_spec=SimilarResponse)
    async def similar(self, listing_id: str, k: int = 10, filters: Filters | None = None,
                      exclude_listing_ids: list[str] | None = None) -> SimilarResponse:
        """The k listings most similar to one, in its city, within the filters."""
        from models.similar_listings.service_model import UnknownListing

        if isinstance(filters, dict):
            filters = Filters(**filters)
        try:
            answer = self.model.similar(
                listing_id, k, min_price=filters.min_price if filters else None,
                max_price=filters.max_price if filters else None,
                types=set(filters.types) if filters and filters.types else None,
                exclude=set(exclude_listing_ids or []))
        except UnknownListing:
            raise NotFound(f"listing_id: {listing_id!r} is not in the catalogue of model v{self.model_version} "
                           f"(as of {self.model.as_of:%Y-%m-%d %H:%M}); a listing created since is served after the "
                           "next training run") from None
        return SimilarResponse(
            listing_id=listing_id, strategy=answer.strategy, search=answer.search,
            similar=[SimilarListing(rank=r, listing_id=i, score=s, price=p, type=t)
                     for r, (i, s, p, t) in enumerate(answer.results, 1)],
            model_version=self.model_version, catalogue_as_of=self.model.as_of.isoformat(),
        )
