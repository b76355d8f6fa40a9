"""Requests generated from a service's own OpenAPI document, sent to the running service: no answer may be a 5xx.

`assert_no_server_errors(base_url)` loads `base_url + "/docs.json"` with schemathesis and, for every POST
operation in it, sends at least `min_requests_per_endpoint` requests, the same ones for the same seed:

- coverage: schemathesis' deterministic coverage cases (boundary values and their violations for every field,
  missing and unknown fields, wrong JSON types, the body labelled `multipart/form-data` without a boundary and
  `text/plain`, and the operation's path with the other HTTP methods);
- positive / negative: bodies drawn from schemathesis' hypothesis strategies for the operation, valid for the
  schema and violating it (seeded draws, see `_draw`);
- content-type: each positive body sent under wrong or odd content types (`WRONG_CONTENT_TYPES`) and with no
  Content-Type, and, when it is a JSON object, also encoded as a real multipart form and urlencoded form of its
  fields;
- mutated: each drawn body truncated at a random point and with one byte replaced by a random byte;
- random-bytes: random byte strings under application/json, no Content-Type or a random one of the above;
- oversized: one JSON object of 2 MiB (a 413 under the serving base's default 1 MiB limit, else a 4xx for its
  unknown field).

Drawn cases are kept small: one that needs more than MAX_CHOICES hypothesis choices is drawn again (the coverage
cases carry the size limits: maxItems, maxLength). Nothing generated is dropped: a request the HTTP client itself cannot send (e.g. a generated header that is not
latin-1) is counted under status -1, and a request that got no answer at all (connection refused, reset,
timeout) is a failure like a 5xx, counted under status 0. GET operations (/readyz, /livez, /metrics, ...) are not
fuzzed: they take no input. schemathesis' checks other than "no 5xx" (response schema conformance, status codes
documented, ...) are not run: the contract here is only that a bad request is never a server error.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import json
import random
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field

# The body sent raw under each of these; the first one is the bug this module was written for.
WRONG_CONTENT_TYPES = (
    "multipart/form-data",
    "multipart/form-data; boundary=contract-boundary",
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/xml",
    "application/octet-stream",
    "application/vnd.bentoml+pickle",  # BentoML's internal pickle format: must never be accepted from outside
    "application/json; charset=utf-16",
    "application/jsonx",
    "",
)
FORM_BOUNDARY = "contract-form-boundary"
OVERSIZED_BYTES = 2 * 1024 * 1024
EXCERPT = 300
# Choices (hypothesis draws) per generated case: past it a draw is abandoned and drawn again, which bounds the
# time of a case (unbounded, one draw in a few hundred builds a 500-element list of ids and takes seconds).
MAX_CHOICES = 1000
UNSENDABLE, NO_RESPONSE = -1, 0


@dataclass(frozen=True)
class Probe:
    endpoint: str  # the operation, e.g. "POST /rank"
    kind: str  # coverage, positive, negative, content-type, mutated, random-bytes, oversized
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None

    @property
    def content_type(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "content-type"), None)


@dataclass
class Outcome:
    probe: Probe
    status: int
    response: bytes = b""
    error: str = ""


@dataclass
class FuzzReport:
    counts: dict[str, dict[int, int]]
    requests: int
    generation_seconds: float
    sending_seconds: float
    failures: list[Outcome] = field(default_factory=list)

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.sending_seconds if self.sending_seconds else float("inf")


def assert_no_server_errors(
    base_url: str, min_requests_per_endpoint: int = 500, seed: int = 0
) -> dict[str, dict[int, int]]:
    """Fails (AssertionError) listing every 5xx or unanswered request; returns status counts per endpoint."""
    report = fuzz(base_url, min_requests_per_endpoint, seed)
    if report.failures:
        lines = [f"{len(report.failures)} of {report.requests} generated requests got a server error or no answer:"]
        lines += [_describe(outcome) for outcome in report.failures]
        raise AssertionError("\n".join(lines))
    return report.counts


def fuzz(base_url: str, min_requests_per_endpoint: int = 500, seed: int = 0) -> FuzzReport:
    started = time.perf_counter()
    probes = generate(base_url, min_requests_per_endpoint, seed)
    generated = time.perf_counter()
    outcomes = send(base_url, probes)
    sent = time.perf_counter()
    counts: dict[str, Counter] = {}
    for outcome in outcomes:
        counts.setdefault(outcome.probe.endpoint, Counter())[outcome.status] += 1
    failures = [o for o in outcomes if o.status >= 500 or o.status == NO_RESPONSE]
    return FuzzReport({e: dict(sorted(c.items())) for e, c in counts.items()}, len(outcomes),
                      generated - started, sent - generated, failures)


def generate(base_url: str, min_requests_per_endpoint: int = 500, seed: int = 0) -> list[Probe]:
    """The requests, in sending order: the same list for the same OpenAPI document, arguments and seed."""
    import schemathesis

    # An explicit default config: no schemathesis.toml from the working directory changes what is generated.
    schema = schemathesis.openapi.from_url(base_url.rstrip("/") + "/docs.json", config=schemathesis.Config())
    from schemathesis.core.result import Err

    probes: list[Probe] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation schemathesis cannot read is a failure, not a skip
            raise AssertionError(f"{base_url}/docs.json: schemathesis cannot read an operation: {result.err()}")
        operation = result.ok()
        if operation.method.upper() == "POST":
            rng = random.Random(f"{seed}:{operation.label}")
            probes += _operation_probes(operation, min_requests_per_endpoint, rng)
    if not probes:
        raise AssertionError(f"{base_url}/docs.json has no POST operation to fuzz")
    return probes


def _operation_probes(operation, minimum: int, rng: random.Random) -> list[Probe]:
    from schemathesis.generation import GenerationMode

    endpoint = operation.label
    probes = [_from_case(endpoint, "coverage", case) for case in _coverage_cases(operation)]
    per_mode = max(5, minimum // 20)
    drawn: list[Probe] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        cases = _draw(operation.as_strategy(generation_mode=mode), per_mode, rng)
        drawn += [_from_case(endpoint, mode.value, case) for case in cases]
    probes += drawn
    path = operation.path
    for probe in drawn:
        if probe.kind == "positive" and probe.body is not None:
            probes += _content_type_variants(endpoint, path, probe.body)
    for probe in drawn:
        if probe.body:
            probes += _mutations(endpoint, path, probe.body, rng)
    probes.append(_probe(endpoint, "oversized", path, "application/json",
                         json.dumps({"padding": "x" * OVERSIZED_BYTES}).encode()))
    for _ in range(max(20, minimum - len(probes))):  # at least 20, and as many as make up the minimum
        probes.append(_random_bytes(endpoint, path, rng))
    return probes


def _coverage_cases(operation) -> list:
    from schemathesis.generation import GenerationMode
    from schemathesis.generation.drivers import CoverageGenerator
    from schemathesis.generation.feedback import FeedbackSources
    from schemathesis.generation.overrides import Override

    generation = operation.schema.config.generation_for(operation=operation, phase="coverage")
    return list(CoverageGenerator(operation=operation, generation_modes=list(GenerationMode),
                                  generation_config=generation, auth_storage=None, override=Override(),
                                  feedback=FeedbackSources()))


def _draw(strategy, n: int, rng: random.Random) -> list:
    """n values of a hypothesis strategy, drawn with `rng`: no hypothesis engine, database, shrinking or deadline.

    Faster than `@given(strategy)` with `max_examples=n`, `database=None`, `deadline=None` and only the generate
    phase (measured: 25 positive and 25 negative cases for each of /rank, /score and /recommend, three seeds,
    5.5 s against 9.2 s), as it skips the engine's mutation and tree bookkeeping. Deterministic where `@given` is
    not quite: hypothesis also draws constants it finds in the project's imported modules, which differ with what
    a test session has imported; `_project_blind_provider` draws only hypothesis' own constants. A draw hypothesis
    rejects (a filter or assume exhausted, more than MAX_CHOICES choices) is drawn again, at most 10 n times in
    all: fuzzed bodies are therefore small, and the size limits (maxItems, maxLength) are the coverage cases' job.
    """
    from hypothesis.control import BuildContext
    from hypothesis.errors import StopTest, UnsatisfiedAssumption
    from hypothesis.internal.conjecture.data import ConjectureData

    values: list = []
    rejected = 0
    while len(values) < n:
        data = ConjectureData(random=random.Random(rng.getrandbits(64)), provider=_project_blind_provider(),
                              max_choices=MAX_CHOICES)
        try:
            with BuildContext(data, wrapped_test=_draw):
                values.append(data.draw(strategy))
        except (StopTest, UnsatisfiedAssumption):
            rejected += 1
            if rejected > 10 * n:
                raise AssertionError(f"hypothesis rejected {rejected} draws of {strategy!r}") from None
    return values


@functools.cache
def _project_blind_provider() -> type:
    from hypothesis.internal.conjecture.choice import choice_constraints_key, choice_permitted
    from hypothesis.internal.conjecture.providers import GLOBAL_CONSTANTS, HypothesisProvider

    pools: dict = {}

    class ProjectBlindProvider(HypothesisProvider):
        """HypothesisProvider drawing its occasional constant from hypothesis' own list only."""

        def _maybe_draw_constant(self, choice_type, constraints, *, p=0.05):
            if self._random.random() > p:
                return None
            key = (choice_type, choice_constraints_key(choice_type, constraints))
            if key not in pools:
                allowed = GLOBAL_CONSTANTS.set_for_type(choice_type)
                pools[key] = tuple(c for c in allowed if choice_permitted(c, constraints))
            return self._random.choice(pools[key]) if pools[key] else None

    return ProjectBlindProvider


