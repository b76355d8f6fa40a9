"""Video recommendation drift benchmark: 60 simulated days, drift injected at a known day, the retrain it triggers.

The champion is trained on the days before the drift day of the world without drift; the worlds with drift (a
taste shift, a catalogue shift) are identical up to that day, so the same champion serves all three. As deployed,
the case also retrains on a weekly schedule: the stable world's champion (and its reference) is replaced every
`--schedule-days`, so the stable days measure false alarms of a monitor watching a champion at most a week old. Each later
day is served and monitored exactly as the video_rec_served_recommendations and video_rec_drift_report assets do
(models/video_rec/monitoring.py), and the retrain policy decides as the drift sensor does. Reported per world:
the first alarm and its delay, the day retraining is requested, false alarms over the stable days, and, once the
retrained champion serves (the day after the request), its recall@10 over the next `--gain-days` against the
champion it replaced on the same users and days (what would have served until the next scheduled retrain), with a
paired bootstrap interval over user-days.

    ./dev.sh bench drift video_rec [--days 60] [--drift-day 30] [--users 3000] [--videos 3000]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl

from models.drift import RetrainPolicy, judge_day
from models.video_rec import two_tower as tt
from models.video_rec.features import Cutoffs, before, label_interactions
from models.video_rec.monitoring import (
    K,
    MONITORS,
    Reference,
    build_reference,
    live_quality,
    monitored_values,
    served_lists,
)
from models.video_rec.recommender import ChainConfig, Recommender, build_state
from models.video_rec.simulator import VideoSimulationConfig, simulate
from models.video_rec.train import fit_ranker, fit_retrieval, ranker_examples

WINDOW = "12% 300users"  # the case's default windows
BOOTSTRAP = 2_000


def train(labeled: pl.DataFrame, users: pl.DataFrame, videos: pl.DataFrame, epochs: int) -> tuple[Recommender, Cutoffs]:
    """The training job's chain on the views it has: two-tower, ranker, the state as of the data's end."""
    cutoffs = Cutoffs.from_interactions(labeled, WINDOW, WINDOW)
    config = ChainConfig()
    model, vocab, _ = fit_retrieval(labeled, users, videos, cutoffs, tt.TwoTowerConfig(epochs=epochs), progress=lambda m: None)
    state = build_state(model, vocab, labeled, users, videos, cutoffs.retrieval_end, config)
    booster, _ = fit_ranker(ranker_examples(state, labeled, videos, cutoffs.retrieval_end, cutoffs.test_start, config))
    final = build_state(model, vocab, labeled, users, videos, cutoffs.test_end, config)
    return Recommender(model, vocab, booster, final, config), cutoffs


def paired_interval(a: dict, b: dict, seed: int = 0) -> tuple[float, float, float, int]:
    """Mean of b - a over the (user, day) keys both have, with a 95% bootstrap interval that resamples users (a
    user's days are not independent)."""
    keys = sorted(set(a) & set(b))
    frame = pl.DataFrame({"user": [k[0] if isinstance(k, tuple) else k for k in keys],
                          "diff": [b[k] - a[k] for k in keys]}).group_by("user").agg(total=pl.col("diff").sum(), n=pl.len())
    total, n = frame["total"].to_numpy(), frame["n"].to_numpy()
    picks = np.random.default_rng(seed).integers(0, len(total), (BOOTSTRAP, len(total)))
    means = total[picks].sum(axis=1) / n[picks].sum(axis=1)
    return float(total.sum() / n.sum()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975)), len(keys)


@dataclass
class Serving:
    """A champion and the reference the monitor judges it against (rebuilt with every champion, as the training
    job rebuilds video_rec_monitoring_reference)."""

    champion: Recommender
    reference: Reference
    trained_before: int


def crown(labeled: pl.DataFrame, world, world_start: datetime, day: int, epochs: int) -> Serving:
    champion, cutoffs = train(before(labeled, world_start + timedelta(days=day)), world.users, world.videos, epochs)
    reference = build_reference(champion, labeled, world.users, world.videos, cutoffs.test_start, cutoffs.test_end)
    return Serving(champion, reference, day)


