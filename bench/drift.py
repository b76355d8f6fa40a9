"""Drift detection benchmark: a 60-day simulated stream with drift injected at a known day.

The champion is trained on days 8-26 (validation 27-29... see TimeSplit below) of the world without drift; the
worlds with drift are identical up to the drift day, so the same champion serves all three. Each later day is
monitored exactly as the ad_click_drift_report asset does (models/ad_click/monitoring.py), and the retrain policy
decides as the drift sensor does. Reported: detection delay (first alarm day minus drift day), the day retraining
would be requested, and false alarms over the stable world's monitored days.

    ./dev.sh bench drift [ad_click] [--days 60] [--drift-day 30] [--impressions-per-day 60000]
    ./dev.sh bench drift video_rec [...]   (bench/video_drift.py)
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import timedelta

import polars as pl

from models.ad_click.features import LABEL, point_in_time_features

from models.ad_click.monitoring import monitor_day
from models.ad_click.simulator import SimulationConfig, simulate
from models.ad_click.train import TimeSplit, XGBoostParams, predict_xgboost, train_xgboost
from models.drift import RetrainPolicy
from models.metrics import normalized_cross_entropy


def _features(config: SimulationConfig) -> pl.DataFrame:
    world = simulate(config)
    return point_in_time_features(world.impressions, world.users, world.ads)


def main() -> None:
    if sys.argv[1:2] == ["video_rec"]:
        from bench import video_drift

        sys.argv = [sys.argv[0], *sys.argv[2:]]
        return video_drift.main()
    if sys.argv[1:2] == ["ad_click"]:
        sys.argv = [sys.argv[0], *sys.argv[2:]]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--drift-day", type=int, default=30, help="0-based; monitoring starts on this day")
    parser.add_argument("--impressions-per-day", type=int, default=60_000)
    args = parser.parse_args()
    started = time.perf_counter()
    base = SimulationConfig(n_days=args.days, impressions_per_day=args.impressions_per_day)
    stable = _features(base)
    start = base.start
    day = lambda i: (start + timedelta(days=i)).date()  # noqa: E731
    history = stable.filter(pl.col("ts").dt.date() < day(args.drift_day))
    labelled = TimeSplit(warmup_days=7, validation="3d", test="3d").assign(history)
    train, validation, test = (labelled.filter(pl.col("split") == s) for s in ("train", "validation", "test"))
    booster, encoder, _ = train_xgboost(train, validation, XGBoostParams())
    background = float(train[LABEL].mean())
    reference = train.sample(min(100_000, train.height), seed=0)
    reference_p = predict_xgboost(booster, encoder, reference)
    reference_nce = normalized_cross_entropy(test[LABEL].to_numpy(), predict_xgboost(booster, encoder, test), background)
    print(f"champion trained on {train.height:,} rows (days 8-{args.drift_day - 6}), reference NCE {reference_nce:.4f}; "
          f"{time.perf_counter() - started:.0f}s\n")
    print("| world | drift day | first alarm | detection delay (days) | retrain requested on | alarms on days before drift / monitored stable days |")
    print("|---|---|---|---|---|---|")
    policy = RetrainPolicy()
    for kind in ("none", "covariate", "concept"):
        features = stable if kind == "none" else _features(replace(base, drift_kind=kind, drift_day=args.drift_day))
        days, alarms, first_alarm, retrain_on = [], [], None, None
        for i in range(args.drift_day, args.days):
            current = features.filter(pl.col("ts").dt.date() == day(i))
            report = monitor_day(
                str(day(i)), reference, reference_p, current, predict_xgboost(booster, encoder, current),
                background, reference_nce,
            )
            days.append(report.day)
            alarms.append(report.alarm)
            if report.alarm and first_alarm is None:
                first_alarm = i
            if retrain_on is None and policy.episode_start(days, alarms, None):
                retrain_on = report.day
        if kind == "none":
            print(f"| stable | - | {day(first_alarm) if first_alarm is not None else 'none'} | - | {retrain_on or 'never'} | "
                  f"{sum(alarms)} / {len(alarms)} |", flush=True)
        else:
            delay = first_alarm - args.drift_day if first_alarm is not None else "not detected"
            print(f"| {kind} | {day(args.drift_day)} | {day(first_alarm) if first_alarm is not None else 'none'} | {delay} | "
                  f"{retrain_on or 'never'} | - |", flush=True)
    print(f"\ntotal {time.perf_counter() - started:.0f}s")



if __name__ == "__main__":
    main()