def _from_case(endpoint: str, kind: str, case) -> Probe:
    """A schemathesis case as exact bytes, as its own transport (requests) would send it."""
    import requests

    kwargs = case.as_transport_kwargs(base_url="http://contract.invalid")
    headers = {k: v for k, v in kwargs.get("headers", {}).items()
               if k.lower() not in ("x-schemathesis-testcaseid", "content-length", "host", "connection")}
    request = requests.Request(method=kwargs["method"], url=kwargs["url"], headers=headers, params=kwargs.get("params"),
                               cookies=kwargs.get("cookies"), data=kwargs.get("data"), files=kwargs.get("files"))
    if "json" in kwargs:  # requests refuses NaN and Infinity in json=; send them as Python writes them
        request.data = _utf8(json.dumps(kwargs["json"], ensure_ascii=False))
        if not any(k.lower() == "content-type" for k in headers):
            request.headers["Content-Type"] = "application/json"
    prepared = request.prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    split = urllib.parse.urlsplit(prepared.url)
    path = split.path + (f"?{split.query}" if split.query else "")
    headers = tuple((k, v) for k, v in prepared.headers.items() if k.lower() != "content-length")
    return Probe(endpoint, kind, prepared.method, path, headers, body)


def _probe(endpoint: str, kind: str, path: str, content_type: str | None, body: bytes | None) -> Probe:
    headers = () if content_type is None else (("Content-Type", content_type),)
    return Probe(endpoint, kind, "POST", path, headers, body)


