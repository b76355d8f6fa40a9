"""A seeded vacation-rental marketplace: listings in real cities, guests with a budget, a party and a taste, and search
sessions of impressions, clicks and sometimes a booking.

What drives behaviour (README "Similar listings: the data"):
- a listing has a city, a neighbourhood (a centre a few km from the city's), a type, beds, a price, a latent style
  (a small vector) and a latent quality; new listings appear every day;
- a guest has a nightly budget, a party size, a type preference and a taste for a style; each search session is
  in one city with a target neighbourhood for that trip;
- the session's utility of a listing is taste·style + quality - distance from the target - price away from the
  budget - too few beds for the party + type preference. The search engine shows the best of a noisy ranking;
  the guest clicks down the page (position bias) and books the most appealing clicked listing when it is good
  enough.

So two listings are alike when the same guests want them: the same style, nearby, at a similar price, of the same
type. That is the oracle similarity (`oracle_similarity`); the ceiling of the book's metric is the session's own
utility, which knows the guest. A model sees only the sessions and the listing
table; it cannot see style or quality, and learns them only from who clicked and booked what together.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl

# (city, latitude, longitude): real coordinates, so distances are in real kilometres.
CITIES = (
    ("Lisbon", 38.7223, -9.1393), ("Barcelona", 41.3874, 2.1686), ("Paris", 48.8566, 2.3522),
    ("Rome", 41.9028, 12.4964), ("Amsterdam", 52.3676, 4.9041), ("Berlin", 52.5200, 13.4050),
    ("Vienna", 48.2082, 16.3738), ("Prague", 50.0755, 14.4378),
)
TYPES = ("entire_home", "private_room", "shared_room")
TYPE_SHARES = (0.62, 0.31, 0.07)
TYPE_PRICE = np.array([0.0, -0.75, -1.4])  # log-price effect against an entire home
KM_PER_DEGREE = 111.0
NEIGHBOURHOODS = 8
STYLE_DIM = 4
SHOWN = 24  # listings on a search page
TASTE_SCALE = 1.3
# How much the session's utility weighs each listing attribute (and the oracle's scale of each).
W_STYLE, W_QUALITY, W_DISTANCE_KM, W_PRICE, W_BEDS, W_TYPE = 2.6, 0.3, 0.35, 1.8, 0.9, 1.2


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 29
    start_date: date = date(2026, 1, 1)
    n_days: int = 28
    n_cities: int = 4
    n_listings: int = 3_000  # on the market before the first day
    new_listings_per_day: int = 15
    n_users: int = 5_000
    sessions_per_day: int = 800
    # Drift from `drift_day` (0-based) on: "budget" (every guest's budget doubles, high season: they look at pricier
    # listings) or "taste" (every guest's taste for a style is drawn anew: what is clicked together changes).
    drift_kind: str = "none"
    drift_day: int = 0

    def fingerprint(self) -> str:
        return hashlib.sha256(repr(sorted(asdict(self).items())).encode()).hexdigest()[:16]


@dataclass
class World:
    listings: pl.DataFrame  # the raw-input contract's listings
    sessions: pl.DataFrame  # the raw-input contract's session events
    listing_truth: pl.DataFrame  # the oracle: each listing's latent style and quality, position, log price, type
    session_truth: pl.DataFrame  # the oracle: session_id, listing_id, utility of every shown listing


def oracle_arrays(truth: pl.DataFrame) -> dict[str, np.ndarray]:
    """`listing_truth` rows as the arrays `oracle_similarity` reads (row order kept)."""
    return {"style": np.stack(truth["style"].to_numpy()), "km": truth.select("x_km", "y_km").to_numpy(),
            "log_price": truth["log_price"].to_numpy(), "kind": truth["type_code"].to_numpy()}


def oracle_similarity(truth: dict[str, np.ndarray], query: int, candidates: np.ndarray) -> np.ndarray:
    """How alike the generator makes two listings (rows of `oracle_arrays`): how much the same guest's utility of
    the two agrees. The style term is the covariance over guests' tastes; the rest are what a session's target
    neighbourhood, budget and type preference make two listings differ by. Quality is left out: it makes a listing
    popular with everyone, not like another one."""
    style, km, log_price, kind = truth["style"], truth["km"], truth["log_price"], truth["kind"]
    return (W_STYLE ** 2 * TASTE_SCALE ** 2 / STYLE_DIM * (style[candidates] @ style[query])
            - W_DISTANCE_KM * np.linalg.norm(km[candidates] - km[query], axis=1)
            - W_PRICE * np.abs(log_price[candidates] - log_price[query])
            - W_TYPE * (kind[candidates] != kind[query]))


def _start(config: SimulationConfig) -> datetime:
    return datetime.combine(config.start_date, datetime.min.time(), tzinfo=timezone.utc)


def simulate(config: SimulationConfig) -> World:
    if not 1 <= config.n_cities <= len(CITIES):
        raise ValueError(f"n_cities must be between 1 and {len(CITIES)}")
    rng = np.random.default_rng(config.seed)
    start = _start(config)
    cities = CITIES[: config.n_cities]

    # Neighbourhoods: centres within 5 km of the city's, each with its own price level.
    hood_offset_km = rng.normal(0, 2.5, (config.n_cities, NEIGHBOURHOODS, 2))
    hood_price = rng.normal(0, 0.25, (config.n_cities, NEIGHBOURHOODS))

    n_new = config.new_listings_per_day * config.n_days
    n = config.n_listings + n_new
    city = rng.integers(0, config.n_cities, n)
    hood = rng.integers(0, NEIGHBOURHOODS, n)
    km = hood_offset_km[city, hood] + rng.normal(0, 0.7, (n, 2))
    kind = rng.choice(len(TYPES), n, p=TYPE_SHARES)
    beds = np.where(kind == 0, rng.integers(1, 7, n), np.where(kind == 1, rng.integers(1, 3, n), 1))
    quality = rng.normal(0, 1, n)
    style = rng.normal(0, 1, (n, STYLE_DIM)) / np.sqrt(STYLE_DIM)
    log_price = (4.6 + TYPE_PRICE[kind] + 0.12 * (beds - 2) + hood_price[city, hood] + 0.12 * quality
                 + rng.normal(0, 0.18, n))
    price = np.round(np.exp(log_price), 0)
    created_day = np.concatenate([-rng.integers(20, 700, config.n_listings),
                                  np.repeat(np.arange(config.n_days), config.new_listings_per_day)])
    created_s = created_day * 86_400 + rng.uniform(0, 86_400, n)  # seconds from the start
    created_ts = [start + timedelta(seconds=float(t)) for t in created_s]
    order = np.argsort(created_day, kind="stable")
    listing_ids = np.array([f"L{i:06d}" for i in range(n)])
    lat = np.array([cities[c][1] for c in city]) + km[:, 0] / KM_PER_DEGREE
    lon = np.array([cities[c][2] for c in city]) + km[:, 1] / (KM_PER_DEGREE * np.cos(np.radians([cities[c][1] for c in city])))
    listings = pl.DataFrame({
        "listing_id": listing_ids[order], "city": [cities[c][0] for c in city[order]], "lat": lat[order], "lon": lon[order],
        "type": [TYPES[k] for k in kind[order]], "price": price[order], "beds": beds[order].astype(np.int64),
        "created_ts": [created_ts[i] for i in order],
    }).with_columns(pl.col("created_ts").dt.cast_time_unit("us"))

    listing_truth = pl.DataFrame({"listing_id": listing_ids, "style": style.astype(np.float32), "x_km": km[:, 0],
                                  "y_km": km[:, 1], "log_price": log_price, "type_code": kind, "quality": quality})

    # Guests.
    budget = rng.normal(4.55, 0.45, config.n_users)
    party = rng.choice([1, 2, 2, 2, 3, 4, 4, 5, 6], config.n_users)
    taste = rng.normal(0, TASTE_SCALE, (config.n_users, STYLE_DIM)) / np.sqrt(STYLE_DIM)
    type_pref = rng.normal(0, 0.6, (config.n_users, len(TYPES))) + np.array([0.6, 0.0, -0.8])
    user_city_weights = rng.dirichlet(np.ones(config.n_cities) * 0.7, config.n_users)
    activity = rng.gamma(0.8, 1.0, config.n_users)
    activity /= activity.sum()

    drifted_budget = budget + (np.log(2.0) if config.drift_kind == "budget" else 0.0)
    drifted_taste = (rng.normal(0, TASTE_SCALE, taste.shape) / np.sqrt(STYLE_DIM)) if config.drift_kind == "taste" else taste
    if config.drift_kind not in ("none", "budget", "taste"):
        raise ValueError(f"drift_kind must be none, budget or taste, not {config.drift_kind!r}")

    by_city = [np.flatnonzero(city == c) for c in range(config.n_cities)]
    columns: dict[str, list] = {"session_id": [], "user_id": [], "listing": [], "ts": [], "position": [], "event": []}
    utilities: list[np.ndarray] = []
    session_number = 0

    def add(session_id: str, user_id: str, listing: np.ndarray, ts: np.ndarray, position: np.ndarray, event: str):
        columns["session_id"].append(np.full(len(listing), session_id))
        columns["user_id"].append(np.full(len(listing), user_id))
        columns["listing"].append(listing)
        columns["ts"].append(ts)
        columns["position"].append(position)
        columns["event"].append(np.full(len(listing), event))

    for day in range(config.n_days):
        drifted = config.drift_kind != "none" and day >= config.drift_day
        budgets, tastes = (drifted_budget, drifted_taste) if drifted else (budget, taste)
        count = rng.poisson(config.sessions_per_day)
        guests = rng.choice(config.n_users, size=count, p=activity)
        seconds = np.sort(rng.uniform(0, 80_000, count))
        for u, second in zip(guests, seconds):
            c = int(rng.choice(config.n_cities, p=user_city_weights[u]))
            ts = (day * 86_400 + second) * 1e6
            available = by_city[c][created_s[by_city[c]] < day * 86_400 + second]
            target = hood_offset_km[c, rng.integers(0, NEIGHBOURHOODS)] + rng.normal(0, 0.5, 2)
            distance = np.linalg.norm(km[available] - target, axis=1)
            utility = (W_STYLE * style[available] @ tastes[u] + W_QUALITY * quality[available]
                       - W_DISTANCE_KM * distance - W_PRICE * np.abs(log_price[available] - budgets[u])
                       - W_BEDS * np.maximum(np.ceil(party[u] / 2) - beds[available], 0)
                       + W_TYPE * type_pref[u, kind[available]])
            shown = np.argsort(-(utility + rng.normal(0, 1.2, len(available))))[:SHOWN]
            session_id, user_id = f"s{session_number:07d}", f"g{u:06d}"
            session_number += 1
            positions = np.arange(1, len(shown) + 1)
            add(session_id, user_id, available[shown], np.full(len(shown), ts), positions, "impression")
            utilities.append(utility[shown])
            # Clicks: down the page, each with a chance that falls with position and rises with appeal; now and then
            # a guest goes back up the page.
            p_click = 1 / (1 + np.exp(-(utility[shown] - 2.3 - 0.06 * positions)))
            picked = np.flatnonzero(rng.random(len(shown)) < p_click)
            if len(picked) == 0:
                continue
            if len(picked) > 1 and rng.random() < 0.3:
                picked = rng.permutation(picked)
            click_ts = ts + np.cumsum(rng.exponential(40, len(picked)) + 1) * 1e6
            add(session_id, user_id, available[shown[picked]], click_ts, picked + 1, "click")
            appeal = utility[shown[picked]]
            if rng.random() < 1 / (1 + np.exp(-(1.4 * appeal.max() - 3.0))):
                weights = np.exp(2.5 * (appeal - appeal.max()))
                chosen = picked[rng.choice(len(picked), p=weights / weights.sum())]
                book_ts = click_ts[-1] + (rng.exponential(120) + 5) * 1e6
                add(session_id, user_id, available[shown[[chosen]]], np.array([book_ts]), np.array([chosen + 1]), "book")
    joined = {name: np.concatenate(parts) if parts else np.array([]) for name, parts in columns.items()}
    epoch_us = int(start.timestamp() * 1e6)
    sessions = pl.DataFrame({
        "session_id": joined["session_id"].astype(str), "user_id": joined["user_id"].astype(str),
        "listing_id": listing_ids[joined["listing"].astype(np.int64)],
        "ts": (joined["ts"].astype(np.int64) + epoch_us), "position": joined["position"].astype(np.int64),
        "event": joined["event"].astype(str),
    }).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC"))).sort("ts", "session_id", "position", "event")
    impressions = pl.DataFrame({"session_id": joined["session_id"].astype(str), "event": joined["event"].astype(str),
                                "listing_id": listing_ids[joined["listing"].astype(np.int64)]}).filter(pl.col("event") == "impression")
    session_truth = impressions.drop("event").with_columns(
        utility=pl.Series(np.concatenate(utilities) if utilities else np.array([]), dtype=pl.Float64))
    return World(listings=listings, sessions=sessions, listing_truth=listing_truth, session_truth=session_truth)
