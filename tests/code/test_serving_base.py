"""The serving base (bentos/base.py) on a tiny BentoML service of its own: bad requests are 4xx naming the problem.

The service is written to a temporary folder and served with `bentoml serve module:Class` on a free loopback
port (bentos/server.py), once with `@strict_requests` and once without, which shows the bug the base fixes: a
JSON body labelled multipart/form-data is a 500 from BentoML alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bentos.server import serving
from tests.serving.openapi_contract import assert_no_server_errors, fingerprint, fuzz, generate

ROOT = Path(__file__).resolve().parents[2]

SERVICE = '''
import bentoml
from pydantic import BaseModel, Field

from bentos.base import Id, Strict, strict_requests


class Item(Strict):
    item_id: Id
    weight: float = Field(ge=0, le=100)


class TopRequest(Strict):
    user_id: Id
    items: list[Item] = Field(min_length=1, max_length=20)
    k: int = Field(default=3, ge=1, le=10)


class TopResponse(BaseModel):
    user_id: str
    top: list[str]


{base}
@bentoml.service(workers=1)
class Top:
    @bentoml.api(input_spec=TopRequest, output_spec=TopResponse)
    def top(self, user_id: str, items: list[Item], k: int = 3) -> TopResponse:
        ranked = sorted(items, key=lambda item: -item.weight)[:k]
        return TopResponse(user_id=user_id, top=[item.item_id for item in ranked])
'''

VALID = {"user_id": "u1", "items": [{"item_id": "a", "weight": 1.5}, {"item_id": "b", "weight": 7}], "k": 1}


def _serve(tmp_path_factory, name: str, base: str):
    folder = tmp_path_factory.mktemp(name)
    (folder / f"{name}.py").write_text(SERVICE.format(base=base))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"PYTHONPATH": str(ROOT), "BENTOML_HOME": str(folder / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    return serving(f"{name}:Top", env=env, cwd=folder, log=folder / "serve.log")


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    with _serve(tmp_path_factory, "strict_top", "@strict_requests") as server:
        yield server.url


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    with _serve(tmp_path_factory, "plain_top", "") as server:
        yield server.url


def _post(url: str, content: bytes, content_type: str | None = "application/json", **kwargs) -> httpx.Response:
    headers = {} if content_type is None else {"content-type": content_type}
    return httpx.post(f"{url}/top", content=content, headers=headers, timeout=30, **kwargs)


def _error(response: httpx.Response) -> dict:
    assert response.headers["content-type"] == "application/json", response.text
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
    return body


def test_without_the_base_a_json_body_sent_as_multipart_is_a_500(plain):
    # The bug: BentoML parses by Content-Type, Starlette's multipart parser fails, BentoML answers 500.
    response = _post(plain, json.dumps(VALID).encode(), "multipart/form-data")
    assert response.status_code == 500, (response.status_code, response.text)


def test_without_the_base_the_fuzzer_finds_the_500s(plain):
    with pytest.raises(AssertionError, match=r"(?s)got a server error.*Content-Type: 'multipart/form-data'.*-> 500"):
        assert_no_server_errors(plain, 100)


def test_a_valid_request_is_answered(strict):
    response = _post(strict, json.dumps(VALID).encode())
    assert response.status_code == 200, response.text
    assert response.json() == {"user_id": "u1", "top": ["b"]}


def test_a_request_without_content_type_is_read_as_json(strict):
    # Documented choice (bentos/base.py): no Content-Type means JSON, as BentoML reads it; the body is still checked.
    assert _post(strict, json.dumps(VALID).encode(), None).status_code == 200
    assert _post(strict, b"{not json", None).status_code == 400


@pytest.mark.parametrize("content_type", [
    "multipart/form-data", "multipart/form-data; boundary=xyz", "text/plain", "application/x-www-form-urlencoded",
    "application/vnd.bentoml+pickle", "application/json; charset=latin-1", "",
])
def test_a_body_that_is_not_labelled_json_is_a_415_naming_the_expected_type(strict, content_type):
    response = _post(strict, json.dumps(VALID).encode(), content_type)
    assert response.status_code == 415, (response.status_code, response.text)
    body = _error(response)
    assert body["expected"] == "application/json" and "application/json" in body["error"]


def test_a_real_multipart_form_is_a_415(strict):
    response = httpx.post(f"{strict}/top", files={"user_id": (None, "u1")}, timeout=30)
    assert response.status_code == 415, response.text
    assert "multipart/form-data" in _error(response)["error"]


def test_json_content_type_is_case_insensitive_and_takes_utf8_charset(strict):
    assert _post(strict, json.dumps(VALID).encode(), "Application/JSON; charset=UTF-8").status_code == 200


@pytest.mark.parametrize("content, problem", [
    (b"{not json", "not valid JSON"),
    (b'{"user_id": "u1", "items": [', "not valid JSON"),
    (b"", "empty"),
    (b'{"user_id": "u1", "items": [{"item_id": "a", "weight": NaN}]}', "NaN"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[" * 100_000, "recursion limit exceeded"),
])
def test_a_body_that_is_not_json_is_a_400_naming_the_problem(strict, content, problem):
    response = _post(strict, content)
    assert response.status_code == 400, (response.status_code, response.text)
    assert problem in _error(response)["error"]


@pytest.mark.parametrize("content, kind", [(b"[1, 2]", "an array"), (b'"u1"', "a string"), (b"null", "null"),
                                           (b"42", "a number")])
def test_json_that_is_not_an_object_is_a_400_naming_it(strict, content, kind):
    response = _post(strict, content)
    assert response.status_code == 400, response.text
    assert f"JSON object of the endpoint's fields, got {kind}" in _error(response)["error"]


def _invalid_fields(response: httpx.Response) -> list[list]:
    assert response.status_code == 400, (response.status_code, response.text)
    return [error["loc"] for error in response.json()["detail"]]


def test_an_unknown_field_is_a_400_naming_it(strict):
    response = _post(strict, json.dumps({**VALID, "surprise": 1}).encode())
    assert _invalid_fields(response) == [["surprise"]]
    assert "Extra inputs are not permitted" in response.text


def test_a_field_out_of_its_range_is_a_400_naming_it(strict):
    bad = {**VALID, "items": [{"item_id": "a", "weight": 101}]}
    assert _invalid_fields(_post(strict, json.dumps(bad).encode())) == [["items", 0, "weight"]]
    assert _invalid_fields(_post(strict, json.dumps({"items": VALID["items"]}).encode())) == [["user_id"]]


def test_an_oversized_body_is_a_413_by_its_length_and_as_it_streams(strict):
    big = json.dumps({**VALID, "user_id": "x" * (1024 * 1024)}).encode()
    response = _post(strict, big)
    assert response.status_code == 413, response.text
    assert _error(response)["limit_bytes"] == 1024 * 1024

    def chunks():  # no Content-Length: the limit applies while reading
        for start in range(0, len(big), 64 * 1024):
            yield big[start:start + 64 * 1024]

    streamed = httpx.post(f"{strict}/top", content=chunks(), headers={"content-type": "application/json"}, timeout=30)
    assert streamed.status_code == 413, streamed.text
    # Just under the limit passes the base (and is then BentoML's 400 for a too-long id).
    under = json.dumps({**VALID, "user_id": "x" * (1024 * 1024 - 200)}).encode()
    assert len(under) <= 1024 * 1024 and _post(strict, under).status_code == 400


def test_other_routes_and_methods_are_untouched(strict):
    assert httpx.get(f"{strict}/readyz").status_code == 200
    assert httpx.get(f"{strict}/livez").status_code == 200
    assert "bentoml" in httpx.get(f"{strict}/metrics").text
    assert "/top" in httpx.get(f"{strict}/docs.json").json()["paths"]
    assert httpx.get(f"{strict}/docs").status_code in (200, 404)  # BentoML's UI page (or none): no 415/400 here
    assert httpx.get(f"{strict}/top").status_code == 405
    assert httpx.post(f"{strict}/readyz", content=b"x", headers={"content-type": "text/plain"}).status_code == 405


def test_generated_requests_get_no_server_error(strict):
    started = time.perf_counter()
    counts = assert_no_server_errors(strict, 500)
    seconds = time.perf_counter() - started
    statuses = counts["POST /top"]
    assert sum(statuses.values()) >= 500, statuses
    assert statuses.get(200, 0) >= 25 and statuses.get(415, 0) >= 250 and statuses.get(400, 0) >= 50, statuses
    assert statuses.get(-1, 0) == 0, statuses  # every generated request could be sent
    print(f"\n{sum(statuses.values())} requests in {seconds:.1f} s: {statuses}")


def test_generated_requests_are_the_same_for_the_same_seed(strict):
    first, again, other = generate(strict, 100, seed=1), generate(strict, 100, seed=1), generate(strict, 100, seed=2)
    assert len(first) >= 100 and {p.kind for p in first} >= {"coverage", "positive", "negative", "content-type",
                                                              "mutated", "random-bytes", "oversized"}
    assert fingerprint(first) == fingerprint(again)
    assert fingerprint(first) != fingerprint(other)


def test_the_fuzz_report_counts_every_request(strict):
    report = fuzz(strict, 100, seed=3)
    assert report.requests == sum(sum(c.values()) for c in report.counts.values()) >= 100
    assert not report.failures and report.requests_per_second > 0


CHECK_SERVICES = """
import bentos.ad_click.service as ad_click
import bentos.video_rec.service as video_rec
from bentos.base import MAX_BODY_BYTES, RecycleConnections, ShedLoad, StrictJSONRequests, online_service, strict_requests

