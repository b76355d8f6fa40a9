"""A seeded social network: users with interests, ties of different strength, authors posting on topics, feed
sessions of impressions, and correlated reactions drawn from a latent model.

What drives behaviour (README "News feed: the data"):
- a user has an interest in each of twelve topics, a taste for each media kind, a reading habit, and a reactivity:
  a third of users are passive (they read, but like, comment and share about a tenth as often);
- a tie has a kind (family, close friend, friend, or a follow of a creator) and a latent strength that the kind
  only hints at; friendships grow inside communities, so friends share friends;
- a post has its author's topic (mostly one of their one or two), hashtags of that topic, a media kind, text written
  from the topic, and a latent quality around its author's;
- a feed session shows up to ten unseen posts by the user's ties from the last three days, in a random order (the
  simulated platform logs an exploration feed, so replaying it offline favours no ranking), at positions 1..n.

An impression's engagement is z = interest in the topic + tie strength + quality + media taste + reading habit - age
of the post. The user reads it with P = sigmoid(0.2 + 0.6 z) times an examination factor that falls with position;
only a read post is clicked, liked, commented on or shared (each with its own dependence on z, tie and quality,
scaled by reactivity: a passive user clicks a third as often and likes a tenth), hidden or blocked (more when z is
low). Dwell is long when read (longer for video and images, a little longer for high z)
and a fraction of a second when scrolled past; a skip is dwell under two seconds. Reactions are correlated through
reading and z. The oracle is each head's probability (and the expected capped dwell) given the latents, at the
logged position and at the top; it is stored apart (`impression_truth`) and read by no feature.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl

TOPICS = {
    # topic: (hashtags, subjects)
    "football": (("football", "matchday", "goal", "league"), ("the derby last night", "our striker's hat-trick", "the transfer window", "the title race")),
    "cooking": (("recipe", "homecooking", "foodie", "baking"), ("a sourdough loaf", "a quick weeknight curry", "grandma's lasagne", "lemon tart")),
    "travel": (("travel", "wanderlust", "roadtrip", "beach"), ("a week in Lisbon", "hiking the Dolomites", "a night train to Vienna", "island hopping in Greece")),
    "tech": (("tech", "gadgets", "coding", "ai"), ("the new phone launch", "a side project in Rust", "a laptop that finally lasts", "language models at work")),
    "music": (("music", "livemusic", "newalbum", "concert"), ("last night's gig", "an album on repeat", "learning the guitar", "the festival line-up")),
    "parenting": (("parenting", "kids", "family", "toddler"), ("the first day of school", "sleepless nights", "a rainy day with the kids", "bedtime stories")),
    "fitness": (("fitness", "running", "gym", "marathon"), ("a new personal best", "marathon training", "a morning yoga habit", "leg day")),
    "politics": (("politics", "election", "policy", "debate"), ("the budget debate", "the local election", "a new housing policy", "the climate summit")),
    "pets": (("pets", "dogsofinstagram", "cats", "puppy"), ("our new puppy", "the cat's latest mischief", "a long walk with the dog", "adopting a rescue")),
    "movies": (("movies", "cinema", "filmreview", "series"), ("the film everyone is talking about", "a series worth binging", "an old classic", "the awards night")),
    "gardening": (("gardening", "plants", "growyourown", "flowers"), ("the first tomatoes", "a balcony garden", "pruning the roses", "seedlings on the windowsill")),
    "finance": (("finance", "investing", "savings", "money"), ("paying off the mortgage", "index funds explained", "a budget that works", "rising interest rates")),
}
TOPIC_NAMES = tuple(TOPICS)
MEDIA = ("text", "image", "video")
TIE_KINDS = ("family", "close_friend", "friend", "follow")
TIE_STRENGTH = {"family": 1.0, "close_friend": 0.8, "friend": 0.15, "follow": -0.2}
GENDERS = ("female", "male", "nonbinary")
DEVICES = ("mobile", "desktop", "tablet")
OPENERS = ("", "Honestly,", "So", "Finally:", "Can't stop thinking about", "Quick update on", "Thoughts on")
CLOSERS = ("", "What do you think?", "Loved it.", "More soon.", "Who else?", "Never again.", "Highly recommend.")
HEADS = ("click", "like", "comment", "share", "hide", "block", "skip")
SKIP_SECONDS = 2.0
DWELL_CAP = 60.0  # seconds: the engagement a long read adds stops growing here (the dwell head's target is capped)
PASSIVE_REACTIVITY = 0.1
COMMUNITY_SIZE = 60


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 41
    start_date: date = date(2026, 3, 1)
    n_days: int = 21
    n_users: int = 2_500
    sessions_per_day: int = 700
    posts_per_user_day: float = 0.12
    friends_per_user: float = 14.0
    follows_per_user: float = 3.0
    creator_share: float = 0.02
    passive_share: float = 0.3
    new_user_share: float = 0.04  # users who join during the simulated days
    feed_size: int = 10
    candidate_days: int = 3
    drift_kind: str = "none"  # taste: interests change; quality: posts get worse
    drift_day: int = 0

    def fingerprint(self) -> str:
        return hashlib.sha256(repr(sorted(asdict(self).items())).encode()).hexdigest()[:16]


@dataclass
class World:
    users: pl.DataFrame
    friendships: pl.DataFrame
    posts: pl.DataFrame
    impressions: pl.DataFrame
    reactions: pl.DataFrame
    dwell: pl.DataFrame
    impression_truth: pl.DataFrame


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def examination(position) -> np.ndarray:
    """The chance a user gets to a post at a position at all (position bias)."""
    return 1 / (1 + 0.08 * (np.asarray(position, dtype=float) - 1))


def _normal_cdf(x):
    from scipy.special import ndtr

    return ndtr(x)


def _capped_lognormal_mean(mu, sigma, cap):
    """E[min(X, cap)] for X lognormal(mu, sigma)."""
    log_cap = np.log(cap)
    return (np.exp(mu + sigma**2 / 2) * _normal_cdf((log_cap - mu - sigma**2) / sigma)
            + cap * (1 - _normal_cdf((log_cap - mu) / sigma)))


READ_SIGMA, SCROLL_MU, SCROLL_SIGMA = 0.6, -0.4, 0.5


def head_probabilities(z, strength, quality, media, follow, reactivity, exam) -> dict[str, np.ndarray]:
    """Each head's probability (and E[min(dwell, DWELL_CAP)]) of impressions given the latents: the generator's truth."""
    z, exam = np.asarray(z, float), np.asarray(exam, float)
    p_read = _sigmoid(0.2 + 0.6 * z) * exam
    rich = (np.asarray(media) != 0).astype(float)
    video = (np.asarray(media) == 2).astype(float)
    given_read = {
        "click": np.minimum(1.0, np.sqrt(reactivity) * _sigmoid(-1.0 + 0.8 * z + 0.2 * rich)),
        "like": np.minimum(1.0, reactivity * _sigmoid(-1.2 + 1.0 * z)),
        "comment": np.minimum(1.0, reactivity * _sigmoid(-3.4 + 0.8 * z + 1.2 * strength)),
        "share": np.minimum(1.0, reactivity * _sigmoid(-3.6 + 0.9 * z + 0.9 * quality)),
        "hide": _sigmoid(-3.4 - 1.1 * z) * np.sqrt(reactivity),
        "block": _sigmoid(-6.0 - 1.3 * z + 1.2 * follow),
    }
    # How long a read lasts depends on the medium more than on liking it: what a passive reader's dwell tells apart.
    mu_read = 1.5 + 0.3 * z + 0.9 * video + 0.3 * rich
    out = {head: p_read * p for head, p in given_read.items()}
    out["skip"] = (p_read * _normal_cdf((np.log(SKIP_SECONDS) - mu_read) / READ_SIGMA)
                   + (1 - p_read) * _normal_cdf((np.log(SKIP_SECONDS) - SCROLL_MU) / SCROLL_SIGMA))
    out["dwell"] = (p_read * _capped_lognormal_mean(mu_read, READ_SIGMA, DWELL_CAP)
                    + (1 - p_read) * _capped_lognormal_mean(SCROLL_MU, SCROLL_SIGMA, DWELL_CAP))
    out["read"] = p_read
    out["given_read"] = given_read
    out["mu_read"] = mu_read
    return out


def _text(rng, topic: str) -> str:
    subject = TOPICS[topic][1][rng.integers(len(TOPICS[topic][1]))]
    return f"{OPENERS[rng.integers(len(OPENERS))]} {subject}. {CLOSERS[rng.integers(len(CLOSERS))]}".strip()


def simulate(config: SimulationConfig) -> World:
    rng = np.random.default_rng(config.seed)
    n, topics = config.n_users, len(TOPIC_NAMES)
    start = datetime.combine(config.start_date, datetime.min.time(), tzinfo=timezone.utc)
    end = start + timedelta(days=config.n_days)

    # Users.
    interest = rng.dirichlet(np.full(topics, 0.5), n)
    media_taste = rng.normal(0, 0.5, (n, len(MEDIA)))
    passive = rng.random(n) < config.passive_share
    reactivity = np.where(passive, PASSIVE_REACTIVITY, np.clip(rng.lognormal(0, 0.3, n), 0.3, 1.6))
    reading = rng.normal(0, 0.5, n)
    activity = rng.gamma(1.0, 1.0, n)
    age = np.clip(rng.normal(36, 13, n), 16, 80).round().astype(int)
    gender = rng.choice(len(GENDERS), n, p=[0.49, 0.48, 0.03])
    device = rng.choice(len(DEVICES), n, p=[0.7, 0.22, 0.08])
    joined = np.array([start - timedelta(days=float(d)) for d in rng.uniform(30, 2_500, n)])
    newcomers = rng.choice(n, int(n * config.new_user_share), replace=False)
    for u in newcomers:
        joined[u] = start + timedelta(days=float(rng.uniform(1, max(config.n_days - 2, 1.5))))
    creator = np.zeros(n, bool)
    creator[rng.choice(n, max(int(n * config.creator_share), 1), replace=False)] = True
    # Authors write mostly on one or two topics.
    author_topics = rng.dirichlet(np.full(topics, 0.15), n)
    author_quality = rng.normal(0, 0.7, n) + 0.5 * creator
    post_rate = rng.gamma(0.8, config.posts_per_user_day / 0.8, n) * np.where(creator, 8.0, 1.0)

    # Ties: mutual friendships mostly inside communities (so friends share friends), follows of creators.
    community = np.arange(n) // COMMUNITY_SIZE
    members = [np.flatnonzero(community == c) for c in range(community.max() + 1)]
    ties: dict[tuple[int, int], tuple[str, float, datetime]] = {}
    for u in range(n):
        for _ in range(rng.poisson(config.friends_per_user / 2)):
            pool = members[community[u]] if rng.random() < 0.85 else np.arange(n)
            v = int(pool[rng.integers(len(pool))])
            if v == u or (min(u, v), max(u, v)) in ties:
                continue
            kind = TIE_KINDS[rng.choice(3, p=[0.1, 0.2, 0.7])]
            since = max(joined[u], joined[v]) + timedelta(days=float(rng.uniform(0, 400)))
            if since >= end:
                since = max(joined[u], joined[v]) + timedelta(hours=float(rng.uniform(1, 24)))
            ties[(min(u, v), max(u, v))] = (kind, TIE_STRENGTH[kind] + rng.normal(0, 0.3), since)
    creators = np.flatnonzero(creator)
    popularity = rng.gamma(1.0, 1.0, len(creators))
    follows: dict[tuple[int, int], tuple[str, float, datetime]] = {}
    for u in range(n):
        for c in rng.choice(creators, min(len(creators), rng.poisson(config.follows_per_user)), replace=False,
                            p=popularity / popularity.sum()):
            if c != u and (min(u, c), max(u, c)) not in ties:
                follows[(u, int(c))] = ("follow", TIE_STRENGTH["follow"] + rng.normal(0, 0.3),
                                        joined[u] + timedelta(days=float(rng.uniform(0, 30))))
    # Who sees whose posts, with the tie's kind and strength.
    sees: list[dict[int, tuple[int, float]]] = [dict() for _ in range(n)]  # viewer -> {author: (kind index, strength)}
    for (a, b), (kind, strength, since) in ties.items():
        sees[a][b] = sees[b][a] = (TIE_KINDS.index(kind), strength)
    for (u, c), (kind, strength, since) in follows.items():
        sees[u][c] = (TIE_KINDS.index(kind), strength)
    tie_since = {**{k: v[2] for k, v in ties.items()}, **{k: v[2] for k, v in follows.items()}}

    # Posts, from a few days before the start so the first day has a feed.
    post = {k: [] for k in ("author", "topic", "media", "quality", "created", "hashtags", "text")}
    lead = config.candidate_days
    for day in range(-lead, config.n_days):
        quality_shift = -1.0 if config.drift_kind == "quality" and day >= config.drift_day else 0.0
        counts = rng.poisson(post_rate)
        for author in np.flatnonzero(counts):
            for _ in range(counts[author]):
                created = start + timedelta(days=day, seconds=float(rng.uniform(0, 86_400)))
                if created < joined[author]:
                    continue
                topic = int(rng.choice(topics, p=author_topics[author]))
                name = TOPIC_NAMES[topic]
                tags = list(rng.choice(TOPICS[name][0], int(rng.integers(0, 3)), replace=False))
                post["author"].append(int(author))
                post["topic"].append(topic)
                post["media"].append(int(rng.choice(3, p=[0.45, 0.4, 0.15])))
                post["quality"].append(float(author_quality[author] + rng.normal(0, 0.7) + quality_shift))
                post["created"].append(created)
                post["hashtags"].append(" ".join(tags) if tags else None)
                post["text"].append(_text(rng, name))
    order = np.argsort(np.array([t.timestamp() for t in post["created"]]), kind="stable")
    post = {k: [v[i] for i in order] for k, v in post.items()}
    p_author, p_topic = np.array(post["author"]), np.array(post["topic"])
    p_media, p_quality = np.array(post["media"]), np.array(post["quality"])
    p_created = np.array([t.timestamp() for t in post["created"]])
    by_author: dict[int, list[int]] = {}
    for i, a in enumerate(p_author):
        by_author.setdefault(int(a), []).append(i)
    created_by_author = {a: [p_created[i] for i in idx] for a, idx in by_author.items()}

    # Sessions.
    imp = {k: [] for k in ("user", "post", "ts", "position", "device")}
    truth = {k: [] for k in (*HEADS, "dwell", *(f"top_{h}" for h in HEADS), "top_dwell")}
    reactions = {k: [] for k in ("impression", "reaction", "ts")}
    dwell_seconds: list[float] = []
    seen: list[set[int]] = [set() for _ in range(n)]
    window = config.candidate_days * 86_400
    for day in range(config.n_days):
        if config.drift_kind == "taste" and day == config.drift_day:
            interest = rng.dirichlet(np.full(topics, 0.5), n)
        today = start + timedelta(days=day)
        active = np.array([joined[u] <= today + timedelta(days=1) for u in range(n)])
        weights = activity * active
        users_today = rng.choice(n, config.sessions_per_day, p=weights / weights.sum())
        times = np.sort(rng.uniform(6 * 3600, 24 * 3600, config.sessions_per_day)) + today.timestamp()
        for u, t in zip(users_today, times):
            if joined[u].timestamp() > t:
                continue
            candidates = []
            for author in sees[u]:
                created = created_by_author.get(author)
                if not created:
                    continue
                lo, hi = bisect_left(created, t - window), bisect_right(created, t - 60)
                for i in by_author[author][lo:hi]:
                    if i not in seen[u]:
                        candidates.append(i)
            if not candidates:
                continue
            shown = rng.permutation(np.array(candidates))[: config.feed_size]
            positions = np.arange(1, len(shown) + 1)
            kind = np.array([sees[u][p_author[i]][0] for i in shown])
            strength = np.array([sees[u][p_author[i]][1] for i in shown])
            hours_old = (t - p_created[shown]) / 3600
            z = (0.9 * np.log(topics * interest[u, p_topic[shown]] + 0.2) + strength + 0.6 * p_quality[shown]
                 + media_taste[u, p_media[shown]] + reading[u] - 0.35 * hours_old / 24)
            follow = (kind == TIE_KINDS.index("follow")).astype(float)
            probs = head_probabilities(z, strength, p_quality[shown], p_media[shown], follow, reactivity[u],
                                       examination(positions))
            top = head_probabilities(z, strength, p_quality[shown], p_media[shown], follow, reactivity[u], np.ones(len(shown)))
            read = rng.random(len(shown)) < probs["read"]
            session_device = DEVICES[device[u]] if rng.random() < 0.85 else DEVICES[rng.integers(len(DEVICES))]
            for j, i in enumerate(shown):
                seen[u].add(int(i))
                index = len(imp["user"])
                ts = t + 4.0 * j
                imp["user"].append(int(u)); imp["post"].append(int(i)); imp["ts"].append(ts)
                imp["position"].append(j + 1); imp["device"].append(session_device)
                for head in (*HEADS, "dwell"):
                    truth[head].append(float(probs[head][j]))
                    truth[f"top_{head}"].append(float(top[head][j]))
                if read[j]:
                    seconds = float(rng.lognormal(probs["mu_read"][j], READ_SIGMA))
                    for head, p in probs["given_read"].items():
                        if rng.random() < p[j]:
                            delay = rng.uniform(2, 600 if head == "comment" else 90)
                            reactions["impression"].append(index); reactions["reaction"].append(head)
                            reactions["ts"].append(ts + min(delay, seconds + 60))
                else:
                    seconds = float(rng.lognormal(SCROLL_MU, SCROLL_SIGMA))
                dwell_seconds.append(round(seconds, 2))

    user_ids = np.array([f"U{i:06d}" for i in range(n)])
    post_ids = np.array([f"P{i:07d}" for i in range(len(p_author))])
    impression_ids = np.array([f"I{i:08d}" for i in range(len(imp["user"]))])

    def utc(seconds) -> pl.Series:
        return pl.Series(np.round(np.asarray(seconds, dtype=float) * 1e6).astype(np.int64)).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")

    users = pl.DataFrame({
        "user_id": user_ids, "age": age.astype(np.int64), "gender": [GENDERS[g] for g in gender],
        "joined_ts": utc([j.timestamp() for j in joined]),
    })
    edges = [(a, b, kind, since) for (a, b), (kind, _, since) in ties.items()] + \
            [(u, c, kind, since) for (u, c), (kind, _, since) in follows.items()]
    friendships = pl.DataFrame({
        "user_id": user_ids[[e[0] for e in edges]], "friend_id": user_ids[[e[1] for e in edges]],
        "kind": [e[2] for e in edges], "since_ts": utc([e[3].timestamp() for e in edges]),
    })
    posts = pl.DataFrame({
        "post_id": post_ids, "author_id": user_ids[p_author], "text": post["text"],
        "topic": [TOPIC_NAMES[t] for t in p_topic], "hashtags": post["hashtags"],
        "media": [MEDIA[m] for m in p_media], "created_ts": utc(p_created),
    }, schema_overrides={"hashtags": pl.String})
    impressions = pl.DataFrame({
        "impression_id": impression_ids, "user_id": user_ids[np.array(imp["user"], dtype=int)],
        "post_id": post_ids[np.array(imp["post"], dtype=int)], "ts": utc(imp["ts"]),
        "position": np.array(imp["position"], dtype=np.int64), "device": imp["device"],
    })
    reaction_frame = pl.DataFrame({
        "impression_id": impression_ids[np.array(reactions["impression"], dtype=int)],
        "reaction": reactions["reaction"], "ts": utc(reactions["ts"]),
    }, schema={"impression_id": pl.String, "reaction": pl.String, "ts": pl.Datetime("us", "UTC")}).sort("ts", "impression_id")
    dwell = pl.DataFrame({"impression_id": impression_ids, "seconds": np.array(dwell_seconds, dtype=np.float64)})
    impression_truth = pl.DataFrame({"impression_id": impression_ids,
                                     **{f"p_{k}" if not k.startswith("top_") else k: np.array(v) for k, v in truth.items()}})
    return World(users, friendships, posts, impressions, reaction_frame, dwell, impression_truth)
