"""A seeded professional network that grows day by day: members with schools, companies, industries and cities (each
written in several spellings, as real profiles are), profile views, connection requests (accepted or ignored) and the
connections they make.

What drives it (README "People you may know: the data"):
- each member belongs to a hidden community (15 of them), which gives them a latent taste (a 4-d vector near the
  community's) and makes a school, a company, a city and an industry likelier; a member also has a latent
  sociability (log-normal) and a sign-up time (one in eight signs up during the log);
- each day a member becomes interested in Poisson(0.12 x sociability) others: through a friend (a two-step walk on
  the graph: triadic closure, 50%), from their school (20%), company (15%), city (10%) or anyone (5%); they view the
  profile at once and send a request after 0 to 10 days (none in two cases in five);
- a request is accepted with probability sigmoid(-1.0 + 0.7 log(1 + mutual friends) + 1.0 same school + 1.0 same
  company + 0.5 same city + 0.3 same industry + 0.6 the acceptor's sociability (standardized) + 1.5 taste
  similarity), and the connection forms when it is; members also browse profiles they never ask to connect with;
- a profile's school, company and city are written in one of their spellings ("University of Northfield", "Northfield
  University", "Univ. of Northfield", "UNF"; "Arbor Logistics Inc."; "St. Albans, NR"); attributes are missing one
  time in ten.

The oracle is the generator's probability that a pair connects within the next `days` days given the graph at a
time, the latent community, taste and sociability, the true attributes and the interests already pending (a member
who has viewed a profile and will send a request): stored apart (`user_truth`, `interest_truth`) and read by no
feature. What a model can learn: mutual friends and how recent they are, shared (standardized) attributes, views,
sociability from degree and activity, taste from the graph's communities; what none can: which pending interest
turns into a request, and when.

Drift (`KIND@DAY`): `campus` (from that day school drives three times as many interests and friends of friends half
as many, as at the start of a semester) and `spam` (2% of members start sending ten times as many requests to
strangers, nearly all ignored).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl

DRIFT_KINDS = ("campus", "spam")
GENERATOR_VERSION = 2
COMMUNITIES = 15
TASTE_DIM = 4
ROUTES = ("friend", "school", "company", "city", "anyone")
ROUTE_SHARES = (0.5, 0.2, 0.15, 0.1, 0.05)
INTEREST_RATE = 0.12
REQUEST_SHARE = 0.6  # interests that become a request
MAX_LAG_DAYS = 10
BROWSE_RATE = 0.25
MISSING_ATTRIBUTE = 0.1
# The acceptance model: logit = ACCEPT_BIAS + sum of weights x the pair's terms.
ACCEPT_BIAS = -1.0
ACCEPT_WEIGHTS = {"log_mutual": 0.7, "school": 1.0, "company": 1.0, "city": 0.5, "industry": 0.3, "sociability": 0.6,
                  "taste": 1.5}

PLACES = ("Northfield", "Port Haven", "Ashby", "Cedar Falls", "Kingsbridge", "Marlow", "Eastwick", "Silver Lake",
          "Brampton", "Fairview", "Glenrock", "Hollis", "Ironbridge", "Juniper Bay", "Lakemont", "Millbrook",
          "New Albion", "Oakridge", "Pinecrest", "Queensferry", "Redmond Hill", "Stonehaven", "Thornbury", "Upton",
          "Valemont", "Westbrook", "Yarrow", "Zephyr Point")
SAINT_CITIES = ("St. Albans", "St. Clair", "Ft. Morrow", "Mt. Ellis")
REGIONS = ("NR", "ES", "WS", "CT", "SL")
SCHOOL_FORMS = ("University of {p}", "{p} State University", "{p} Institute of Technology", "{p} College")
COMPANY_WORDS = ("Arbor", "Beacon", "Cobalt", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Indigo", "Juniper",
                 "Keystone", "Lumen", "Meridian", "Nimbus", "Orchid", "Pioneer", "Quartz", "Summit", "Tidal", "Vertex")
COMPANY_KINDS = ("Logistics", "Analytics", "Health", "Robotics", "Foods", "Energy", "Capital", "Media", "Software")
LEGAL_SUFFIXES = (" Inc.", ", Inc.", " LLC", ", LLC", " Ltd", " Corp.")
INDUSTRIES = ("Software", "Finance", "Healthcare", "Education", "Retail", "Manufacturing", "Media", "Energy",
              "Logistics", "Government", "Hospitality", "Research")


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 61
    start_date: date = date(2026, 1, 5)
    n_days: int = 56
    users: int = 3_000
    schools: int = 40
    companies: int = 60
    cities: int = 24
    drift_kind: str = "none"
    drift_day: int = 0

    def fingerprint(self) -> str:
        # The generator's version too: a change to how it draws must not reuse a world landed by the previous one.
        return hashlib.sha256(repr((GENERATOR_VERSION, sorted(asdict(self).items()))).encode()).hexdigest()[:16]


@dataclass
class World:
    users: pl.DataFrame  # user_id, school, company, industry, city, signup_ts (as written: several spellings)
    connections: pl.DataFrame  # user_a, user_b, ts
    requests: pl.DataFrame  # request_id, from_user, to_user, ts, accepted
    profile_views: pl.DataFrame  # viewer, viewed, ts
    user_truth: pl.DataFrame  # the oracle's: community, taste, sociability, canonical attributes
    interest_truth: pl.DataFrame  # the oracle's: every interest with when its request is (or is not) sent


def acronym(name: str) -> str:
    return "".join(w[0] for w in name.replace(",", " ").split() if w.lower() not in ("of", "the", "and", "at")).upper()


def _spellings(canonical: str, kind: str, rng: np.random.Generator) -> list[str]:
    """The ways profiles write one attribute (the canonical form first)."""
    if kind == "school":
        place = canonical.split(" of ")[-1] if canonical.startswith("University of") else canonical.split(" ")[0]
        variants = [canonical, canonical.lower(), canonical.replace("University", "Univ.")]
        if canonical.startswith("University of"):
            variants += [f"{place} University", f"U of {place}"]
        if len(acronym(canonical)) >= 3:
            variants.append(acronym(canonical))
        return variants
    if kind == "company":
        return [canonical, canonical + LEGAL_SUFFIXES[int(rng.integers(len(LEGAL_SUFFIXES)))], canonical.upper(),
                canonical.lower() + " ltd"]
    # city: "Name, RC" with its region code; abbreviated saints, forts and mounts written out too
    name, region = canonical.split(", ")
    variants = [canonical, name, name.lower(), f"{name.upper()}, {region}"]
    for short, long in (("St.", "Saint"), ("Ft.", "Fort"), ("Mt.", "Mount")):
        if name.startswith(short):
            variants.append(name.replace(short, long))
    return variants


def _vocabularies(config: SimulationConfig, rng: np.random.Generator) -> dict[str, list[str]]:
    schools = [form.format(p=p) for p in PLACES for form in SCHOOL_FORMS]
    companies = [f"{w} {k}" for w in COMPANY_WORDS for k in COMPANY_KINDS]
    cities = [f"{p}, {REGIONS[i % len(REGIONS)]}" for i, p in enumerate((*SAINT_CITIES, *PLACES))]
    pick = lambda names, n: [names[i] for i in sorted(rng.choice(len(names), size=min(n, len(names)), replace=False))]
    return {"school": pick(schools, config.schools), "company": pick(companies, config.companies),
            "city": pick(cities, config.cities), "industry": list(INDUSTRIES)}


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


class Truth:
    """The latent members and the acceptance model: what the generator and the oracle share."""

    def __init__(self, user_truth: pl.DataFrame):
        self.ids = user_truth["user_id"].to_numpy()
        self.index = {u: i for i, u in enumerate(self.ids.tolist())}
        self.attributes = {a: user_truth[a].to_numpy() for a in ("school", "company", "city", "industry")}
        self.sociability = user_truth["sociability"].to_numpy()
        self.taste = np.asarray(user_truth["taste"].to_list(), dtype=np.float64)
        log_s = np.log(self.sociability)
        self.sociability_z = (log_s - log_s.mean()) / (log_s.std() + 1e-9)

    def same(self, attribute: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        values = self.attributes[attribute]
        return ((values[a] == values[b]) & (values[a] >= 0)).astype(np.float64)

    def accept_probability(self, requester: np.ndarray, acceptor: np.ndarray, mutual: np.ndarray) -> np.ndarray:
        w = ACCEPT_WEIGHTS
        logit = (ACCEPT_BIAS + w["log_mutual"] * np.log1p(mutual) + w["school"] * self.same("school", requester, acceptor)
                 + w["company"] * self.same("company", requester, acceptor) + w["city"] * self.same("city", requester, acceptor)
                 + w["industry"] * self.same("industry", requester, acceptor) + w["sociability"] * self.sociability_z[acceptor]
                 + w["taste"] * (self.taste[requester] * self.taste[acceptor]).sum(axis=1))
        return _sigmoid(logit)


def _members(attribute: np.ndarray) -> dict[int, np.ndarray]:
    order = np.argsort(attribute, kind="stable")
    values, starts = np.unique(attribute[order], return_index=True)
    groups = np.split(order, starts[1:])
    return {int(v): g for v, g in zip(values, groups) if v >= 0}


def simulate(config: SimulationConfig) -> World:
    rng = np.random.default_rng(config.seed)
    n = config.users
    start = datetime.combine(config.start_date, datetime.min.time(), tzinfo=timezone.utc)
    vocab = _vocabularies(config, rng)
    spellings = {kind: [_spellings(c, kind, rng) for c in names] for kind, names in vocab.items() if kind != "industry"}

    # Members: a community gives a taste and favourite attributes.
    community = rng.integers(COMMUNITIES, size=n)
    centres = rng.normal(0, 0.5, size=(COMMUNITIES, TASTE_DIM))
    taste = centres[community] + rng.normal(0, 0.2, size=(n, TASTE_DIM))
    sociability = rng.lognormal(0, 0.6, size=n)
    attributes = {}
    for kind, names in vocab.items():
        favourite = rng.integers(len(names), size=COMMUNITIES)
        chosen = np.where(rng.random(n) < 0.5, favourite[community], rng.integers(len(names), size=n))
        attributes[kind] = np.where(rng.random(n) < MISSING_ATTRIBUTE, -1, chosen)
    joined_late = rng.random(n) < 0.125
    signup_day = np.where(joined_late, rng.integers(0, config.n_days, size=n), -rng.integers(30, 1500, size=n))
    signup_ts = [start + timedelta(days=int(d), seconds=int(s)) for d, s in zip(signup_day, rng.integers(0, 86_400, n))]

    user_truth = pl.DataFrame({
        "user_id": [f"m{i:06d}" for i in range(n)], "community": community, "sociability": sociability,
        "taste": taste.tolist(), **{k: v for k, v in attributes.items()},
        **{f"{k}_name": [vocab[k][v] if v >= 0 else None for v in attributes[k]] for k in vocab},
    })
    truth = Truth(user_truth)
    ids = user_truth["user_id"].to_list()

    def written(kind: str, value: int) -> str | None:
        if value < 0:
            return None
        if kind == "industry":
            return vocab[kind][value] if rng.random() < 0.8 else vocab[kind][value].lower()
        options = spellings[kind][value]
        return options[0] if rng.random() < 0.45 else options[int(rng.integers(len(options)))]

    users = pl.DataFrame({
        "user_id": ids,
        **{kind: [written(kind, int(v)) for v in attributes[kind]] for kind in ("school", "company", "industry", "city")},
        "signup_ts": signup_ts,
    }, schema_overrides={"signup_ts": pl.Datetime("us", "UTC")})

    neighbours: list[set[int]] = [set() for _ in range(n)]
    connections, requests, views, interests = [], [], [], []
    groups = {kind: _members(attributes[kind]) for kind in ("school", "company", "city")}

    def connect(a: int, b: int, ts: datetime) -> None:
        neighbours[a].add(b)
        neighbours[b].add(a)
        connections.append((ids[a], ids[b], ts))

    def target(a: int, route: str) -> int | None:
        if route == "friend" and neighbours[a]:
            friend = list(neighbours[a])[rng.integers(len(neighbours[a]))]
            if neighbours[friend]:
                return list(neighbours[friend])[rng.integers(len(neighbours[friend]))]
            return None
        if route in groups:
            pool = groups[route].get(int(attributes[route][a]))
            return int(pool[rng.integers(len(pool))]) if pool is not None else None
        return int(rng.integers(n))

    # The graph before the log: members already there have connections made by the same routes (older ones).
    existing = np.flatnonzero(~joined_late)
    for closing_round, rate in enumerate((4.0, 2.0, 2.0)):  # by attributes first, then through friends twice
        for a in rng.permutation(existing):
            for _ in range(rng.poisson(rate * sociability[a])):
                if closing_round:
                    b = target(int(a), "friend")
                else:
                    kind = ("school", "company", "city")[rng.choice(3, p=(0.4, 0.35, 0.25))]
                    pool = groups[kind].get(int(attributes[kind][a]))
                    b = int(pool[rng.integers(len(pool))]) if pool is not None else None
                if b is None or b == a or b in neighbours[a] or joined_late[b]:
                    continue
                mutual = len(neighbours[a] & neighbours[b])
                if rng.random() < truth.accept_probability(np.array([a]), np.array([b]), np.array([mutual]))[0]:
                    age = int(rng.integers(1, max(2, -max(signup_day[a], signup_day[b]))))  # after both signed up
                    connect(a, b, start - timedelta(days=age, seconds=int(rng.integers(86_400))))

    spammers = rng.random(n) < 0.02
    pending: dict[int, list[tuple[int, int, datetime]]] = {}
    request_no = 0
    for day in range(config.n_days):
        day_start = start + timedelta(days=day)
        shares = np.array(ROUTE_SHARES)
        drifting = config.drift_kind != "none" and day >= config.drift_day
        if drifting and config.drift_kind == "campus":
            shares = shares * np.array([0.5, 3, 1, 1, 1])
            shares /= shares.sum()
        active = np.flatnonzero(signup_day <= day)
        rate = INTEREST_RATE * sociability[active]
        for a, count in zip(active, rng.poisson(rate)):
            for _ in range(count):
                route = ROUTES[rng.choice(len(ROUTES), p=shares)]
                b = target(int(a), route)
                if b is None or b == a or b in neighbours[a] or signup_day[b] > day:
                    continue
                seen = day_start + timedelta(seconds=int(rng.integers(86_400)))
                views.append((ids[a], ids[b], seen))
                lag = int(rng.integers(0, MAX_LAG_DAYS + 1)) if rng.random() < 0.6 else 0
                sends = rng.random() < REQUEST_SHARE
                interests.append((ids[a], ids[b], seen, seen + timedelta(days=lag, seconds=int(rng.integers(3_600))) if sends else None))
                if sends:
                    pending.setdefault(day + lag, []).append((int(a), b, interests[-1][3]))
        # Browsing: views that never become requests.
        for a, count in zip(active, rng.poisson(BROWSE_RATE * sociability[active])):
            for _ in range(count):
                b = target(int(a), ROUTES[rng.choice(len(ROUTES), p=shares)])
                if b is not None and b != a and signup_day[b] <= day:
                    views.append((ids[a], ids[b], day_start + timedelta(seconds=int(rng.integers(86_400)))))
        if drifting and config.drift_kind == "spam":
            for a in np.flatnonzero(spammers & (signup_day <= day)):
                for _ in range(rng.poisson(10 * INTEREST_RATE * sociability[a] + 1)):
                    b = int(rng.integers(n))
                    if b != a and b not in neighbours[a] and signup_day[b] <= day:
                        ts = day_start + timedelta(seconds=int(rng.integers(86_400)))
                        pending.setdefault(day, []).append((int(a), b, ts))
        for a, b, ts in sorted(pending.pop(day, []), key=lambda r: r[2]):
            if b in neighbours[a]:
                continue
            mutual = len(neighbours[a] & neighbours[b])
            p = truth.accept_probability(np.array([a]), np.array([b]), np.array([mutual]))[0]
            if drifting and config.drift_kind == "spam" and spammers[a]:
                p = 0.03
            accepted = bool(rng.random() < p)
            request_no += 1
            requests.append((f"r{request_no:07d}", ids[a], ids[b], ts, accepted))
            if accepted:
                connect(a, b, ts + timedelta(minutes=int(rng.integers(1, 600))))

    ts_type = pl.Datetime("us", "UTC")
    end = start + timedelta(days=config.n_days)
    connections_frame = (pl.DataFrame(connections, schema={"user_a": pl.String, "user_b": pl.String, "ts": ts_type},
                                      orient="row").filter(pl.col("ts") < end).sort("ts"))
    return World(
        users=users,
        connections=connections_frame,
        requests=pl.DataFrame(requests, schema={"request_id": pl.String, "from_user": pl.String, "to_user": pl.String,
                                                "ts": ts_type, "accepted": pl.Boolean}, orient="row").sort("ts"),
        profile_views=pl.DataFrame(views, schema={"viewer": pl.String, "viewed": pl.String, "ts": ts_type},
                                   orient="row").sort("ts"),
        user_truth=user_truth,
        interest_truth=pl.DataFrame(interests, schema={"from_user": pl.String, "to_user": pl.String, "ts": ts_type,
                                                       "request_ts": ts_type}, orient="row"),
    )


def oracle_probability(user_truth: pl.DataFrame, interest_truth: pl.DataFrame, adjacency, index: dict[str, int],
                       as_of: datetime, days: int, pairs_a: np.ndarray, pairs_b: np.ndarray) -> np.ndarray:
    """The generator's probability that each pair (indices into `index`) connects in [as_of, as_of + days), given the
    graph before as_of (`adjacency`, a scipy CSR matrix over `index`): the interests already pending (requests to be
    sent in the window) and the daily rate of new interests by each route times the acceptance probability.

    Approximate where the generator is path-dependent: mutual friends are those at as_of (the graph grows within the
    window), and a pair's two directions are taken as independent.
    """
    truth = Truth(user_truth)
    to_truth = np.array([truth.index.get(u, -1) for u in sorted(index, key=index.get)])
    a, b = to_truth[pairs_a], to_truth[pairs_b]
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inverse_degree = np.where(degree > 0, 1 / np.maximum(degree, 1), 0.0)
    mutual = np.asarray(adjacency[pairs_a].multiply(adjacency[pairs_b]).sum(axis=1)).ravel()
    # P(a two-step walk from x lands on y) = sum over mutual friends w of 1/deg(x) 1/deg(w).
    walk = adjacency.multiply(inverse_degree[None, :]).tocsr()

    def two_step(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(walk[x].multiply(adjacency[y]).sum(axis=1)).ravel() * inverse_degree[x]

    group_size = {}
    for kind in ("school", "company", "city"):
        values = truth.attributes[kind]
        counts = np.bincount(values[values >= 0], minlength=values.max() + 1) if (values >= 0).any() else np.zeros(1)
        group_size[kind] = counts
    population = len(truth.ids)

    def daily_rate(x_graph, y_graph, x, y):
        shares = dict(zip(ROUTES, ROUTE_SHARES))
        route = shares["friend"] * two_step(x_graph, y_graph) + shares["anyone"] / population
        for kind in ("school", "company", "city"):
            same = truth.same(kind, x, y)
            size = group_size[kind][np.maximum(truth.attributes[kind][x], 0)]
            route = route + shares[kind] * same / np.maximum(size, 1)
        return INTEREST_RATE * truth.sociability[x] * REQUEST_SHARE * route * truth.accept_probability(x, y, mutual)

    rate = daily_rate(pairs_a, pairs_b, a, b) + daily_rate(pairs_b, pairs_a, b, a)
    window_end = as_of + timedelta(days=days)
    pending = (interest_truth.filter(pl.col("ts") < as_of, pl.col("request_ts") >= as_of,
                                     pl.col("request_ts") < window_end)
               .select("from_user", "to_user"))
    pending_keys = {(f, t) for f, t in pending.iter_rows()}
    ids = truth.ids
    pending_probability = np.zeros(len(a))
    if pending_keys:
        for i, (x, y) in enumerate(zip(a, b)):
            if (ids[x], ids[y]) in pending_keys or (ids[y], ids[x]) in pending_keys:
                pending_probability[i] = truth.accept_probability(np.array([x]), np.array([y]), mutual[i:i + 1])[0]
    return 1 - (1 - pending_probability) * np.exp(-days * rate)
