"""Raw network data (members, connections, requests, profile views) as the source gives it, validated; members'
attributes standardized; and the snapshots every approach shares."""

import dagster as dg
import polars as pl

from assets.common import frame_markdown, suite_check
from assets.people_you_may_know.resources import PeopleYouMayKnowSplit, PeopleYouMayKnowSource
from assets.raw import build_raw_table
from expectations import people_you_may_know as suites

GROUP = "people_you_may_know"
ATTRIBUTE_COLUMNS = ("school", "company", "industry", "city")
raw_ins = {
    "users": dg.AssetIn("people_you_may_know_users"),
    "connections": dg.AssetIn("people_you_may_know_connections"),
    "requests": dg.AssetIn("people_you_may_know_requests"),
    "profile_views": dg.AssetIn("people_you_may_know_profile_views"),
}


def _users_suite(frame: pl.DataFrame, window):
    present = [c for c in frame.columns if c in suites.USERS_OPTIONAL]
    frame = frame.with_columns(*[pl.col(c).str.len_chars().fill_null(0).alias(f"{c}_chars")
                                 for c in ATTRIBUTE_COLUMNS if c in present and frame[c].dtype == pl.String])
    return frame, suites.users_suite(present)


def _pairs(frame: pl.DataFrame, a: str, b: str) -> pl.DataFrame:
    if {a, b} <= set(frame.columns) and frame[a].dtype == pl.String and frame[b].dtype == pl.String:
        return frame.with_columns(lo=pl.min_horizontal(a, b), hi=pl.max_horizontal(a, b),
                                  distinct=(pl.col(a) != pl.col(b)).fill_null(True))
    return frame


def _users_summary(users: pl.DataFrame) -> dict:
    present = [c for c in ATTRIBUTE_COLUMNS if c in users.columns]
    return {f"{c}_spellings": int(users[c].n_unique()) for c in present}


def _connections_summary(connections: pl.DataFrame) -> dict:
    if "ts" not in connections.columns or connections.is_empty():
        return {}
    return {"first_ts": str(connections["ts"].min()), "last_ts": str(connections["ts"].max())}


def build_raw_assets() -> list:
    members = {"users": "people_you_may_know_users"}
    raw = [
        *build_raw_table(GROUP, "users", suites.USERS_SCHEMA,
                         "Every member: school, company, industry and city as they wrote them (any spelling, any may be "
                         "missing) and when they signed up.", _users_suite,
                         "Schema, unique non-null ids, attributes of at most 200 characters.", summary=_users_summary),
        *build_raw_table(GROUP, "connections", suites.CONNECTIONS_SCHEMA,
                         "Who is connected to whom, and since when (each connection once, in either order).",
                         lambda frame, window, users: (_pairs(frame, "user_a", "user_b"),
                                                       suites.connections_suite(users["user_id"])),
                         "Schema, known members, each connection once either way, none with oneself.",
                         references=members, summary=_connections_summary),
        *build_raw_table(GROUP, "requests", suites.REQUESTS_SCHEMA,
                         "Connection requests: who asked whom, when, and whether it was accepted.",
                         lambda frame, window, users: (_pairs(frame, "from_user", "to_user"),
                                                       suites.requests_suite(users["user_id"])),
                         "Schema, unique ids, known members, none to oneself.", references=members),
        *build_raw_table(GROUP, "profile_views", suites.PROFILE_VIEWS_SCHEMA,
                         "Who looked at whose profile, and when.",
                         lambda frame, window, users: (frame, suites.profile_views_suite(users["user_id"])),
                         "Schema, known members, a time.", references=members),
    ]

    @dg.asset(group_name=GROUP, kinds={"polars"}, ins={"users": dg.AssetIn("people_you_may_know_users")})
    def people_you_may_know_attributes(
        context: dg.AssetExecutionContext, people_you_may_know_source: PeopleYouMayKnowSource, users: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """Attribute standardization: every spelling of a school, company, city or industry members wrote, with the
        one value it stands for ("UCLA" and "University of California, Los Angeles" are one school), so that shared
        school and shared company mean what they say."""
        from models.people_you_may_know.standardize import ATTRIBUTES, Standardizer, agreement

        standardizer = Standardizer.fit(users)
        table = standardizer.table(users)
        summary = (table.group_by("attribute").agg(spellings=pl.len(), values=pl.col("canonical_id").n_unique(),
                                                   profiles=pl.col("profiles").sum()).sort("attribute"))
        metadata = {"summary": dg.MetadataValue.md(frame_markdown(summary)),
                    "examples": dg.MetadataValue.md(frame_markdown(
                        table.filter(pl.col("attribute") == "school").sort("canonical_id", "profiles", descending=[False, True]).head(12)))}
        truth = people_you_may_know_source.truth()
        if truth is not None:
            standardized = standardizer.apply(users)
            raw = users.with_columns(*[pl.col(a).str.strip_chars() for a in ATTRIBUTES if a in users.columns])
            for attribute in ATTRIBUTES[:3]:
                if attribute not in users.columns:
                    continue
                found = agreement(standardized, truth[0], attribute)
                as_written = agreement(raw, truth[0], attribute)
                metadata.update({f"{attribute}_pair_precision": found["precision"], f"{attribute}_pair_recall": found["recall"],
                                 f"{attribute}_pair_recall_as_written": as_written["recall"]})
                context.log.info(f"{attribute}: pairs of members truly sharing it found {found['recall']:.3f} "
                                 f"(as written: {as_written['recall']:.3f}), precision {found['precision']:.3f}")
        return dg.MaterializeResult(value=table, metadata={"rows": table.height, **metadata})

    @dg.asset(group_name=GROUP, kinds={"polars"}, ins={"connections": dg.AssetIn("people_you_may_know_connections")})
    def people_you_may_know_snapshots(
        context: dg.AssetExecutionContext, people_you_may_know_split: PeopleYouMayKnowSplit, connections: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """Where training ends and judging begins: three label windows at the end of the data (training, validation,
        test), each scored on the graph as it was when the window began."""
        try:
            cutoffs = people_you_may_know_split.cutoffs(connections)
        except ValueError as error:
            raise dg.Failure(str(error)) from None
        windows = cutoffs.windows(connections)
        context.log.info(f"snapshots:\n{windows}")
        return dg.MaterializeResult(
            value=windows,
            metadata={"windows": dg.MetadataValue.md(frame_markdown(windows.drop("next_start"))),
                      **{f"{name}_snapshot": start.isoformat() for name, start in cutoffs.starts().items()},
                      "end": cutoffs.end.isoformat(), "label_days": cutoffs.label_days},
        )

    @dg.asset_check(asset=people_you_may_know_snapshots, blocking=True,
                    description="Each label window holds new connections and a graph before it; the windows are "
                    "disjoint and in time order.")
    def people_you_may_know_snapshots_valid(people_you_may_know_snapshots: pl.DataFrame) -> dg.AssetCheckResult:
        return suite_check(people_you_may_know_snapshots, suites.split_suite())

    return [*raw, people_you_may_know_attributes, people_you_may_know_snapshots, people_you_may_know_snapshots_valid]
