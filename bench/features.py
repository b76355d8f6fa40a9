"""Feature computation benchmark: polars (the project's) against a straightforward pandas version of the same features.

Each implementation runs in its own process on the same simulated impressions, so wall time and peak memory (max
RSS of that process, including loading the input) are measured side by side in one run. At the smallest size the two
outputs are compared value by value first, so the speed-up is between implementations that agree.

    ./dev.sh bench features                    # 1M and 10M impressions
    ./dev.sh bench features --sizes 1000000    # one size
    ./dev.sh bench features --skip-pandas-above 1000000   # pandas only where it finishes in minutes
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def pandas_features(impressions, users, ads):
    """The same aggregates as models.ad_click.features, written the obvious pandas way: groupby().rolling()."""
    import numpy as np
    import pandas as pd

    from models.ad_click.features import AGE_BUCKET_EDGES, ENTITIES, HISTORY_ENTITIES, PRIOR_CTR, PRIOR_STRENGTH

    df = impressions.merge(ads[["ad_id", "advertiser_id", "category", "created_ts"]], on="ad_id", how="left")
    df = df.merge(users[["user_id", "age", "gender", "country", "signup_ts"]], on="user_id", how="left")
    df = df.sort_values("ts", kind="stable").reset_index(drop=True)
    df["age_bucket"] = np.searchsorted(np.asarray(AGE_BUCKET_EDGES), df["age"].to_numpy(), side="right")
    df["_one"] = 1.0
    df["_clicked"] = df["clicked"].astype(float)
    df["_ts_us"] = df["ts"].astype("int64").astype(float)
    windows = {"1h": "1h", "1d": "1D", "7d": "7D"}

    def rolling(keys, window, columns, how="sum"):
        # groupby(sort=True).rolling(on="ts") returns rows grouped by sorted key, in original order within a
        # group (indexed by key and ts): a stable sort by the keys gives the row each value belongs to.
        rolled = df.groupby(list(keys), sort=True).rolling(window, on="ts", closed="left")[columns].agg(how)
        rows = df.sort_values(list(keys), kind="stable").index.to_numpy()
        aligned = pd.DataFrame(index=df.index, columns=columns, dtype=float)
        aligned.iloc[rows] = rolled.to_numpy()
        return aligned

    last_seen = []
    for entity, (keys, names) in ENTITIES.items():
        for name in names:
            rolled = rolling(keys, windows[name], ["_one", "_clicked"]).fillna(0.0)
            n, c = rolled["_one"], rolled["_clicked"]
            df[f"{entity}_impressions_{name}"] = n.astype("uint32")
            df[f"{entity}_clicks_{name}"] = c.astype("uint32")
            df[f"{entity}_ctr_{name}"] = ((c + PRIOR_STRENGTH * PRIOR_CTR) / (n + PRIOR_STRENGTH)).astype("float32")
        if entity in HISTORY_ENTITIES:
            df[f"_last_{entity}"] = rolling(keys, "7D", ["_ts_us"], "max")["_ts_us"]
            last_seen.append(f"_last_{entity}")
    pair = rolling(("user_id", "ad_id"), "7D", ["_one", "_ts_us"], {"_one": "sum", "_ts_us": "max"})
    df["user_ad_impressions_7d"] = pair["_one"].fillna(0).astype("uint32")
    df["seconds_since_user_saw_ad"] = ((df["_ts_us"] - pair["_ts_us"]) / 1e6).astype("float32")
    df["history_asof_us"] = df[last_seen].max(axis=1)
    df["hour_of_day"] = df["ts"].dt.hour
    df["user_tenure_days"] = ((df["ts"] - df["signup_ts"]).dt.total_seconds() / 86_400).astype("float32")
    df["ad_age_days"] = ((df["ts"] - df["created_ts"]).dt.total_seconds() / 86_400).astype("float32")
    return df


def _worker(implementation: str, folder: str, out: str | None) -> None:
    import polars as pl

    started = time.perf_counter()
    impressions = pl.read_parquet(f"{folder}/impressions.parquet")
    users = pl.read_parquet(f"{folder}/users.parquet")
    ads = pl.read_parquet(f"{folder}/ads.parquet")
    if implementation == "polars":
        from models.ad_click.features import point_in_time_features

        result = point_in_time_features(impressions, users, ads)
        rows = result.height
        if out:
            result.write_parquet(out)
    else:
        result = pandas_features(impressions.to_pandas(), users.to_pandas(), ads.to_pandas())
        rows = len(result)
        if out:
            pl.from_pandas(result.drop(columns=[c for c in result.columns if c.startswith("_")])).write_parquet(out)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"implementation": implementation, "rows": rows, "seconds": seconds, "peak_mb": peak_mb}))


def _run(implementation: str, folder: Path, out: Path | None) -> dict:
    command = [sys.executable, "-m", "bench.features", "--worker", implementation, "--folder", str(folder)]
    if out:
        command += ["--out", str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _compare(polars_out: Path, pandas_out: Path) -> int:
    """Number of feature columns compared equal (raises on the first that differs)."""
    import numpy as np
    import polars as pl

    from models.ad_click.features import AGGREGATE_FEATURES

    a = pl.read_parquet(polars_out).sort("impression_id")
    b = pl.read_parquet(pandas_out).sort("impression_id")
    columns = [*AGGREGATE_FEATURES, "user_ad_impressions_7d", "seconds_since_user_saw_ad", "user_tenure_days", "ad_age_days"]
    for column in columns:
        left, right = a[column].to_numpy().astype(float), b[column].to_numpy().astype(float)
        if not np.allclose(left, right, rtol=1e-5, atol=1e-3, equal_nan=True):
            raise AssertionError(f"polars and pandas disagree on {column}")
    return len(columns)


def _simulate(rows: int, folder: Path) -> None:
    from models.ad_click.simulator import SimulationConfig, simulate

    days = 28
    world = simulate(
        SimulationConfig(n_days=days, n_users=max(20_000, rows // 50), n_ads=1_500, impressions_per_day=rows // days)
    )
    for table in ("impressions", "users", "ads"):
        frame = getattr(world, table)
        # The pandas implementation knows each click at its impression's time: compare both on instant clicks.
        frame.drop("click_ts", strict=False).write_parquet(folder / f"{table}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--skip-pandas-above", type=int, default=None)
    parser.add_argument("--worker", choices=["polars", "pandas"])
    parser.add_argument("--folder")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.folder, args.out)
        return
    print("| impressions | implementation | seconds | peak memory (MB) | speed-up vs pandas |")
    print("|---|---|---|---|---|")
    for i, size in enumerate(sorted(args.sizes)):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            _simulate(size, folder)
            compare = i == 0
            polars = _run("polars", folder, folder / "polars.parquet" if compare else None)
            skip_pandas = args.skip_pandas_above is not None and size > args.skip_pandas_above
            pandas = None if skip_pandas else _run("pandas", folder, folder / "pandas.parquet" if compare else None)
            if compare and pandas:
                checked = _compare(folder / "polars.parquet", folder / "pandas.parquet")
                print(f"<!-- {checked} feature columns equal between polars and pandas at {polars['rows']} rows -->")
            n = polars["rows"]
            speedup = f"{pandas['seconds'] / polars['seconds']:.1f}x" if pandas else "pandas not run"
            print(f"| {n:,} | polars | {polars['seconds']:.1f} | {polars['peak_mb']:.0f} | {speedup} |", flush=True)
            if pandas:
                print(f"| {n:,} | pandas | {pandas['seconds']:.1f} | {pandas['peak_mb']:.0f} | 1.0x |", flush=True)


if __name__ == "__main__":
    main()
