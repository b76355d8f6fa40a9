"""A seeded simulator of a social platform's ad traffic with a known click model.

Every impression's click is drawn from a logistic model whose probability is kept in a separate oracle
table: the best score any model could reach on this data, used only to measure how close a model gets.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl

CATEGORIES = (
    "apparel", "auto", "beauty", "books", "electronics", "finance",
    "food", "games", "home", "sports", "travel", "wellness",
)
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "IN", "JP", "MX", "NG")
# NG has no traffic until a covariate drift brings a new market's users in.
COUNTRY_WEIGHTS = (0.30, 0.10, 0.10, 0.08, 0.12, 0.15, 0.07, 0.08, 0.0)
GENDERS = ("female", "male", "unknown")
GENDER_WEIGHTS = (0.48, 0.48, 0.04)
DEVICES = ("mobile", "desktop", "tablet")
AGE_BUCKET_EDGES = (25, 35, 45, 55)  # buckets: <25, 25-34, 35-44, 45-54, 55+
MAX_POSITION = 10

# The click model's fixed effects: display position, device and hour shift the log-odds.
POSITION_EFFECT = -0.55 * np.log(np.arange(1, MAX_POSITION + 1))
DEVICE_EFFECT = {"mobile": 0.15, "desktop": -0.10, "tablet": 0.0}
HOUR_EFFECT = 0.25 * np.sin((np.arange(24) - 15) / 24 * 2 * np.pi)
# Share of traffic per hour of day (UTC): quiet nights, busy evenings.
HOUR_TRAFFIC = 0.6 + 0.4 * np.sin((np.arange(24) - 9) / 24 * 2 * np.pi) + 0.3
# Delayed feedback: a click comes a log-normal delay after its impression (median 30 s; about 0.8% after an hour,
# a few in a hundred thousand after a day).
CLICK_DELAY_MEDIAN_S = 30.0
CLICK_DELAY_SIGMA = 2.0


def click_delay_cdf(seconds: float) -> float:
    """P(a click comes within `seconds` of its impression), under the simulator's delay distribution."""
    if seconds <= 0:
        return 0.0
    z = (math.log(seconds) - math.log(CLICK_DELAY_MEDIAN_S)) / CLICK_DELAY_SIGMA
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