# Every online service carries the serving kit, outermost first; ad click's /score takes up to 10,000 feature rows,
# about 25 MiB of JSON.
for module, service, routes, limit in (
    (ad_click, ad_click.AdClickRanker, ["/rank", "/score"], 32 * 1024 * 1024),
    (video_rec, video_rec.VideoRecommender, ["/recommend"], MAX_BODY_BYTES),
):
    assert service.middlewares_outside == (
        (ShedLoad, {"routes": routes, "max_queue_ms": module.MAX_QUEUE_MS, "max_in_flight": module.MAX_IN_FLIGHT}),
    ), service.middlewares_outside
    assert service.middlewares == [
        (RecycleConnections, {"routes": routes, "requests_per_connection": 100}),
        (StrictJSONRequests, {"routes": routes, "max_body_bytes": limit}),
    ], (service.name, service.middlewares)
    assert isinstance(service.to_asgi(), ShedLoad)  # the worker's app: shedding before BentoML's own middlewares
    assert service.config["workers"] == 2 and service.config["traffic"] == {"timeout": 1.0}, service.config
    assert service.config["logging"]["access"]["enabled"] is False, service.config
import bentoml
from bentos.base import api_routes


class Prefixed:
    @bentoml.api
    def one(self, x: int) -> int:
        return x

    @bentoml.task
    def two(self, x: int) -> int:
        return x


assert api_routes(bentoml.service(path_prefix="/v1/")(Prefixed)) == ["/v1/one", "/v1/two", "/v1/two/submit"]
for decorator in (strict_requests, online_service(max_queue_ms=10, max_in_flight=4)):
    try:
        decorator(type("NotAService", (), {}))
    except TypeError as exc:
        assert "above @bentoml.service" in str(exc), exc
    else:
        raise AssertionError(f"{decorator} took a plain class")
print("checked")
"""


def test_both_services_apply_the_base_and_it_needs_the_service_object(tmp_path):
    # In a subprocess: importing bentoml fixes its home folder for the process (here a temporary one).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENTOML_HOME": str(tmp_path), "BENTOML_DO_NOT_TRACK": "true"}
    result = subprocess.run([sys.executable, "-c", CHECK_SERVICES], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "checked", result.stderr[-3000:]
