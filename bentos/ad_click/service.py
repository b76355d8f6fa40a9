"""Ad click ranking service: candidates in, ads sorted by predicted click probability out.

Features come from the online store (MLSD_ONLINE_STORE_URL: sqlite:///<file> or redis://...); the model is
the champion imported into the BentoML store. Every candidate is scored in the top requested slot, so the
ranking compares ads, not positions; ranked ads then fill the requested slots in order.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Annotated

import bentoml
from pydantic import BaseModel, Field, StringConstraints, create_model, model_validator

from bentos.base import Id, Strict, online_service, service_config

MODEL_NAME = "ad_click_ctr"
try:  # written by bentos/package.py into each build: the bento serves exactly the model it was built with
    from bentos.ad_click.model_tag import MODEL_TAG
except ImportError:  # running from the source tree
    MODEL_TAG = f"{MODEL_NAME}:latest"
MAX_CANDIDATES = 500
# The longest a /rank request may wait for its worker, and how many it admits at once; past either, 503 with
# Retry-After (bentos/base.py ShedLoad). Eight 50-candidate requests take about 13 ms of a worker. Chosen by
# measurement at 2,000 and 2,400 requests/s (README, "Serving capacity"): 25 ms and 16 let accepted requests' p99
# reach 117 to 267 ms at twice capacity, 12 ms and 8 kept it under 50 ms.
MAX_QUEUE_MS = 12
MAX_IN_FLIGHT = 8
MAX_ROWS = 10_000
FLOAT32_LIMIT = 3.0e38

Device = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class Candidate(Strict):
    ad_id: Id


class RankRequest(Strict):
    user_id: Id
    candidates: list[Candidate] = Field(min_length=1, max_length=MAX_CANDIDATES)
    device: Device = "mobile"
    ts: datetime | None = Field(default=None, description="request time (UTC); now when absent")
    slots: list[Annotated[int, Field(ge=1, le=100)]] | None = Field(
        default=None, max_length=MAX_CANDIDATES, description="slot positions to fill, best first; default 1..n"
    )

    @model_validator(mode="after")
    def _unique(self):
        ads = [c.ad_id for c in self.candidates]
        if len(set(ads)) != len(ads):
            raise ValueError("candidates: ad_id values must be unique")
        if self.slots is not None and len(set(self.slots)) != len(self.slots):
            raise ValueError("slots: positions must be unique")
        if self.ts is not None and self.ts.tzinfo is None:
            raise ValueError("ts: give a timezone (UTC), e.g. 2026-01-28T12:00:00Z")
        return self


class RankedAd(BaseModel):
    ad_id: str
    rank: int
    score: float = Field(description="predicted click probability in the top requested slot")
    slot: int | None = Field(description="slot the ad fills, or null past the requested slots")


class RankResponse(BaseModel):
    ranked: list[RankedAd]
    model_version: str
    feature_snapshot: str | None = Field(description="as-of time of the online features used")
    fallbacks: list[str] = Field(description="entities served with cold-start defaults, and why")


def _feature_row_model():
    from models.ad_click.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES

    fields = {c: (str | None, None) for c in CATEGORICAL_FEATURES}
    # The model computes in float32: a value beyond its range would reach XGBoost as infinity and fail inside it.
    feature_value = Annotated[float, Field(ge=-FLOAT32_LIMIT, le=FLOAT32_LIMIT, allow_inf_nan=False)]
    fields |= {c: (feature_value | None, None) for c in NUMERIC_FEATURES}
    # A network champion embeds the ids; rows without them score as an unknown user and ad.
    fields |= {c: (Id | None, None) for c in ("user_id", "ad_id", "advertiser_id")}
    return create_model("FeatureRow", __base__=Strict, **fields)


FeatureRow = _feature_row_model()


class ScoreRequest(Strict):
    rows: list[FeatureRow] = Field(min_length=1, max_length=MAX_ROWS)  # type: ignore[valid-type]


class ScoreResponse(BaseModel):
    scores: list[float]
    model_version: str


@online_service(max_queue_ms=MAX_QUEUE_MS, max_in_flight=MAX_IN_FLIGHT, max_body_bytes=32 * 1024 * 1024)  # /score: 10,000 rows, ~25 MiB
@bentoml.service(**service_config())
class AdClickRanker:
    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        import bentoml.mlflow

        from models.ad_click.serving import RequestFeatures
        from models.online_store import open_store

        # The pyfunc model's own fast paths: features come from this service's typed code, so MLflow's per-call
        # signature check and the pandas round trip buy nothing here.
        self.model = bentoml.mlflow.load_model(self.model_ref).unwrap_python_model()
        self.model.serve_on_one_thread()
        self.model_version = self.model_ref.info.labels.get("mlflow_version", str(self.model_ref.tag.version))
        url = os.environ.get("MLSD_ONLINE_STORE_URL")
        self.store = open_store(url, "ad_click") if url else None
        realtime_url = os.environ.get("MLSD_REALTIME_URL")  # the stream consumer's Redis: live 1-hour counts
        if realtime_url:
            from models.ad_click.stream import RealtimeAggregates

            self.realtime = RealtimeAggregates(realtime_url)
        else:
            self.realtime = None
        self.features = RequestFeatures(self.store, self.model.encoder.vocabularies, self.realtime) if self.store else None

    @bentoml.api(input_spec=RankRequest, output_spec=RankResponse)
    async def rank(
        self,
        user_id: str,
        candidates: list[Candidate],
        device: str = "mobile",
        ts: datetime | None = None,
        slots: list[int] | None = None,
    ) -> RankResponse:
        """Rank candidate ads for a user by predicted click probability."""
        return self.ranked(user_id, [c.ad_id if isinstance(c, Candidate) else c["ad_id"] for c in candidates],
                           device, ts, slots)

    def ranked(self, user_id: str, ad_ids: list[str], device: str, ts: datetime | None, slots: list[int] | None
               ) -> RankResponse:
        """The ranking itself, computed on the worker's event loop (bentos/base.py ShedLoad says why): the store
        reads are local (SQLite) or a loopback Redis round trip, and most records are held after their first read."""
        slots = slots or list(range(1, len(ad_ids) + 1))
        ts = (ts or datetime.now(timezone.utc)).astimezone(timezone.utc)
        if self.features is None:
            matrix = self._cold_start_matrix(user_id, ad_ids, ts, slots[0], device)
            fallbacks, snapshot = ["online store not configured (MLSD_ONLINE_STORE_URL): cold-start defaults"], None
            advertisers = [None] * len(ad_ids)
        else:
            matrix, fallbacks, info = self.features.matrix(user_id, ad_ids, ts, slots[0], device)
            snapshot = info.as_of if info else None
            advertisers = self.features.advertisers(ad_ids)
        ids = {"user_id": [user_id] * len(ad_ids), "ad_id": ad_ids, "advertiser_id": advertisers}
        scores = self.model.predict_matrix(matrix, ids).tolist()
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        ranked = [
            RankedAd(ad_id=ad_ids[i], rank=r + 1, score=scores[i], slot=slots[r] if r < len(slots) else None)
            for r, i in enumerate(order)
        ]
        return RankResponse(ranked=ranked, model_version=self.model_version, feature_snapshot=snapshot, fallbacks=fallbacks)

    def _cold_start_matrix(self, user_id, ad_ids, ts, position, device):
        import polars as pl

        from models.ad_click.features import online_features

        n = len(ad_ids)
        rows = pl.DataFrame(
            {"user_id": [user_id] * n, "ad_id": ad_ids, "ts": [ts] * n, "position": [position] * n, "device": [device] * n},
            schema_overrides={"ts": pl.Datetime("us", "UTC"), "position": pl.Int64},
        )
        return self.model.encoder.transform(online_features(rows, _empty_records(n)))

    @bentoml.api(input_spec=ScoreRequest, output_spec=ScoreResponse)
    async def score(self, rows: list) -> ScoreResponse:
        """Click probabilities for feature rows (batch scoring; the columns of the training features).

        On the worker's loop like /rank: a worker thread would hold the GIL as long, and hide its wait from the
        load shedding. 10,000 rows take about 0.5 s of a worker (the 1 s timeout bounds it); scoring whole days
        is the batch job's work (`ad_click_batch_predictions`).
        """
        import polars as pl

        from models.ad_click.features import FEATURE_COLUMNS, FEATURE_SCHEMA, ID_COLUMNS

        frame = pl.DataFrame(
            [row.model_dump() if isinstance(row, BaseModel) else row for row in rows],
            schema={c: pl.String if FEATURE_SCHEMA[c] == pl.String else pl.Float64 for c in (*FEATURE_COLUMNS, *ID_COLUMNS)},
        )
        return ScoreResponse(scores=self.model.predict_frame(frame).tolist(), model_version=self.model_version)


def _empty_records(n: int) -> dict:
    from models.ad_click.features import ENTITIES

    return {entity: [None] * n for entity in ENTITIES}



