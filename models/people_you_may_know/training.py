"""Snapshots by time, the models trained on them, and the comparison on the held-out snapshot.

Three label windows of `label_days` end the data: the model trains on (the graph before the training window, the
connections made in it), chooses rounds, epochs and which model is the challenger on (the graph before the validation
window, its connections), and every approach is judged on (the graph before the test window, its connections). No
connection of a label window is in the graph its pairs are scored on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl

from models.people_you_may_know.evaluation import new_per_member, per_member, report
from models.people_you_may_know.graph import Snapshot, all_candidates, labels, pair_features
from models.people_you_may_know.ranker import (
    EdgeModel,
    GraphSageParams,
    Labelled,
    XGBoostParams,
    train_graphsage,
    train_xgboost,
    xgb_matrix,
)
from models.people_you_may_know.recommend import Recommender
from models.people_you_may_know.standardize import Standardizer

WINDOWS = ("train", "validation", "test")
APPROACHES = {"mutual_friends": "mutual friends (baseline)", "adamic_adar": "Adamic-Adar (baseline)",
              "xgboost": "XGBoost", "graphsage": "GraphSAGE", "oracle": "oracle"}
BASELINES = ("mutual_friends", "adamic_adar")
MODELS = ("xgboost", "graphsage")
SETTING = "MLSD_PEOPLE_YOU_MAY_KNOW_LABEL_DAYS"


@dataclass(frozen=True)
class Cutoffs:
    """The start of each label window (a snapshot's time) and the end of the last."""

    train: datetime
    validation: datetime
    test: datetime
    end: datetime
    label_days: int

    def starts(self) -> dict[str, datetime]:
        return dict(zip(WINDOWS, (self.train, self.validation, self.test)))

    @classmethod
    def from_connections(cls, connections: pl.DataFrame, label_days: int, setting: str = SETTING) -> Cutoffs:
        if connections.is_empty():
            raise ValueError("connections is empty: there is no graph to learn from")
        last = connections["ts"].max()
        end = datetime.combine(last.date() + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
        span = timedelta(days=label_days)
        cutoffs = cls(end - 3 * span, end - 2 * span, end - span, end, label_days)
        first = connections["ts"].min()
        if first >= cutoffs.train:
            raise ValueError(f"the connections span {(end - first).days} days, so three label windows of {label_days} "
                             f"days leave no graph before the first: set {setting} lower")
        counts = cutoffs.windows(connections)
        empty = counts.filter(pl.col("new_connections") == 0)["window"].to_list()
        if empty:
            raise ValueError(f"no connection was made in the {', '.join(empty)} window of {label_days} days: set "
                             f"{setting} higher")
        return cutoffs

    def windows(self, connections: pl.DataFrame) -> pl.DataFrame:
        """One row per label window: its span, the connections made in it and in the graph before it."""
        starts = [self.train, self.validation, self.test, self.end]
        rows = []
        for i, name in enumerate(WINDOWS):
            inside = connections.filter((pl.col("ts") >= starts[i]) & (pl.col("ts") < starts[i + 1]))
            rows.append({"window": name, "start": starts[i], "end": starts[i + 1],
                         "last_ts": inside["ts"].max() if inside.height else None,
                         "next_start": starts[i + 2] if i + 2 < len(starts) else None,
                         "new_connections": inside.height,
                         "graph_connections": connections.filter(pl.col("ts") < starts[i]).height})
        ts = pl.Datetime("us", "UTC")
        return pl.DataFrame(rows, schema={"window": pl.String, "start": ts, "end": ts, "last_ts": ts, "next_start": ts,
                                          "new_connections": pl.Int64, "graph_connections": pl.Int64})


@dataclass
class PymkData:
    """The three labelled snapshots every approach shares."""

    cutoffs: Cutoffs
    standardizer: Standardizer
    vocabulary: dict[str, list[str]]
    labelled: dict[str, Labelled]
    candidate_cap: int

    @classmethod
    def prepare(cls, users: pl.DataFrame, connections: pl.DataFrame, requests: pl.DataFrame,
                profile_views: pl.DataFrame, cutoffs: Cutoffs, candidate_cap: int,
                progress: Callable[[str], None] | None = None) -> PymkData:
        standardizer = Standardizer.fit(users)
        vocabulary = {a: sorted(names) for a, names in standardizer.names.items()}
        standardized = standardizer.apply(users)
        labelled = {}
        for window, start in cutoffs.starts().items():
            snapshot = Snapshot.build(standardized, connections, requests, profile_views, start, vocabulary)
            with_friends = np.flatnonzero(snapshot.degree > 0)
            pairs = all_candidates(snapshot, with_friends, candidate_cap)
            new = snapshot.new_edges(connections, cutoffs.label_days)
            y = labels(pairs, new, snapshot.size)
            labelled[window] = Labelled(snapshot, pairs, y, {"new_edges": new,
                                                             "new_per_member": new_per_member(new, with_friends)})
            if progress is not None:
                progress(f"{window} snapshot at {start:%Y-%m-%d}: {snapshot.size} members, "
                         f"{snapshot.adjacency.nnz // 2} connections, {len(y)} candidate pairs, {new.height} new "
                         f"connections ({int(y.sum()) // 2} among friends of friends)")
        return cls(cutoffs, standardizer, vocabulary, labelled, candidate_cap)

    def judge(self, window: str, scores: np.ndarray, tiebreak: np.ndarray | None = None) -> dict[str, float | None]:
        data = self.labelled[window]
        return report(data.pairs["u"], data.y, scores, data.extra["new_per_member"], tiebreak)

    def map_at_10(self, window: str, model: EdgeModel) -> float:
        data = self.labelled[window]
        return self.judge(window, model.score(data.snapshot, data.pairs))["map_at_10"] or 0.0

    def coverage(self, window: str) -> float:
        """Share of the window's new connections (of members with a connection) that were friends of friends."""
        data = self.labelled[window]
        total = sum(data.extra["new_per_member"].values())
        return float(data.y.sum() / total) if total else 0.0


def fit_xgboost(data: PymkData, params: XGBoostParams, progress=None):
    train, validation = data.labelled["train"], data.labelled["validation"]
    return train_xgboost(xgb_matrix(train.snapshot, train.pairs), train.y,
                         xgb_matrix(validation.snapshot, validation.pairs), validation.y, params, progress)


def fit_graphsage(data: PymkData, params: GraphSageParams, progress=None):
    return train_graphsage(data.labelled["train"], data.labelled["validation"], params,
                           lambda model: data.map_at_10("validation", model), progress)


def baseline_scores(pairs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"mutual_friends": pairs["mutual_friends"].astype(np.float64), "adamic_adar": pairs["adamic_adar"].astype(np.float64)}


@dataclass
class Comparison:
    reports: dict[str, dict[str, float | None]]
    units: dict[str, np.ndarray]  # AP@10 per judged member, per approach
    judged: np.ndarray  # member ids
    margins: dict[str, object]  # model minus the best baseline: paired bootstrap over members (Interval)
    scores: dict[str, np.ndarray]
    coverage: float

    def margin_lines(self) -> list[str]:
        return [f"{name}: mAP@10 {i.point:+.4f} [{i.low:+.4f}, {i.high:+.4f}]" for name, i in self.margins.items()]


def compare(data: PymkData, models: dict[str, EdgeModel], truth: tuple[pl.DataFrame, pl.DataFrame] | None) -> Comparison:
    """Every approach on the test snapshot."""
    from models.promotion import paired_bootstrap

    test = data.labelled["test"]
    scores = {**baseline_scores(test.pairs), **{n: m.score(test.snapshot, test.pairs) for n, m in models.items()}}
    if truth is not None:
        from models.people_you_may_know.simulator import oracle_probability

        user_truth, interest_truth = truth
        scores["oracle"] = oracle_probability(user_truth, interest_truth, test.snapshot.adjacency, test.snapshot.index,
                                              test.snapshot.as_of, data.cutoffs.label_days, test.pairs["u"], test.pairs["v"])
    reports, units = {}, {}
    judged = None
    for name, s in scores.items():
        reports[name] = data.judge("test", s)
        members, ap, _ = per_member(test.pairs["u"], test.y, s, test.extra["new_per_member"])
        units[name], judged = ap, members
    best = max(BASELINES, key=lambda n: reports[n]["map_at_10"] or 0.0)
    margins = {}
    for name in models:
        if judged is not None and len(judged) >= 2:
            margins[f"{APPROACHES.get(name, name)} - {APPROACHES[best].removesuffix(' (baseline)')}"] = paired_bootstrap(
                units[name], units[best])
    return Comparison(reports, units, test.snapshot.ids[judged] if judged is not None else np.array([]), margins,
                      scores, data.coverage("test"))


def served_units(recommender: Recommender, data: PymkData, users: pl.DataFrame, connections: pl.DataFrame,
                 requests: pl.DataFrame, profile_views: pl.DataFrame) -> tuple[dict[str, float | None], np.ndarray, np.ndarray]:
    """A registered recommender judged on the test snapshot's pairs: its report, AP@10 per judged member and their ids.
    The snapshot is rebuilt with the recommender's own standardizer and vocabulary (an older champion's attribute
    codes are not the challenger's); the members, hence the pairs' indices, are the same."""
    test = data.labelled["test"]
    own = recommender.snapshot(users, connections, requests, profile_views, test.snapshot.as_of)
    if not np.array_equal(own.ids, test.snapshot.ids):  # pragma: no cover - one member table, one time
        raise ValueError("the recommender's snapshot holds other members than the test snapshot")
    scores = recommender.model.score(own, pair_features(own, test.pairs["u"], test.pairs["v"]))
    members, ap, _ = per_member(test.pairs["u"], test.y, scores, test.extra["new_per_member"])
    return data.judge("test", scores), ap, test.snapshot.ids[members]


def leakage_audit(data: PymkData) -> pl.DataFrame:
    """Each snapshot's input graph (connections, requests, views) ends before its label window starts."""
    return pl.DataFrame([{"input": f"{w} snapshot", "last_ts": l.snapshot.last_event, "must_end_before": l.snapshot.as_of}
                         for w, l in data.labelled.items()],
                        schema={"input": pl.String, "last_ts": pl.Datetime("us", "UTC"),
                                "must_end_before": pl.Datetime("us", "UTC")})

