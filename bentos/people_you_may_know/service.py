"""People you may know: a member in, the people they may know out.

The book computes suggestions in batch (the graph changes slowly): the daily batch asset writes every active member's
top people to the online store (MLSD_ONLINE_STORE_URL: sqlite:///<file> or redis://...), and this service answers
from that snapshot, with the snapshot's time. A newcomer the batch has not seen, who sends their school, company or
city as they wrote them, gets members sharing them (read with the standardizer the batch keyed its groups with, so
"Univ. of Northfield" finds "University of Northfield"), and the response says so; an unknown member who sends none
gets a 404. The bento carries the champion, as every bento the release kit builds; the answers come from the batch
that champion computed, whose version the response names.
"""

from __future__ import annotations

import math
import os

import bentoml
from bentoml.exceptions import NotFound, ServiceUnavailable
from pydantic import BaseModel, Field

from bentos.base import Id, Strict, online_service, service_config

MODEL_NAME = "people_you_may_know_recommender"
try:  # written by bentos/package.py into each build: the bento serves exactly the model it was built with
    from bentos.people_you_may_know.model_tag import MODEL_TAG
except ImportError:  # running from the source tree
    MODEL_TAG = f"{MODEL_NAME}:latest"
MAX_K = 100
MAX_ATTRIBUTE_CHARS = 200
# A request is two or three store reads (no model runs): the serving kit's overload settings with room for them.
MAX_QUEUE_MS = 50
MAX_IN_FLIGHT = 8


class PymkRequest(Strict):
    user_id: Id
    k: int = Field(default=10, ge=1, le=MAX_K)
    school: str | None = Field(default=None, min_length=1, max_length=MAX_ATTRIBUTE_CHARS,
                               description="a newcomer's school as they wrote it (used when the batch has not seen them)")
    company: str | None = Field(default=None, min_length=1, max_length=MAX_ATTRIBUTE_CHARS)
    city: str | None = Field(default=None, min_length=1, max_length=MAX_ATTRIBUTE_CHARS)


class Suggestion(BaseModel):
    rank: int
    user_id: str
    score: float = Field(description="the champion's chance of a connection (friends of friends), or the number of "
                         "shared attributes plus a small weight for connections (shared attributes)")
    mutual_friends: int
    shared_attributes: int = Field(description="of school, company and city")
    source: str = Field(description="friends of friends, or shared school, company or city")


class PymkResponse(BaseModel):
    user_id: str
    suggestions: list[Suggestion]
    source: str = Field(description="where the list came from: friends of friends, or shared school, company or "
                        "city (a member without connections, or a newcomer)")
    notes: list[str]
    snapshot_as_of: str = Field(description="the batch's time: suggestions are as of the graph then")
    model_version: str = Field(description="the champion version that computed the batch")


@online_service(max_queue_ms=MAX_QUEUE_MS, max_in_flight=MAX_IN_FLIGHT)
@bentoml.service(**service_config())
class PeopleYouMayKnowService:
    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        from models.online_store import open_store

        url = os.environ.get("MLSD_ONLINE_STORE_URL")
        self.store = open_store(url, "people_you_may_know") if url else None
        self.standardizers: dict[str, object] = {}  # per batch snapshot: the standardizer its groups were keyed with

    def _read(self, user_id: str):
        """The current snapshot, the member's record and the batch's meta record, read from one snapshot: a publish
        between the two reads (the old snapshot is deleted at once) is read again from the new one."""
        for _ in range(3):
            info = self.store.current()
            if info is None:
                raise ServiceUnavailable("no batch of suggestions has been published yet: run people_you_may_know_batch_job")
            found = self.store.get_many(info.snapshot_id, {"suggestions": [user_id], "meta": ["model"]})
            record, meta = found["suggestions"][0], found["meta"][0]
            if meta is not None:  # written with every batch: None means the snapshot went away under us
                return info, record, meta
        raise ServiceUnavailable("the batch snapshot changed while reading it: retry")

    @bentoml.api(input_spec=PymkRequest, output_spec=PymkResponse)
    def pymk(self, user_id: str, k: int = 10, school: str | None = None, company: str | None = None,
             city: str | None = None) -> PymkResponse:
        """The people a member may know, from the latest batch."""
        from models.people_you_may_know.recommend import SHARED_ATTRIBUTES

        if self.store is None:
            raise ServiceUnavailable("the online store is not configured (MLSD_ONLINE_STORE_URL)")
        try:
            info, record, meta = self._read(user_id)
            notes: list[str] = []
            if record is not None:
                items, source = record["items"], record["source"]
                if source == SHARED_ATTRIBUTES:
                    notes.append("no friend of a friend yet: suggestions from shared school, company or city")
            else:
                attributes = {"school": school, "company": company, "city": city}
                if not any(attributes.values()):
                    raise NotFound(f"user_id {user_id!r} is not in the batch as of {info.as_of}: send school, company "
                                   "or city for a newcomer's suggestions")
                items = self._newcomer(info.snapshot_id, meta, user_id, attributes, k)
                source = SHARED_ATTRIBUTES
                notes.append("new member: suggestions from shared school, company or city")
                if not items:
                    notes.append("no member shares these school, company or city values")
        except (NotFound, ServiceUnavailable):
            raise
        except Exception as error:  # the store is down or timing out: the client may retry, the request was fine
            raise ServiceUnavailable(f"the online store did not answer: {type(error).__name__}") from None
        if len(items) < k:
            notes.append(f"{len(items)} suggestions available")
        return PymkResponse(
            user_id=user_id, source=source, notes=notes, snapshot_as_of=info.as_of, model_version=str(meta["version"]),
            suggestions=[Suggestion(rank=r, user_id=i[0], score=i[1], mutual_friends=i[2], shared_attributes=i[3],
                                    source=i[4]) for r, i in enumerate(items[:k], 1)],
        )

    def _newcomer(self, snapshot_id: str, meta: dict, user_id: str, attributes: dict[str, str | None],
                  k: int) -> list[list]:
        """Members sharing the most of a newcomer's school, company and city, the better connected first."""
        from models.people_you_may_know.recommend import SHARED_ATTRIBUTES
        from models.people_you_may_know.standardize import Standardizer

        if snapshot_id not in self.standardizers:
            if "standardizer" not in meta:
                raise ServiceUnavailable("the latest batch carries no standardizer: run people_you_may_know_batch_job")
            self.standardizers = {snapshot_id: Standardizer.from_json(meta["standardizer"])}  # only the current one
        standardizer = self.standardizers[snapshot_id]
        keys = []
        for attribute, spelling in attributes.items():
            canonical = standardizer.lookup(attribute, spelling)
            if canonical is not None:
                keys.append(f"{attribute}:{canonical}")
        shared: dict[str, list] = {}
        for group in self.store.get_in(snapshot_id, "group", keys) if keys else []:
            for member, degree in (group or {}).get("members", []):
                if member != user_id:
                    entry = shared.setdefault(member, [0, degree])
                    entry[0] += 1
        ranked = sorted(shared.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))[:k]
        return [[member, count + 0.01 * math.log1p(degree), 0, count, SHARED_ATTRIBUTES]
                for member, (count, degree) in ranked]
