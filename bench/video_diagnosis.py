"""Where the video chain gains and loses against its strong simple baseline (EASE), one stage at a time.

    ./dev.sh bench video_diagnosis [--world video|ratings] [--seed N] [--ranker-window SIZE] [--test-window SIZE]
                                   [--als-grid]

Trains the chain in-process on a simulated world as the training job does (same windows, same code), then
evaluates variants on the same test users: the re-ranking rules off, the ranker without a group of features, the
item-item source off, and the ranker's own order replaced by a single score. Every line is a measurement of this
run: nDCG@10 and recall@10, and the paired bootstrap 95% interval of the variant minus EASE.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", choices=("video", "ratings"), default="ratings")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--ranker-window", default="12% 300users", help="as MLSD_VIDEO_REC_RANKER_WINDOW")
    parser.add_argument("--test-window", default="12% 300users", help="as MLSD_VIDEO_REC_TEST_WINDOW")
    parser.add_argument("--protocol", choices=("time", "holdout"), default="time",
                        help="holdout: each user's views held out at random (15%% validation, 25%% test) instead of by time")
    parser.add_argument("--als-grid", action="store_true",
                        help="instead: the ALS baseline's settings tried, with validation and test nDCG@10")
    args = parser.parse_args(argv)

    from models.promotion import paired_bootstrap
    from models.ranking_metrics import ndcg_at_k, recall_at_k
    from models.video_rec import two_tower as tt
    from models.video_rec.baselines import fit_ease_on_split, with_history
    from models.video_rec.features import Cutoffs, ground_truth, label_interactions, popular_videos
    from models.video_rec.recommender import RANKER_FEATURES, ChainConfig, Recommender, build_state
    from models.video_rec.rerank import RerankRules
    from models.video_rec.train import fit_ranker, fit_retrieval, ranker_examples

    started = time.monotonic()
    if args.world == "ratings":
        from models.video_rec.ratings import RatingsSimulationConfig, simulate_ratings
        world = simulate_ratings(RatingsSimulationConfig(seed=args.seed))
    else:
        from models.video_rec.simulator import VideoSimulationConfig, simulate
        world = simulate(VideoSimulationConfig(seed=args.seed))
    labeled = label_interactions(world.interactions)
    users, videos = world.users, world.videos
    if args.protocol == "holdout":
        labeled, cutoffs = random_holdout(labeled, seed=args.seed)
    else:
        cutoffs = Cutoffs.from_interactions(labeled, args.ranker_window, args.test_window)
    config = ChainConfig()

    def train(two_tower: tt.TwoTowerConfig, chain: ChainConfig = config, features: list[str] = RANKER_FEATURES,
              ease=None, labeled=labeled):
        """The chain as the training job builds it, with its state as of the test window's start, and its ranker's
        examples."""
        model, vocab, _ = fit_retrieval(labeled, users, videos, cutoffs, two_tower, progress=lambda _: None)
        at_ranker = build_state(model, vocab, labeled, users, videos, cutoffs.retrieval_end, chain, ease=ease)
        examples = ranker_examples(at_ranker, labeled, videos, cutoffs.retrieval_end, cutoffs.test_start, chain)
        ranker, _ = fit_ranker(examples, features=features)
        at_test = build_state(model, vocab, labeled, users, videos, cutoffs.test_start, chain, ease=ease)
        return Recommender(model, vocab, ranker, at_test, chain), examples

    ease, _ = fit_ease_on_split(labeled, cutoffs.retrieval_end, cutoffs.test_start)
    chain, examples = train(tt.TwoTowerConfig(), ease=ease)
    model, vocab, at_test = chain.model, chain.vocab, chain.state
    print(f"{args.world} world, seed {args.seed}: {labeled.height:,} interactions; ranker examples {examples.height:,} rows "
          f"of {examples['user_id'].n_unique()} users; trained in {time.monotonic() - started:.0f}s", flush=True)

    truth = ground_truth(labeled, videos, cutoffs.test_start, cutoffs.test_end)
    truth = truth.filter(truth["user_id"].is_in(list(at_test.user_row)))
    test_users = truth["user_id"].to_list()
    relevant = {u: set(r) for u, r in zip(test_users, truth["relevant"].to_list())}
    units = [u for u in test_users if relevant[u]]
    seen_lists = at_test.profiles["seen"].to_list()
    seen = {u: set(seen_lists[at_test.user_row[u]] or []) for u in units}
    popular = popular_videos(at_test.videos, 600)
    ease_lists = with_history(ease, labeled, cutoffs.test_start).recommend(units, seen, 10, fallback=popular)

    def per_user(lists, metric):
        return [metric(lists.get(u, []), relevant[u], 10) for u in units]

    ease_ndcg, ease_recall = per_user(ease_lists, ndcg_at_k), per_user(ease_lists, recall_at_k)

    def report(name, lists):
        ndcg, recall = per_user(lists, ndcg_at_k), per_user(lists, recall_at_k)
        ndcg_gap, recall_gap = paired_bootstrap(ndcg, ease_ndcg), paired_bootstrap(recall, ease_recall)
        print(f"| {name} | {sum(ndcg) / len(units):.4f} | {ndcg_gap.point:+.4f} [{ndcg_gap.low:+.4f}, {ndcg_gap.high:+.4f}] "
              f"| {sum(recall) / len(units):.4f} | {recall_gap.point:+.4f} [{recall_gap.low:+.4f}, {recall_gap.high:+.4f}] |",
              flush=True)

    def chain_lists(recommender):
        frame = recommender.recommend(units, 10)
        return {u: g["video_id"].to_list() for (u,), g in frame.group_by("user_id", maintain_order=True)}

    if args.als_grid:
        from models.video_rec.baselines import als_with_history, fit_als_on_split

        print("| factors | reg | alpha | iterations | validation nDCG@10 | test nDCG@10 |\n|---|---|---|---|---|---|")
        for factors, reg, alpha in ((32, 1.0, 10.0), (32, 10.0, 10.0), (32, 1.0, 40.0), (32, 30.0, 5.0), (64, 30.0, 5.0),
                                    (32, 100.0, 2.0), (32, 10.0, 2.0), (32, 30.0, 1.0), (16, 30.0, 1.0), (16, 30.0, 2.0), (32, 30.0, 2.0)):
            als, curve = fit_als_on_split(labeled, cutoffs.retrieval_end, cutoffs.test_start, factors, reg, alpha)
            lists = als_with_history(als, labeled, cutoffs.test_start).recommend(units, seen, 10, fallback=popular)
            print(f"| {factors} | {reg:g} | {alpha:g} | {als.iterations} | {max(curve):.4f} | "
                  f"{sum(per_user(lists, ndcg_at_k)) / len(units):.4f} |", flush=True)
        return
    print(f"\n{len(units)} test users; EASE nDCG@10 {sum(ease_ndcg) / len(units):.4f}, recall@10 {sum(ease_recall) / len(units):.4f}\n")
    print("| variant | nDCG@10 | minus EASE (95%) | recall@10 | minus EASE (95%) |\n|---|---|---|---|---|")
    report("the chain (as trained)", chain_lists(chain))
    report("two-tower + ANN only", chain.retrieval_only(units, 10))
    loose = replace(config, rules=RerankRules(max_per_channel=10, max_per_topic=10))
    report("re-ranking: channel and topic rules off", chain_lists(Recommender(model, vocab, chain.ranker, at_test, loose)))
    groups = {
        "two-tower scores": ["tt_score", "tt_rank", "from_ann"],
        "item-item scores": ["ease_score", "ease_rank", "from_ease"],
        "popularity and freshness": ["log_views_7d", "log_views_1d", "trending", "from_popular", "from_trending", "log_age_days"],
        "user-content match": ["language_share", "tag_overlap", "channel_share"],
        "user activity": ["user_log_views", "user_mean_watch", "user_like_rate", "user_relevant_rate", "user_history_length"],
    }
    for group, names in groups.items():
        kept = [f for f in RANKER_FEATURES if f not in names]
        without, _ = fit_ranker(examples, features=kept)
        report(f"ranker without {group}", chain_lists(Recommender(model, vocab, without, at_test, config)))
    with_deep_trees = Recommender(model, vocab, fit_ranker(examples, params={"max_depth": 6, "min_child_weight": 5})[0], at_test, config)
    report("ranker with deep trees (depth 6, 5 rows a leaf: before this change)", chain_lists(with_deep_trees))
    plain, _ = train(tt.TwoTowerConfig(), replace(config, ease_candidates=0),
                     [f for f in RANKER_FEATURES if f not in groups["item-item scores"]])
    report("no item-item source or features", chain_lists(plain))
    for name, two_tower in (("ids never hidden (id_dropout 0)", tt.TwoTowerConfig(id_dropout=0.0)),
                            ("ids hidden half the time (id_dropout 0.5)", tt.TwoTowerConfig(id_dropout=0.5)),
                            ("no log-popularity correction", tt.TwoTowerConfig(popularity_correction=0.0)),
                            ("patience 5 (early stopping later)", tt.TwoTowerConfig(patience=5, epochs=40))):
        variant, _ = train(two_tower, ease=ease)
        report(f"two-tower {name}: retrieval alone", variant.retrieval_only(units, 10))
        report(f"two-tower {name}: the chain", chain_lists(variant))
    # Ties: views within one second are ordered by their rows; jittering each by up to a minute orders a burst at
    # random (the windows are whole days, so every view stays in its window).
    import numpy as np
    import polars as pl

    jitter = np.random.default_rng(args.seed).integers(0, 60_000_000, labeled.height)
    moved = pl.col("ts") + pl.duration(microseconds=pl.Series(jitter))
    same_days = labeled.with_columns(
        ts=pl.when(moved.dt.truncate("1d") == pl.col("ts").dt.truncate("1d")).then(moved).otherwise(pl.col("ts")))
    variant, _ = train(tt.TwoTowerConfig(), ease=ease, labeled=same_days)
    report("bursts ordered at random (ties jittered within a minute): retrieval alone", variant.retrieval_only(units, 10))
    report("bursts ordered at random: the chain", chain_lists(variant))
    print(f"\ndone in {time.monotonic() - started:.0f}s")


def random_holdout(labeled, valid_share: float = 0.15, test_share: float = 0.25, seed: int = 0):
    """The protocol of ratings data without meaningful time order: every view is held out at random, for validation
    with P `valid_share` and for the test with P `test_share`. The held-out views are moved after the data's end into
    two 3-day windows (validation, then test), so the time-split code (training before the validation window, the
    ranker's labels within it, the judgement in the test window) runs unchanged. What it risks: the model trains on
    a user's later views to predict earlier ones, and every window's "recent" popularity is the holdout's."""
    from datetime import timedelta

    import numpy as np
    import polars as pl

    from models.video_rec.features import Cutoffs

    draw = np.random.default_rng(seed).random(labeled.height)
    end = labeled["ts"].max().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    spread = pl.duration(seconds=pl.Series(np.random.default_rng(seed + 1).uniform(0, 3 * 86_400, labeled.height)))
    moved = labeled.with_columns(
        ts=pl.when(pl.Series(draw < valid_share)).then(pl.lit(end) + spread)
        .when(pl.Series(draw > 1 - test_share)).then(pl.lit(end + timedelta(days=3)) + spread)
        .otherwise(pl.col("ts")))
    start = labeled["ts"].min().replace(hour=0, minute=0, second=0, microsecond=0)
    return moved.sort("ts"), Cutoffs(start, end, end + timedelta(days=3), end + timedelta(days=6))


if __name__ == "__main__":
    main()