def _content_type_variants(endpoint: str, path: str, body: bytes) -> list[Probe]:
    probes = [_probe(endpoint, "content-type", path, ct, body) for ct in WRONG_CONTENT_TYPES]
    probes.append(_probe(endpoint, "content-type", path, None, body))
    try:
        fields = json.loads(body)
    except ValueError:
        fields = None
    if isinstance(fields, dict):  # a real form of the fields (only a JSON object has fields to put in one)
        values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
        parts = b"".join(
            _utf8(f'--{FORM_BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n')
            for k, v in values.items()
        ) + f"--{FORM_BOUNDARY}--\r\n".encode()
        probes.append(_probe(endpoint, "content-type", path, f"multipart/form-data; boundary={FORM_BOUNDARY}", parts))
        probes.append(_probe(endpoint, "content-type", path, "application/x-www-form-urlencoded",
                             urllib.parse.urlencode(values, errors="surrogatepass").encode()))
    return probes


def _utf8(text: str) -> bytes:
    """UTF-8, with a lone surrogate (hypothesis draws them; JSON can escape them) passed through as its bytes."""
    return text.encode("utf-8", "surrogatepass")


def _mutations(endpoint: str, path: str, body: bytes, rng: random.Random) -> list[Probe]:
    cut = rng.randrange(len(body))
    at = rng.randrange(len(body))
    flipped = body[:at] + bytes([rng.randrange(256)]) + body[at + 1:]
    return [_probe(endpoint, "mutated", path, "application/json", body[:cut]),
            _probe(endpoint, "mutated", path, "application/json", flipped)]