def pooled_quality(serving: Recommender, labeled: pl.DataFrame, world, world_start: datetime, days: range) -> dict:
    """recall@K per (user, day) over the days the lists of `serving` would have served."""
    key, out = f"recall_at_{K}", {}
    for i in days:
        start = world_start + timedelta(days=i)
        for user, value in live_quality(served_lists(serving, labeled, world.users, world.videos, start), labeled, start)[key].items():
            out[(user, i)] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--drift-day", type=int, default=30, help="0-based; monitoring starts on this day")
    parser.add_argument("--users", type=int, default=3_000)
    parser.add_argument("--videos", type=int, default=3_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--schedule-days", type=int, default=7, help="the case's scheduled retrain cadence")
    parser.add_argument("--gain-days", type=int, default=7, help="days after the drift retrain its gain is measured on")
    parser.add_argument("--worlds", default="none,taste,catalogue")
    args = parser.parse_args()
    started = time.perf_counter()
    base = dict(n_days=args.days, n_users=args.users, n_videos=args.videos)
    world_start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    stable = simulate(VideoSimulationConfig(**base))
    first = crown(label_interactions(stable.interactions), stable, world_start, args.drift_day, args.epochs)
    print(f"champion trained on days before {(world_start + timedelta(days=args.drift_day)).date()}; reference live "
          f"recall@{K} {first.reference.live[f'recall_at_{K}']:.4f}, nDCG@{K} {first.reference.live[f'ndcg_at_{K}']:.4f}; "
          f"{time.perf_counter() - started:.0f}s\n", flush=True)
    policy = RetrainPolicy()
    summary = []
    for kind in args.worlds.split(","):
        world = stable if kind == "none" else simulate(VideoSimulationConfig(**base, drift_kind=kind, drift_day=args.drift_day))
        labeled = label_interactions(world.interactions)
        serving = first
        days, alarms, first_alarm, requested, triggered = [], [], None, None, None
        print(f"## {kind}\n\n| day | champion trained before | alarm | signals | " + " | ".join(
            [*(f"psi {m.name}" for m in MONITORS.distributions), *(m.name for m in MONITORS.levels),
             *(f"live {m.name}" for m in MONITORS.live)]) + " |", flush=True)
        # A drift world is watched until its drift retrain has served its gain window; the stable world to the end.
        for i in range(args.drift_day, args.days):
            if requested is not None and i > requested + args.gain_days:
                break
            if i > args.drift_day and (i - args.drift_day) % args.schedule_days == 0 and requested is None:
                serving = crown(labeled, world, world_start, i, args.epochs)
            day = (world_start + timedelta(days=i)).date().isoformat()
            start = world_start + timedelta(days=i)
            lists = served_lists(serving.champion, labeled, world.users, world.videos, start)
            current, _, live = monitored_values(serving.reference, labeled, world.videos, day, lists)
            ref = serving.reference
            report = judge_day(day, MONITORS, ref.distributions, current, ref.levels, live, ref.live)
            days.append(day)
            alarms.append(report.alarm)
            if report.alarm and first_alarm is None:
                first_alarm = i
            if requested is None and policy.episode_start(days, alarms, triggered):
                requested, triggered = i, day
            cells = [f"{report.psi[m.name]:.3f}" for m in MONITORS.distributions]
            values = [report.value(m.name) for m in (*MONITORS.levels, *MONITORS.live)]
            cells += ["-" if v is None else f"{v:.3f}" for v in values]
            trained = (world_start + timedelta(days=serving.trained_before)).date().isoformat()
            print(f"| {day} | {trained} | {'yes' if report.alarm else ''} | {'; '.join(report.messages) or '-'} | "
                  + " | ".join(cells) + " |", flush=True)
        row = {"world": kind, "first_alarm": first_alarm, "requested": requested, "alarms": sum(alarms), "days": len(days)}
        gain_days = range(requested + 1, min(requested + 1 + args.gain_days, args.days)) if requested is not None else range(0)
        if gain_days:
            # The counterfactual without the drift sensor: the champion serving when retraining was requested keeps
            # serving until the next scheduled retrain.
            retrained = crown(labeled, world, world_start, requested + 1, args.epochs).champion
            frozen_q = pooled_quality(serving.champion, labeled, world, world_start, gain_days)
            fresh_q = pooled_quality(retrained, labeled, world, world_start, gain_days)
            row["gain"] = paired_interval(frozen_q, fresh_q)
            row["frozen"] = float(np.mean(list(frozen_q.values())))
            row["retrained"] = float(np.mean(list(fresh_q.values())))
        summary.append(row)
        print(f"\n{kind}: {time.perf_counter() - started:.0f}s\n", flush=True)
    print(f"| world | drift day | first alarm | delay (days) | retrain requested | alarm days / monitored days | "
          f"recall@{K} over the {args.gain_days} days after: frozen | retrained | gain [95% interval], user-days |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in summary:
        date = lambda i: (world_start + timedelta(days=i)).date().isoformat() if i is not None else "none"  # noqa: E731
        delay = "-" if row["world"] == "none" else (row["first_alarm"] - args.drift_day if row["first_alarm"] is not None else "not detected")
        gain = "-"
        if "gain" in row:
            mean, low, high, n = row["gain"]
            gain = f"{mean:+.4f} [{low:+.4f}, {high:+.4f}], {n}"
        print(f"| {row['world']} | {'-' if row['world'] == 'none' else date(args.drift_day)} | {date(row['first_alarm'])} | "
              f"{delay} | {date(row['requested']) if row['requested'] is not None else 'never'} | {row['alarms']} / {row['days']} | "
              f"{row.get('frozen', float('nan')):.4f} | {row.get('retrained', float('nan')):.4f} | {gain} |")
    print(f"\ntotal {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
