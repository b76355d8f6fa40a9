"""Continual learning benchmark: over the days after a network is trained, its NCE (a) frozen, (b) fine-tuned every
day on the days since it last learned (what ad_click_fine_tune_job does), (c) retrained from scratch every day on
all the days before (what ad_click_training_job does), with the time each takes, on the default simulation and on
one with drift injected on the first scored day.

Day d is scored by each model as it stands before day d's clicks are known; NCE's background rate is day d-1's CTR
for all three, so their figures compare row for row. The from-scratch retrain on day d trains on the days from the
warm-up's end to d-3 and stops early on d-2 and d-1, as the training job's time split does.

    ./dev.sh bench continual [--kind dcn] [--days 28] [--first-day 14] [--drift concept] [--worlds stable,concept]
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import numpy as np
import polars as pl

from models.ad_click.deep import DeepParams, fine_tune, train_click_net
from models.ad_click.features import LABEL, point_in_time_features
from models.ad_click.simulator import SimulationConfig, simulate
from models.ad_click.train import CategoryEncoder
from models.metrics import normalized_cross_entropy

WARMUP_DAYS = 7


def _scores(network, frame: pl.DataFrame) -> np.ndarray:
    return network.predict_frame(frame)


def _train(days: dict, through: int, params: DeepParams):
    """From scratch on days [WARMUP_DAYS, through - 2), stopped early on the two days before `through`."""
    train = pl.concat([days[d] for d in range(WARMUP_DAYS, through - 2)])
    validation = pl.concat([days[through - 2], days[through - 1]])
    vocabularies = CategoryEncoder.fit(train).vocabularies
    network, _ = train_click_net(train, validation, vocabularies, params)
    return network


def play(world: str, features: pl.DataFrame, start, first_day: int, last_day: int, params: DeepParams) -> dict:
    day_of = (pl.col("ts").dt.date() - pl.lit(start.date())).dt.total_days()
    days = {d: frame.drop("_day") for (d,), frame in features.with_columns(_day=day_of).partition_by("_day", as_dict=True).items()}
    seconds = {"frozen": 0.0, "fine-tuned": 0.0, "retrained": 0.0}
    started = time.perf_counter()
    initial = _train(days, first_day, params)
    seconds["frozen"] = time.perf_counter() - started
    tuned, tuned_through = initial, first_day - 3  # the initial model learned through day first_day - 3
    rows = []
    for d in range(first_day, last_day + 1):
        started = time.perf_counter()
        fresh = pl.concat([days[k] for k in range(tuned_through + 1, d)])
        tuned, _ = fine_tune(tuned, fresh)
        tuned_through = d - 1
        seconds["fine-tuned"] += time.perf_counter() - started
        started = time.perf_counter()
        retrained = _train(days, d, params)
        seconds["retrained"] += time.perf_counter() - started
        y, background = days[d][LABEL].to_numpy(), float(days[d - 1][LABEL].mean())
        row = {"world": world, "day": str((start + timedelta(days=d)).date())}
        for name, model in (("frozen", initial), ("fine-tuned", tuned), ("retrained", retrained)):
            row[name] = normalized_cross_entropy(y, _scores(model, days[d]), background)
        rows.append(row)
        print(f"  {world} {row['day']}: frozen {row['frozen']:.4f}  fine-tuned {row['fine-tuned']:.4f}  "
              f"retrained {row['retrained']:.4f}", flush=True)
    return {"rows": rows, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", default="dcn", choices=["deepfm", "dcn"])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--first-day", type=int, default=14, help="0-based; the first scored day (and the drift's)")
    parser.add_argument("--impressions-per-day", type=int, default=60_000)
    parser.add_argument("--worlds", default="stable,concept", help="stable, covariate, concept (comma-separated)")
    args = parser.parse_args()
    params = DeepParams(kind=args.kind)
    summary = []
    for world in args.worlds.split(","):
        config = SimulationConfig(n_days=args.days, impressions_per_day=args.impressions_per_day,
                                  drift_kind="none" if world == "stable" else world,
                                  drift_day=0 if world == "stable" else args.first_day)
        print(f"{world}: simulating {args.days} days and their features...", flush=True)
        simulated = simulate(config)
        features = point_in_time_features(simulated.impressions, simulated.users, simulated.ads)
        result = play(world, features, config.start, args.first_day, args.days - 1, params)
        rows = pl.DataFrame(result["rows"])
        means = {name: float(rows[name].mean()) for name in ("frozen", "fine-tuned", "retrained")}
        summary.append({"world": world, **means, **{f"{k} s": v for k, v in result["seconds"].items()}})
    print(f"\nmean NCE over the scored days ({args.kind}; lower is better) and time spent:")
    print(pl.DataFrame(summary))


if __name__ == "__main__":
    main()