@dataclass(frozen=True)
class SimulationConfig:
    """Size and shape of one simulated world. Same config and seed, same data, to the last row."""

    seed: int = 7
    start_date: date = date(2026, 1, 1)
    n_days: int = 28
    n_users: int = 20_000
    n_advertisers: int = 150
    n_ads: int = 1_500
    impressions_per_day: int = 60_000
    base_ctr: float = 0.03  # mean click probability of the first day; fatigue lowers it a little later
    fatigue_per_exposure: float = 0.25
    individual_interest_sd: float = 0.35
    # Drift from day `drift_day` (0-based) on. covariate: a new market (NG) joins with a tenth of the users and
    # most of them on tablets, and everyone's device mix shifts; concept: tastes per age group and category
    # change and position matters less, with the same traffic. Days before are identical to a world without drift.
    drift_kind: str = "none"
    drift_day: int = 0
    # The label is a click within this many seconds (models.ad_click.features' click window): the oracle is the
    # probability of that label.
    click_window_s: float = 3600.0

    def __post_init__(self):
        if self.drift_kind not in ("none", "covariate", "concept"):
            raise ValueError(f"drift_kind must be none, covariate or concept, not {self.drift_kind!r}")
        if self.drift_kind != "none" and not 0 < self.drift_day < self.n_days:
            raise ValueError(f"drift_day must be between 1 and {self.n_days - 1}, not {self.drift_day}")

    def fingerprint(self) -> str:
        payload = json.dumps(asdict(self), default=str, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    @property
    def start(self) -> datetime:
        return datetime.combine(self.start_date, datetime.min.time(), tzinfo=timezone.utc)


@dataclass(frozen=True)
class SimulatedWorld:
    users: pl.DataFrame
    ads: pl.DataFrame
    impressions: pl.DataFrame
    oracle: pl.DataFrame  # impression_id, ts, p_click (of a click within the window): never a feature input


def _timestamps(rng: np.random.Generator, day_start: datetime, n: int) -> np.ndarray:
    hours = rng.choice(24, size=n, p=HOUR_TRAFFIC / HOUR_TRAFFIC.sum())
    micros = hours.astype(np.int64) * 3_600_000_000 + rng.integers(0, 3_600_000_000, size=n)
    base = np.datetime64(day_start.replace(tzinfo=None), "us")
    return np.sort(base + micros.astype("timedelta64[us]"))


def _age_bucket(age: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(AGE_BUCKET_EDGES), age, side="right")


def simulate(config: SimulationConfig) -> SimulatedWorld:
    rng = np.random.default_rng(config.seed)
    n_cat = len(CATEGORIES)
    start = np.datetime64(config.start.replace(tzinfo=None), "us")
    day_us = np.int64(86_400_000_000)
    period_us = day_us * config.n_days

    # Users: interests in each category come mostly from demographics (learnable from features),
    # plus an individual part that only a user's own click history can reveal.
    age = np.clip(rng.normal(36, 12, config.n_users).round(), 18, 80).astype(np.int64)
    gender = rng.choice(len(GENDERS), config.n_users, p=GENDER_WEIGHTS)
    country = rng.choice(len(COUNTRIES), config.n_users, p=COUNTRY_WEIGHTS)
    age_effect = rng.normal(0, 0.6, (len(AGE_BUCKET_EDGES) + 1, n_cat))
    gender_effect = rng.normal(0, 0.35, (len(GENDERS), n_cat))
    country_effect = rng.normal(0, 0.35, (len(COUNTRIES), n_cat))
    interest = (
        age_effect[_age_bucket(age)]
        + gender_effect[gender]
        + country_effect[country]
        + rng.normal(0, config.individual_interest_sd, (config.n_users, n_cat))
    )
    joined_during_period = rng.random(config.n_users) < 0.15
    signup_offset = np.where(
        joined_during_period,
        rng.integers(0, period_us, config.n_users),
        -rng.integers(day_us, 365 * day_us, config.n_users),
    )
    signup_ts = start + signup_offset.astype("timedelta64[us]")
    activity = rng.lognormal(0, 1.0, config.n_users)
    preferred_device = rng.choice(len(DEVICES), config.n_users, p=(0.65, 0.28, 0.07))
    drift_rng = np.random.default_rng([config.seed, 1])  # drift's own stream: days before it stay identical
    drift_start = start + np.timedelta64(config.drift_day * int(day_us), "us")
    concept_interest = None
    if config.drift_kind == "covariate":
        n_new = config.n_users // 10
        new_age = np.clip(drift_rng.normal(27, 6, n_new).round(), 18, 80).astype(np.int64)
        new_gender = drift_rng.choice(len(GENDERS), n_new, p=GENDER_WEIGHTS)
        new_interest = (
            age_effect[_age_bucket(new_age)]
            + gender_effect[new_gender]
            + country_effect[COUNTRIES.index("NG")]
            + drift_rng.normal(0, config.individual_interest_sd, (n_new, n_cat))
        )
        age = np.concatenate([age, new_age])
        gender = np.concatenate([gender, new_gender])
        country = np.concatenate([country, np.full(n_new, COUNTRIES.index("NG"))])
        interest = np.vstack([interest, new_interest])
        signup_ts = np.concatenate([signup_ts, drift_start - drift_rng.integers(1, day_us, n_new).astype("timedelta64[us]")])
        activity = np.concatenate([activity, drift_rng.lognormal(1.0, 1.0, n_new)])
        preferred_device = np.concatenate([preferred_device, drift_rng.choice(len(DEVICES), n_new, p=(0.2, 0.1, 0.7))])
    elif config.drift_kind == "concept":
        concept_interest = (
            interest
            + drift_rng.normal(0, 0.8, (len(AGE_BUCKET_EDGES) + 1, n_cat))[_age_bucket(age)]
        )
    n_users_total = len(age)

    advertiser_quality = rng.normal(0, 0.3, config.n_advertisers)
    ad_advertiser = rng.integers(0, config.n_advertisers, config.n_ads)
    ad_category = rng.integers(0, n_cat, config.n_ads)
    ad_quality = rng.normal(0, 0.4, config.n_ads)
    ad_budget = rng.lognormal(0, 1.0, config.n_ads)
    launched_during_period = rng.random(config.n_ads) < 0.3
    created_offset = np.where(
        launched_during_period,
        rng.integers(0, period_us, config.n_ads),
        -rng.integers(day_us, 120 * day_us, config.n_ads),
    )
    created_ts = start + created_offset.astype("timedelta64[us]")

    parts = []
    for day in range(config.n_days):
        day_start = start + np.timedelta64(day * int(day_us), "us")
        n = int(rng.poisson(config.impressions_per_day))
        ts = _timestamps(rng, config.start + timedelta(days=day), n)
        # Entities become eligible the day after they appear, so every impression postdates them.
        users_ok = np.flatnonzero(signup_ts < day_start)
        ads_ok = np.flatnonzero(created_ts < day_start)
        w_users = activity[users_ok] / activity[users_ok].sum()
        w_ads = ad_budget[ads_ok] / ad_budget[ads_ok].sum()
        user = users_ok[rng.choice(len(users_ok), n, p=w_users)]
        ad = ads_ok[rng.choice(len(ads_ok), n, p=w_ads)]
        position = np.minimum(rng.geometric(0.35, n), MAX_POSITION)
        device = np.where(rng.random(n) < 0.85, preferred_device[user], rng.integers(0, len(DEVICES), n))
        if config.drift_kind == "covariate" and day >= config.drift_day:
            switch = drift_rng.random(n) < 0.3
            device = np.where(switch, drift_rng.choice(len(DEVICES), n, p=(0.3, 0.2, 0.5)), device)
        parts.append((ts, user, ad, position, device))

    ts, user, ad, position, device = (np.concatenate(cols) for cols in zip(*parts))
    n_total = len(ts)
    order = np.lexsort((np.arange(n_total), ts))
    ts, user, ad, position, device = ts[order], user[order], ad[order], position[order], device[order]

    # Ad fatigue: how often this user has already been shown this ad (strictly earlier impressions).
    pair = user.astype(np.int64) * config.n_ads + ad
    prior_exposures = (
        pl.DataFrame({"pair": pair}).select(pl.int_range(pl.len()).over("pair")).to_series().to_numpy()
    )
    hour = ((ts - start).astype(np.int64) // 3_600_000_000) % 24
    device_effect = np.array([DEVICE_EFFECT[d] for d in DEVICES])
    drifted = (ts >= drift_start) if config.drift_kind != "none" else np.zeros(n_total, dtype=bool)
    user_interest = interest[user, ad_category[ad]]
    position_effect = POSITION_EFFECT[position - 1]
    if concept_interest is not None:
        user_interest = np.where(drifted, concept_interest[user, ad_category[ad]], user_interest)
        position_effect = np.where(drifted, 0.4 * position_effect, position_effect)
    logit_wo_intercept = (
        user_interest
        + ad_quality[ad]
        + advertiser_quality[ad_advertiser[ad]]
        + position_effect
        + device_effect[device]
        + HOUR_EFFECT[hour]
        - config.fatigue_per_exposure * prior_exposures
    )
    # The first day sets the base rate, so no day depends on what comes after it (drift included).
    first_day = ts < start + np.timedelta64(int(day_us), "us")
    intercept = _intercept_for_mean(logit_wo_intercept[first_day], config.base_ctr)
    p_click = 1.0 / (1.0 + np.exp(-(intercept + logit_wo_intercept)))
    clicked = (rng.random(n_total) < p_click).astype(np.int64)
    # The delays have a stream of their own, so the clicks themselves are those of a world without delays.
    delay_us = np.random.default_rng([config.seed, 2]).lognormal(
        math.log(CLICK_DELAY_MEDIAN_S * 1e6), CLICK_DELAY_SIGMA, n_total).astype(np.int64)
    click_ts = np.where(clicked == 1, ts + delay_us.astype("timedelta64[us]"), np.datetime64("NaT"))

    impression_id = pl.Series("impression_id", np.arange(n_total)).cast(pl.String).str.zfill(10)
    impressions = pl.DataFrame(
        {
            "impression_id": "imp" + impression_id,
            "ts": pl.Series(ts).dt.replace_time_zone("UTC"),
            "user_id": _ids("u", user, 7),
            "ad_id": _ids("ad", ad, 6),
            "position": position.astype(np.int64),
            "device": np.asarray(DEVICES)[device],
            "clicked": clicked,
            "click_ts": pl.Series(click_ts).dt.replace_time_zone("UTC"),
        }
    )
    users = pl.DataFrame(
        {
            "user_id": _ids("u", np.arange(n_users_total), 7),
            "age": age,
            "gender": np.asarray(GENDERS)[gender],
            "country": np.asarray(COUNTRIES)[country],
            "signup_ts": pl.Series(signup_ts).dt.replace_time_zone("UTC"),
        }
    )
    ads = pl.DataFrame(
        {
            "ad_id": _ids("ad", np.arange(config.n_ads), 6),
            "advertiser_id": _ids("adv", ad_advertiser, 4),
            "category": np.asarray(CATEGORIES)[ad_category],
            "created_ts": pl.Series(created_ts).dt.replace_time_zone("UTC"),
        }
    )
    p_label = p_click * click_delay_cdf(config.click_window_s)
    oracle = pl.DataFrame({"impression_id": impressions["impression_id"], "ts": impressions["ts"], "p_click": p_label})
    return SimulatedWorld(users=users, ads=ads, impressions=impressions, oracle=oracle)


def _ids(prefix: str, index: np.ndarray, width: int) -> pl.Series:
    return prefix + pl.Series(index.astype(np.int64)).cast(pl.String).str.zfill(width)


def _intercept_for_mean(logit: np.ndarray, target: float) -> float:
    """Bisection on the intercept so that the mean click probability equals the target base rate."""
    lo, hi = -15.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1.0 / (1.0 + np.exp(-(mid + logit)))) > target:
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2
