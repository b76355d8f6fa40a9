"""A seeded video platform with a search box: videos made from topic vocabularies, their frames, and a query log.

What drives it (README "Video search: the data"):
- a video has a topic, two subjects of that topic (the second from another topic one time in ten), a style (tutorial,
  review, vlog, highlights), a modifier (beginner, quick, budget, ...) and a latent popularity; its title,
  description and tags are written from them (some words with accents: crème brûlée, jalapeño, café);
- one video in five has poor metadata: a title like "VID_20260304_1432" or "part 3", no description, no tags, so only
  its content says what it is;
- its frames are vectors (32-d) that carry its topic, both subjects and its style with noise, as an image encoder's
  output would; the modifier is not visible in them;
- a query is written from one target video uploaded before it, chosen in proportion to popularity and freshness: its
  first subject (85% of queries), second subject (50%), modifier, style or topic, each word replaced by a synonym one
  time in three (noodles for pasta, novice for beginner) and misspelt one time in sixteen, sometimes with fillers
  ("how to", "video"); 8% of queries end without a click, the rest click the target at a position from 1 to 10.

The oracle knows which attributes a query was written from: a video matching all of them could have produced it, so
the Bayes-optimal ranking puts those first, by the prior the target was drawn with (popularity and freshness at the
query's time). It is stored apart (`video_truth`, `query_truth`) and read by no feature. What a model can learn:
synonyms and typos (from the text encoder), what poor-metadata videos show (from frames and clicks), popularity
(from clicks); what none can: which of several matching videos the searcher meant, beyond the prior.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl

# topic: ((topic word, synonym), subjects as (word, synonym))
TOPICS: dict[str, tuple[tuple[str, str], tuple[tuple[str, str], ...]]] = {
    "cooking": (("cooking", "recipes"), (("pasta", "noodles"), ("curry", "masala"), ("bread", "loaf"), ("soup", "broth"),
                                          ("crème brûlée", "custard"), ("jalapeño", "chili pepper"), ("dumplings", "potstickers"),
                                          ("pancakes", "flapjacks"))),
    "football": (("football", "soccer"), (("penalty", "spot kick"), ("goalkeeper", "keeper"), ("dribbling", "ball control"),
                                           ("free kick", "set piece"), ("tackle", "challenge"), ("derby", "rivalry match"),
                                           ("offside", "offside rule"), ("header", "aerial duel"))),
    "guitar": (("guitar", "six string"), (("chords", "harmony"), ("solo", "lead"), ("fingerpicking", "fingerstyle"),
                                          ("riff", "lick"), ("tuning", "tune up"), ("strumming", "rhythm"), ("amplifier", "amp"),
                                          ("acoustic", "unplugged"))),
    "travel": (("travel", "trip"), (("lisbon", "portugal"), ("backpacking", "hostels"), ("road trip", "driving holiday"),
                                    ("café", "coffee shop"), ("island", "archipelago"), ("night train", "sleeper train"),
                                    ("hiking", "trekking"), ("airport", "flights"))),
    "fitness": (("fitness", "workout"), (("squats", "leg day"), ("running", "jogging"), ("yoga", "stretching"),
                                         ("pushups", "press ups"), ("marathon", "long distance"), ("kettlebell", "swings"),
                                         ("cycling", "biking"), ("protein", "nutrition"))),
    "gaming": (("gaming", "video games"), (("speedrun", "any percent"), ("minecraft", "block building"), ("boss fight", "boss battle"),
                                           ("walkthrough", "playthrough"), ("controller", "gamepad"), ("multiplayer", "online match"),
                                           ("retro", "classic console"), ("mods", "modding"))),
    "gardening": (("gardening", "garden"), (("tomatoes", "tomato plants"), ("compost", "mulch"), ("roses", "rose bush"),
                                            ("seedlings", "sprouts"), ("pruning", "trimming"), ("lawn", "grass"),
                                            ("succulents", "cacti"), ("raised beds", "planters"))),
    "finance": (("finance", "money"), (("budget", "spending plan"), ("index funds", "etf"), ("mortgage", "home loan"),
                                       ("taxes", "tax return"), ("savings", "emergency fund"), ("stocks", "shares"),
                                       ("retirement", "pension"), ("crypto", "bitcoin"))),
    "cars": (("cars", "automotive"), (("oil change", "engine oil"), ("tyres", "tires"), ("electric car", "ev"),
                                      ("brakes", "brake pads"), ("detailing", "car wash"), ("test drive", "road test"),
                                      ("engine", "motor"), ("battery", "jump start"))),
    "pets": (("pets", "animals"), (("puppy", "young dog"), ("kitten", "young cat"), ("dog training", "obedience"),
                                   ("grooming", "bath time"), ("aquarium", "fish tank"), ("parrot", "bird"),
                                   ("rescue", "adoption"), ("vet", "veterinarian"))),
    "science": (("science", "physics"), (("black hole", "event horizon"), ("volcano", "eruption"), ("dinosaurs", "fossils"),
                                         ("telescope", "stargazing"), ("chemistry", "reactions"), ("magnets", "magnetism"),
                                         ("rockets", "spaceflight"), ("earthquakes", "seismic"))),
    "diy": (("diy", "home improvement"), (("drywall", "plasterboard"), ("painting", "repainting"), ("plumbing", "leaky pipe"),
                                          ("tiling", "tiles"), ("woodworking", "carpentry"), ("shelves", "shelving"),
                                          ("wiring", "electrics"), ("insulation", "draught proofing"))),
}
# A topic that appears only under drift ("trend@DAY"): words no training query used.
TREND = ("esports", (("esports", "pro gaming"), (("valorant", "tactical shooter"), ("league finals", "worlds"),
                                                 ("aim training", "aim practice"), ("caster", "commentator"),
                                                 ("clutch", "one versus five"), ("draft", "pick and ban"),
                                                 ("tournament", "bracket"), ("scrims", "practice matches"))))
STYLES = (("tutorial", "how to"), ("review", "honest opinion"), ("vlog", "day in my life"), ("highlights", "best moments"))
MODIFIERS = (("beginner", "novice"), ("quick", "fast"), ("easy", "simple"), ("advanced", "expert"), ("budget", "cheap"),
             ("homemade", "diy"), ("relaxing", "calm"), ("ultimate", "complete"))
FILLERS = ("how to", "video", "watch", "best", "2026", "explained")
POOR_TITLES = ("VID_{date}_{n}", "my video", "new upload", "part {k}", "untitled", "watch till the end", "IMG_{n}")
FRAME_DIM = 32
DRIFT_KINDS = ("trend", "typos")


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 53
    start_date: date = date(2026, 2, 1)
    n_days: int = 28
    catalogue: int = 2_000  # videos uploaded in the 60 days before the first day
    uploads_per_day: int = 30
    queries_per_day: int = 320
    poor_metadata_share: float = 0.2
    synonym_rate: float = 1 / 3
    typo_rate: float = 1 / 16
    frames_per_video: int = 8
    drift_kind: str = "none"
    drift_day: int = 0

    def fingerprint(self) -> str:
        return hashlib.sha256(repr(sorted(asdict(self).items())).encode()).hexdigest()[:16]


@dataclass
class World:
    videos: pl.DataFrame  # the raw-input contract's videos
    frames: pl.DataFrame  # video_id, frame_index, vector
    queries: pl.DataFrame  # query_id, text, ts
    clicks: pl.DataFrame  # query_id, video_id, position, ts
    video_truth: pl.DataFrame  # the oracle: each video's latent attributes and popularity
    query_truth: pl.DataFrame  # the oracle: each query's target and the attributes it was written from


def _typo(word: str, rng: np.random.Generator) -> str:
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = rng.integers(3)
    if kind == 0:  # dropped letter
        return word[:i] + word[i + 1:]
    if kind == 1:  # swapped neighbours
        return word[:i - 1] + word[i] + word[i - 1] + word[i + 1:]
    return word[:i] + word[i] + word[i:]  # doubled letter


def _strip_accents(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def simulate(config: SimulationConfig) -> World:
    rng = np.random.default_rng(config.seed)
    topics = dict(TOPICS)
    trend = config.drift_kind == "trend"
    if trend:
        topics[TREND[0]] = TREND[1]
    names = list(topics)
    regular = [n for n in names if n != TREND[0]]
    subjects = [(t, i) for t in names for i in range(len(topics[t][1]))]
    subject_index = {s: i for i, s in enumerate(subjects)}
    # The content space: what an image encoder would see of a topic, a subject and a style.
    topic_vec = rng.normal(size=(len(names), FRAME_DIM)) / np.sqrt(FRAME_DIM)
    subject_vec = rng.normal(size=(len(subjects), FRAME_DIM)) / np.sqrt(FRAME_DIM)
    style_vec = rng.normal(size=(len(STYLES), FRAME_DIM)) / np.sqrt(FRAME_DIM)
    start = datetime.combine(config.start_date, datetime.min.time(), tzinfo=timezone.utc)
    drift_start = start + timedelta(days=config.drift_day)

    upload_ts = [start - timedelta(days=float(d)) for d in rng.uniform(0, 60, config.catalogue)]
    for day in range(config.n_days):
        upload_ts += [start + timedelta(days=day + float(f)) for f in rng.uniform(0, 1, config.uploads_per_day)]
    upload_ts.sort()
    n_videos = len(upload_ts)
    videos, truth, frames = [], [], []
    for v, ts in enumerate(upload_ts):
        pool = [TREND[0]] if trend and ts >= drift_start and rng.random() < 0.3 else regular
        topic = pool[int(rng.integers(len(pool)))]
        t = names.index(topic)
        first, second = rng.choice(len(topics[topic][1]), 2, replace=False)
        other_topic = topic
        if rng.random() < 0.1:
            other_topic = regular[int(rng.integers(len(regular)))]
            second = int(rng.integers(len(topics[other_topic][1])))
        s1, s2 = topics[topic][1][first][0], topics[other_topic][1][second][0]
        style, modifier = int(rng.integers(len(STYLES))), int(rng.integers(len(MODIFIERS)))
        poor = rng.random() < config.poor_metadata_share
        video_id = f"V{v + 1:06d}"
        if poor:
            template = POOR_TITLES[int(rng.integers(len(POOR_TITLES)))]
            title = template.format(date=f"{ts:%Y%m%d}", n=int(rng.integers(1000, 9999)), k=int(rng.integers(2, 9)))
            description = None if rng.random() < 0.7 else "subscribe for more"
            tags = None
        else:
            mod, sty = MODIFIERS[modifier][0], STYLES[style][0]
            title = [f"{mod.title()} {s1} {sty} | {s2}", f"How I make {s1} with {s2} ({mod})",
                     f"{s1.title()} and {s2}: a {mod} {sty}", f"{s1.title()} {sty}: {mod} {s2} tips"][int(rng.integers(4))]
            description = (f"In this {sty} we look at {s1} and {s2}. Everything about {topics[topic][0][0]}, "
                           f"{['for everyone', 'step by step', 'in ten minutes', 'from scratch'][int(rng.integers(4))]}.")
            tags = ",".join([topics[topic][0][0], s1, s2, sty])
        videos.append((video_id, title, description, tags, ts))
        popularity = float(rng.lognormal(0, 1))
        truth.append((video_id, topic, s1, s2, STYLES[style][0], MODIFIERS[modifier][0], popularity, poor))
        content = (topic_vec[t] + subject_vec[subject_index[(topic, int(first))]]
                   + 0.7 * subject_vec[subject_index[(other_topic, int(second))]] + 0.5 * style_vec[style])
        # Each video is shot its own way (lighting, angle), which averaging its frames does not remove.
        content = content + rng.normal(scale=0.5 / np.sqrt(FRAME_DIM), size=FRAME_DIM)
        noise = rng.normal(scale=1.2 / np.sqrt(FRAME_DIM), size=(config.frames_per_video, FRAME_DIM))
        for f, vector in enumerate((content + noise).astype(np.float32)):
            frames.append((video_id, f, vector))
    video_truth = pl.DataFrame(truth, schema={"video_id": pl.String, "topic": pl.String, "subject_a": pl.String,
                                              "subject_b": pl.String, "style": pl.String, "modifier": pl.String,
                                              "popularity": pl.Float64, "poor_metadata": pl.Boolean}, orient="row")
    upload_seconds = np.array([t.timestamp() for t in upload_ts])
    popularity = video_truth["popularity"].to_numpy()
    synonyms = {w: s for topic in topics.values() for w, s in (topic[0], *topic[1])} | dict(STYLES) | dict(MODIFIERS)

    def word(text: str, typo_rate: float) -> str:
        if rng.random() < config.synonym_rate:
            text = synonyms.get(text, text)
        if rng.random() < 0.5:
            text = _strip_accents(text)
        return " ".join(_typo(w, rng) if rng.random() < typo_rate else w for w in text.split())

    queries, clicks, query_truth = [], [], []
    q = 0
    for day in range(config.n_days):
        drifted = config.drift_kind != "none" and day >= config.drift_day
        typo_rate = 0.3 if drifted and config.drift_kind == "typos" else config.typo_rate
        for offset in np.sort(rng.uniform(0, 1, config.queries_per_day)):
            ts = start + timedelta(days=day + float(offset))
            available = int(np.searchsorted(upload_seconds, ts.timestamp()))
            age_days = (ts.timestamp() - upload_seconds[:available]) / 86_400
            prior = popularity[:available] * (1 + 3 * np.exp(-age_days / 7))
            if drifted and trend:
                prior = prior * np.where(video_truth["topic"][:available].to_numpy() == TREND[0], 8.0, 1.0)
            target = int(rng.choice(available, p=prior / prior.sum()))
            row = video_truth.row(target, named=True)
            include = {"subject_a": rng.random() < 0.85, "subject_b": rng.random() < 0.5,
                       "modifier": rng.random() < 0.35, "style": rng.random() < 0.3, "topic": rng.random() < 0.25}
            if not any(include.values()):
                include["subject_a"] = True
            words = []
            if include["modifier"]:
                words.append(word(row["modifier"], typo_rate))
            if include["subject_a"]:
                words.append(word(row["subject_a"], typo_rate))
            if include["subject_b"]:
                words.append(word(row["subject_b"], typo_rate))
            if include["style"]:
                words.append(word(row["style"], typo_rate))
            if include["topic"]:
                words.append(word(row["topic"], typo_rate))
            if rng.random() < 0.3:
                words.insert(int(rng.integers(len(words) + 1)), FILLERS[int(rng.integers(len(FILLERS)))])
            query_id = f"Q{q + 1:07d}"
            q += 1
            queries.append((query_id, " ".join(words), ts))
            query_truth.append((query_id, row["video_id"], *(row[a] if include[a] else None for a in include)))
            if rng.random() >= 0.08:
                position = int(rng.choice(10, p=_POSITION_P)) + 1
                clicks.append((query_id, row["video_id"], position, ts + timedelta(seconds=float(rng.uniform(2, 40)))))
    ts_type = pl.Datetime("us", "UTC")
    return World(
        videos=pl.DataFrame(videos, schema={"video_id": pl.String, "title": pl.String, "description": pl.String,
                                            "tags": pl.String, "upload_ts": ts_type}, orient="row"),
        frames=pl.DataFrame({"video_id": [f[0] for f in frames], "frame_index": [f[1] for f in frames],
                             "vector": np.stack([f[2] for f in frames])},
                            schema={"video_id": pl.String, "frame_index": pl.Int64,
                                    "vector": pl.List(pl.Float32)}) if frames else pl.DataFrame(),
        queries=pl.DataFrame(queries, schema={"query_id": pl.String, "text": pl.String, "ts": ts_type}, orient="row"),
        clicks=pl.DataFrame(clicks, schema={"query_id": pl.String, "video_id": pl.String, "position": pl.Int64,
                                            "ts": ts_type}, orient="row"),
        video_truth=video_truth.with_columns(upload_ts=pl.Series(upload_ts, dtype=ts_type)),
        query_truth=pl.DataFrame(query_truth, schema={"query_id": pl.String, "target_id": pl.String,
                                                      "subject_a": pl.String, "subject_b": pl.String,
                                                      "modifier": pl.String, "style": pl.String, "topic": pl.String},
                                 orient="row"),
    )


_POSITION_P = np.array([1 / p for p in range(1, 11)]) / sum(1 / p for p in range(1, 11))


def oracle_scores(video_truth: pl.DataFrame, query: dict, ts: datetime) -> np.ndarray:
    """The generator's score of every video (rows of `video_truth`) for one query (a `query_truth` row): videos that
    match every attribute the query was written from first, ordered by the prior the target was drawn with; videos
    uploaded after the query cannot be its target (-inf)."""
    matched = np.zeros(video_truth.height)
    for attribute in ("subject_a", "subject_b"):
        if query[attribute] is not None:  # a query's subjects may be either of a video's two
            matched += ((video_truth["subject_a"] == query[attribute]) | (video_truth["subject_b"] == query[attribute])).to_numpy()
    for attribute in ("modifier", "style", "topic"):
        if query[attribute] is not None:
            matched += (video_truth[attribute] == query[attribute]).to_numpy()
    age_days = (ts - video_truth["upload_ts"]).dt.total_seconds().to_numpy() / 86_400
    prior = video_truth["popularity"].to_numpy() * (1 + 3 * np.exp(-np.clip(age_days, 0, None) / 7))
    return np.where(age_days >= 0, 10 * matched + np.log(prior), -np.inf)
