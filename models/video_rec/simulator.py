"""A seeded video platform: users with latent tastes, videos with latent topics, and who watched what.

Users pick videos by affinity: each view first draws a topic from the user's taste, then a video of that
topic in a language the user speaks, weighted by the video's appeal and freshness (popularity skew and a
steady stream of new uploads). How much of it they watch depends on how well the topic fits, the video's
quality and its length; satisfied viewers sometimes like, disappointed ones sometimes dislike.

The generator knows the truth: `World.expected_relevant(...)` gives, for a user and each video, the chance
that the user's next view is that video and is relevant (watched at least half). Nothing in the pipeline's
features reads it; the evaluation uses it as the ceiling ("oracle").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
from scipy.special import expit
from scipy.stats import norm

COUNTRIES = ["US", "GB", "IN", "DE", "FR", "BR", "JP", "ES"]
COUNTRY_WEIGHTS = [0.34, 0.1, 0.16, 0.1, 0.08, 0.1, 0.06, 0.06]
COUNTRY_LANGUAGE = {"US": "en", "GB": "en", "IN": "en", "DE": "de", "FR": "fr", "BR": "pt", "JP": "ja", "ES": "es"}
LANGUAGES = ["en", "de", "fr", "pt", "ja", "es"]
NEW_LANGUAGE = "hi"  # no video speaks it until a catalogue drift launches it (Indian users speak it)
TOPIC_NAMES = [
    "gaming", "music", "cooking", "fitness", "travel", "science", "comedy", "news", "cars", "diy",
    "fashion", "finance", "pets", "sports", "movies", "education", "tech", "art", "history", "nature",
]
GENERIC_TAGS = ["funny", "howto", "live", "shorts", "review", "2026"]
TAGS_PER_TOPIC = 8
OTHER_LANGUAGE_APPEAL = 0.08  # a video in a language the user does not speak is rarely picked
EXPLORATION = 0.15  # share of views whose topic ignores the user's taste
WATCH_NOISE = 0.9  # std of the noise on a view's watch logit: relevance is a coin, not a rule
TARGET_RELEVANT_SHARE = 0.5  # the watch intercept is calibrated so that about half of the first day's views are relevant


@dataclass(frozen=True)
class VideoSimulationConfig:
    seed: int = 11
    start_date: date = date(2026, 1, 1)
    n_days: int = 28
    n_users: int = 3_000
    n_videos: int = 3_000  # the catalogue when the window starts
    new_videos_per_day: int = 60
    n_topics: int = 16
    n_channels: int = 300
    views_per_user_day: float = 1.2
    duplicate_share: float = 0.03  # new uploads that re-upload an existing video under another channel
    # Drift from day `drift_day` (0-based) on; days before it are identical to the world without drift.
    # taste: users under 45 move most of their interest to two topics they hardly watched;
    # catalogue: a burst of uploads in one topic, many in a new language (NEW_LANGUAGE) that Indian users speak.
    drift_kind: str = "none"
    drift_day: int = 0

    def __post_init__(self):
        if self.drift_kind not in ("none", "taste", "catalogue"):
            raise ValueError(f"drift_kind must be none, taste or catalogue, not {self.drift_kind!r}")
        if self.drift_kind != "none" and not 0 < self.drift_day < self.n_days:
            raise ValueError(f"drift_day must be between 1 and {self.n_days - 1}, not {self.drift_day}")

    def fingerprint(self) -> str:
        payload = json.dumps({k: str(v) for k, v in asdict(self).items()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass
class World:
    config: VideoSimulationConfig
    users: pl.DataFrame
    videos: pl.DataFrame
    interactions: pl.DataFrame
    # Latent truth, kept out of every table the pipeline reads.
    user_taste: np.ndarray  # (users, topics)
    user_speaks: np.ndarray  # (users, languages) bool
    video_topic: np.ndarray  # (videos,)
    video_language: np.ndarray  # (videos,) index into LANGUAGES
    video_quality: np.ndarray
    video_appeal: np.ndarray
    video_upload: np.ndarray  # days since the window start (float; negative = before it)
    video_log_duration: np.ndarray
    watch_intercept: float = 0.0
    taste_after_drift: np.ndarray | None = None  # (users, topics) from config.drift_day on (taste drift)

    def taste_at(self, day: float) -> np.ndarray:
        if self.taste_after_drift is not None and day >= self.config.drift_day:
            return self.taste_after_drift
        return self.user_taste

    def _weights(self, day: float) -> np.ndarray:
        age = day - self.video_upload
        available = age >= 0
        return np.where(available, self.video_appeal * (1 + 3 * np.exp(-np.clip(age, 0, None) / 3)), 0.0)

    def relevance_probability(self, user_index: np.ndarray, day: float = 0.0) -> np.ndarray:
        """P(watched >= half | the user views the video), (len(user_index), videos)."""
        mean = _watch_logit_mean(
            self.taste_at(day)[user_index][:, self.video_topic], self.video_quality[None, :], self.video_log_duration[None, :],
            self.config.n_topics,
        )
        return norm.cdf((mean + self.watch_intercept) / WATCH_NOISE)

    def choice_probability(self, user_index: np.ndarray, day: float) -> np.ndarray:
        """P(the user's next view on `day` is the video), (len(user_index), videos)."""
        weights = self._weights(day)
        n_topics = self.config.n_topics
        topic_mix = (1 - EXPLORATION) * self.taste_at(day)[user_index] + EXPLORATION / n_topics
        language_factor = np.where(self.user_speaks[user_index][:, self.video_language], 1.0, OTHER_LANGUAGE_APPEAL)
        appeal = language_factor * weights[None, :]
        totals = np.zeros((len(user_index), n_topics))
        for topic in range(n_topics):
            totals[:, topic] = appeal[:, self.video_topic == topic].sum(axis=1)
        share = appeal / np.maximum(totals[:, self.video_topic], 1e-12)
        return topic_mix[:, self.video_topic] * share

    def expected_relevant(self, user_ids: list[str], day: float) -> np.ndarray:
        """The generator's truth: P(next view is the video and relevant), users x videos (in `videos` order)."""
        index = self.users.with_row_index("i").filter(pl.col("user_id").is_in(user_ids))
        order = dict(zip(index["user_id"], index["i"]))
        rows = np.array([order[u] for u in user_ids])
        return self.choice_probability(rows, day) * self.relevance_probability(rows, day)


def _watch_logit_mean(taste: np.ndarray, quality: np.ndarray, log_duration: np.ndarray, n_topics: int) -> np.ndarray:
    affinity = np.clip(np.log(taste * n_topics + 1e-3), -3, 2)
    return 0.9 * affinity + 0.6 * quality - 0.35 * (log_duration - np.log(300))


def _calibrate_intercept(world: World, rng: np.random.Generator) -> float:
    """The watch intercept giving TARGET_RELEVANT_SHARE relevant views on day 0 (bisection on the exact expectation),
    so the share does not depend on the catalogue's size."""
    sample = rng.choice(world.user_taste.shape[0], min(300, world.user_taste.shape[0]), replace=False)
    choice = world.choice_probability(sample, 0.0)
    mean = _watch_logit_mean(
        world.user_taste[sample][:, world.video_topic], world.video_quality[None, :], world.video_log_duration[None, :],
        world.config.n_topics,
    )
    low, high = -15.0, 15.0
    for _ in range(40):
        middle = (low + high) / 2
        share = float((choice * norm.cdf((mean + middle) / WATCH_NOISE)).sum(axis=1).mean())
        low, high = (middle, high) if share < TARGET_RELEVANT_SHARE else (low, middle)
    return (low + high) / 2


def simulate(config: VideoSimulationConfig) -> World:
    rng = np.random.default_rng(config.seed)
    start = datetime.combine(config.start_date, datetime.min.time(), tzinfo=timezone.utc)
    n_topics = config.n_topics
    topics = TOPIC_NAMES[:n_topics]

    # Users: demographics shape taste, so a new user's demographics already say something.
    n_users = config.n_users
    country = rng.choice(len(COUNTRIES), n_users, p=COUNTRY_WEIGHTS)
    age = rng.integers(13, 71, n_users)
    gender = rng.choice(2, n_users)
    group = np.digitize(age, [25, 45]) * 2 + gender
    group_prior = rng.dirichlet(np.full(n_topics, 0.4), size=6)
    own = rng.dirichlet(np.full(n_topics, 0.15), size=n_users)
    taste = 0.4 * group_prior[group] + 0.6 * own
    speaks = np.zeros((n_users, len(LANGUAGES) + 1), dtype=bool)  # the last column: NEW_LANGUAGE
    speaks[np.arange(n_users), [LANGUAGES.index(COUNTRY_LANGUAGE[COUNTRIES[c]]) for c in country]] = True
    speaks[:, 0] |= rng.random(n_users) < 0.3  # many also watch English videos
    activity = rng.lognormal(-0.3, 0.8, n_users)
    activity /= activity.mean()

    # Channels and videos: a channel has a topic and a language; its videos mostly share them.
    n_channels = config.n_channels
    channel_topic = rng.choice(n_topics, n_channels, p=rng.dirichlet(np.full(n_topics, 3.0)))
    channel_language = rng.choice(len(LANGUAGES), n_channels, p=[0.55, 0.09, 0.08, 0.1, 0.08, 0.1])
    channel_quality = rng.normal(0, 0.5, n_channels)
    n_new = config.new_videos_per_day * config.n_days
    n_videos = config.n_videos + n_new
    channel = rng.integers(0, n_channels, n_videos)
    topic = np.where(rng.random(n_videos) < 0.85, channel_topic[channel], rng.integers(0, n_topics, n_videos))
    language = channel_language[channel]
    quality = channel_quality[channel] + rng.normal(0, 0.7, n_videos)
    log_duration = np.clip(rng.normal(np.log(300), 0.8, n_videos), np.log(15), np.log(7200))
    upload = np.concatenate([
        -rng.uniform(0, 180, config.n_videos),
        np.repeat(np.arange(config.n_days), config.new_videos_per_day) + rng.uniform(0, 1, n_new),
    ])
    appeal = np.exp(0.9 * quality) * rng.lognormal(0, 1.0, n_videos)
    tag_rank = rng.zipf(1.6, (n_videos, 5)).clip(1, TAGS_PER_TOPIC) - 1
    n_tags = rng.integers(3, 6, n_videos)
    tags = []
    for v in range(n_videos):
        own_tags = dict.fromkeys(f"{topics[topic[v]]}-{r}" for r in tag_rank[v, : n_tags[v]])
        tag_list = [topics[topic[v]], *own_tags]
        if rng.random() < 0.4:
            tag_list.append(GENERIC_TAGS[rng.integers(len(GENERIC_TAGS))])
        tags.append(tag_list)
    titles = [f"{' '.join(t[1:3]).replace('-', ' ')} #{v}" for v, t in enumerate(tags)]
    # Re-uploads: the same video (title, tags, content) under another channel and id.
    for v in np.flatnonzero((np.arange(n_videos) >= config.n_videos) & (rng.random(n_videos) < config.duplicate_share)):
        original = int(rng.integers(0, v))
        topic[v], language[v], quality[v], log_duration[v] = topic[original], language[original], quality[original], log_duration[original]
        appeal[v] = appeal[original] * 0.5
        tags[v], titles[v] = list(tags[original]), titles[original]

    taste_after = None
    drift_rng = np.random.default_rng([config.seed, 1])  # drift's own stream: days before it stay identical
    if config.drift_kind == "taste":
        # Interest by age group moves: the under-45s put most of it on two topics their groups hardly watched.
        young = age < 45
        rare = np.argsort(group_prior[group[young]].mean(axis=0))[:2]
        target = np.zeros(n_topics)
        target[rare] = [0.6, 0.4]
        taste_after = taste.copy()
        taste_after[young] = 0.3 * taste[young] + 0.7 * target
    elif config.drift_kind == "catalogue":
        speaks[:, len(LANGUAGES)] = (country == COUNTRIES.index("IN")) & (drift_rng.random(n_users) < 0.8)
        n_burst = max(60, config.n_videos // 10)
        burst_topic = int(drift_rng.integers(n_topics))
        burst_channels = drift_rng.integers(0, n_channels, n_burst)
        topic = np.concatenate([topic, np.full(n_burst, burst_topic)])
        language = np.concatenate([language, np.where(drift_rng.random(n_burst) < 0.6, len(LANGUAGES),
                                                      channel_language[burst_channels])])
        burst_quality = channel_quality[burst_channels] + drift_rng.normal(0.5, 0.7, n_burst)
        quality = np.concatenate([quality, burst_quality])
        log_duration = np.concatenate([log_duration, np.clip(drift_rng.normal(np.log(300), 0.8, n_burst), np.log(15), np.log(7200))])
        # Uploaded over the drift day and the next; watched from the day after upload, like every video.
        upload = np.concatenate([upload, config.drift_day + drift_rng.uniform(0, 2, n_burst)])
        appeal = np.concatenate([appeal, 2 * np.exp(0.9 * burst_quality) * drift_rng.lognormal(0, 1.0, n_burst)])
        channel = np.concatenate([channel, burst_channels])
        for v in range(n_burst):
            ranks = drift_rng.zipf(1.6, 4).clip(1, TAGS_PER_TOPIC) - 1
            tag_list = [topics[burst_topic], *dict.fromkeys(f"{topics[burst_topic]}-{r}" for r in ranks)]
            tags.append(tag_list)
            titles.append(f"{' '.join(tag_list[1:3]).replace('-', ' ')} #{n_videos + v}")
        n_videos += n_burst

    world = World(
        config=config,
        users=pl.DataFrame(),
        videos=pl.DataFrame(),
        interactions=pl.DataFrame(),
        user_taste=taste,
        user_speaks=speaks,
        video_topic=topic,
        video_language=language,
        video_quality=quality,
        video_appeal=appeal,
        video_upload=upload,
        video_log_duration=log_duration,
        taste_after_drift=taste_after,
    )
    world.watch_intercept = _calibrate_intercept(world, rng)
    interactions = _simulate_views(world, activity, rng, config)

    video_ids = np.array([f"v{v:07d}" for v in range(n_videos)])
    user_ids = np.array([f"u{u:06d}" for u in range(n_users)])
    # Missing values have their own stream: how many draws the views took (drift changes it) does not move them.
    missing_rng = np.random.default_rng([config.seed, 2])
    null = lambda share, n: missing_rng.random(n) < share  # noqa: E731 (a tiny local helper)
    world.users = pl.DataFrame({
        "user_id": user_ids,
        "age": pl.Series(age, dtype=pl.Int64),
        "gender": np.array(["f", "m"])[gender],
        "country": np.array(COUNTRIES)[country],
    }).with_columns(
        age=pl.when(pl.Series(null(0.05, n_users))).then(None).otherwise(pl.col("age")),
        gender=pl.when(pl.Series(null(0.1, n_users))).then(None).otherwise(pl.col("gender")),
        country=pl.when(pl.Series(null(0.02, n_users))).then(None).otherwise(pl.col("country")),
    )
    n_base = config.n_videos + n_new

    def missing(share: float) -> np.ndarray:  # a drift's own videos draw from the drift's stream
        return np.concatenate([null(share, n_base), drift_rng.random(n_videos - n_base) < share])

    upload_ts = pl.Series([start + timedelta(days=float(d)) for d in upload], dtype=pl.Datetime("us", "UTC"))
    world.videos = pl.DataFrame({
        "video_id": video_ids,
        "title": titles,
        "tags": pl.Series(tags, dtype=pl.List(pl.String)),
        "duration_s": np.round(np.exp(log_duration), 1),
        "language": np.array([*LANGUAGES, NEW_LANGUAGE])[language],
        "upload_ts": upload_ts,
        "channel_id": [f"c{c:04d}" for c in channel],
    }).with_columns(
        duration_s=pl.when(pl.Series(missing(0.01))).then(None).otherwise(pl.col("duration_s")),
        language=pl.when(pl.Series(missing(0.02))).then(None).otherwise(pl.col("language")),
    )
    world.interactions = interactions.with_columns(
        user_id=pl.Series(user_ids)[interactions["user"]],
        video_id=pl.Series(video_ids)[interactions["video"]],
        ts=pl.lit(start) + pl.duration(seconds=pl.col("seconds")),
    ).select("user_id", "video_id", pl.col("ts").cast(pl.Datetime("us", "UTC")), "watch_fraction", "liked")
    return world


def _simulate_views(world: World, activity: np.ndarray, rng: np.random.Generator, config: VideoSimulationConfig) -> pl.DataFrame:
    n_users, n_topics = world.user_taste.shape
    seen: set[tuple[int, int]] = set()
    parts = []
    for day in range(config.n_days):
        taste = world.taste_at(day)
        topic_cdf = np.cumsum((1 - EXPLORATION) * taste + EXPLORATION / n_topics, axis=1)
        weights = world._weights(float(day))  # videos uploaded during the day are watched from the next one
        # Users who speak the same languages share the per-topic sampling tables of a day. A language no video
        # available today speaks (the new one, before its launch) does not split them: the draws stay the same.
        spoken = len(LANGUAGES) + int(bool((weights[world.video_language == len(LANGUAGES)] > 0).any()))
        speak_key = world.user_speaks[:, :spoken] @ (1 << np.arange(spoken))
        counts = rng.poisson(activity * config.views_per_user_day)
        user = np.repeat(np.arange(n_users), counts)
        topic = (rng.random(len(user))[:, None] > topic_cdf[user]).sum(axis=1).clip(0, n_topics - 1)
        video = np.empty(len(user), dtype=np.int64)
        for key in np.unique(speak_key):
            speaks = world.user_speaks[np.flatnonzero(speak_key == key)[0]]
            appeal = weights * np.where(speaks[world.video_language], 1.0, OTHER_LANGUAGE_APPEAL)
            for t in range(n_topics):
                rows = np.flatnonzero((speak_key[user] == key) & (topic == t))
                if not len(rows):
                    continue
                pool = np.flatnonzero((world.video_topic == t) & (appeal > 0))
                cdf = np.cumsum(appeal[pool])
                video[rows] = pool[np.searchsorted(cdf, rng.random(len(rows)) * cdf[-1]).clip(0, len(pool) - 1)]
        keep = np.ones(len(user), dtype=bool)
        for i, pair in enumerate(zip(user.tolist(), video.tolist())):
            if pair in seen:
                keep[i] = False  # a re-watch is not a new interaction
            else:
                seen.add(pair)
        user, video = user[keep], video[keep]
        mean = world.watch_intercept + _watch_logit_mean(
            taste[user, world.video_topic[video]], world.video_quality[video], world.video_log_duration[video], n_topics
        )
        logit = mean + rng.normal(0, WATCH_NOISE, len(user))
        # Watched >= half exactly when the logit is >= 0, so P(relevant) is known in closed form.
        watch = np.clip(expit(1.2 * logit) + rng.normal(0, 0.03, len(user)), 0, 1)
        watch = np.where(logit >= 0, np.maximum(watch, 0.5), np.minimum(watch, 0.499))
        likes = (logit >= 0) & (rng.random(len(user)) < expit(1.5 * logit - 1.0))
        dislikes = (watch < 0.25) & (rng.random(len(user)) < 0.15)
        no_report = rng.random(len(user)) < 0.01
        seconds = (day + rng.random(len(user))) * 86_400
        parts.append(pl.DataFrame({
            "user": user, "video": video, "seconds": seconds,
            "watch_fraction": pl.Series(np.where(no_report, np.nan, np.round(watch, 4))).fill_nan(None),
            "liked": np.where(likes, 1, np.where(dislikes, 0, -1)),
        }).with_columns(liked=pl.when(pl.col("liked") == 1).then(True).when(pl.col("liked") == 0).then(False)))
    return pl.concat(parts).sort("seconds")