def _random_bytes(endpoint: str, path: str, rng: random.Random) -> Probe:
    body = rng.randbytes(rng.choice((0, 1, 2, 8, 64, 512, 4096)))
    content_type = rng.choice(("application/json", "application/json", None, *WRONG_CONTENT_TYPES))
    return _probe(endpoint, "random-bytes", path, content_type, body)


def send(base_url: str, probes: list[Probe], timeout: float = 30) -> list[Outcome]:
    """Sends the probes one after another over one keep-alive connection (reopened when the server closes it)."""
    base = urllib.parse.urlsplit(base_url)
    prefix = base.path.rstrip("/")
    connection: http.client.HTTPConnection | None = None
    outcomes = []
    for probe in probes:
        for attempt in (1, 2):
            reused = connection is not None
            if connection is None:
                connection = http.client.HTTPConnection(base.hostname, base.port or 80, timeout=timeout)
            try:
                connection.putrequest(probe.method, prefix + probe.path, skip_accept_encoding=True)
                for name, value in probe.headers:
                    connection.putheader(name, value)
                connection.putheader("Content-Length", str(len(probe.body or b"")))
            except (ValueError, UnicodeError, http.client.HTTPException) as exc:  # the client refuses to send it
                connection.close()
                connection = None
                outcomes.append(Outcome(probe, UNSENDABLE, error=repr(exc)))
                break
            try:
                connection.endheaders(probe.body)
                response = connection.getresponse()
                content = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                connection = None
                if reused and attempt == 1:  # a keep-alive connection the server had closed: once more, fresh
                    continue
                outcomes.append(Outcome(probe, NO_RESPONSE, error=repr(exc)))
                break
            if response.will_close:
                connection.close()
                connection = None
            outcomes.append(Outcome(probe, response.status, content))
            break
    if connection is not None:
        connection.close()
    return outcomes


def _describe(outcome: Outcome) -> str:
    probe = outcome.probe
    body = probe.body or b""
    excerpt = repr(body[:EXCERPT]) + (f" ... ({len(body)} bytes)" if len(body) > EXCERPT else "")
    answer = outcome.error or repr(outcome.response[:EXCERPT])
    return (f"- {probe.method} {probe.path} [{probe.kind}] Content-Type: {probe.content_type!r}\n"
            f"    body: {excerpt}\n    -> {outcome.status or 'no response'}: {answer}")


def fingerprint(probes: list[Probe]) -> str:
    """A digest of everything sent: equal for equal request lists."""
    digest = hashlib.sha256()
    for p in probes:
        digest.update(repr((p.endpoint, p.kind, p.method, p.path, p.headers, p.body)).encode())
    return digest.hexdigest()
