"""The floor of the serving stack: the online services' HTTP stack and settings, answering with no work.

Served from the source tree by bench/serving.py (`bentoml serve bench.floor_service:Floor`) beside a case's bento,
with the same request bodies, so the difference between the two is what the case's own code costs.
"""

from __future__ import annotations

import bentoml
from pydantic import BaseModel, ConfigDict

from bentos.base import online_service, service_config


class AnyObject(BaseModel):
    """Any JSON object: the case's own request bodies, parsed as the case's input model would parse them."""

    model_config = ConfigDict(extra="allow")


@online_service(max_queue_ms=20, max_in_flight=10)
@bentoml.service(**service_config())
class Floor:
    @bentoml.api(route="/floor", input_spec=AnyObject)
    async def floor(self, **body) -> dict:
        """Reads nothing of the body beyond the JSON check every service makes, and answers a constant."""
        return {"ok": True}
