"""People you may know's raw-input contract: each kind of defect in members, connections, requests and profile views,
and what its policy does."""

from pathlib import Path

import polars as pl
import pytest

from assets.people_you_may_know.raw import _pairs, _users_suite
from expectations import people_you_may_know as suites
from expectations.runner import policy_markdown, run_suite
from models.people_you_may_know.simulator import SimulationConfig, simulate
from tests.data.defects import check_policy, spread


def _check(frame, suite, column: str, quarantined: bool) -> None:
    check_policy(run_suite(frame, suite), frame, column, "quarantine" if quarantined else "fail")


@pytest.fixture(scope="module")
def world():
    return simulate(SimulationConfig(users=600, n_days=10))


USER_DEFECTS = {
    "missing column": (lambda f: f.drop("user_id"), "user_id", False),
    "wrong type": (lambda f: f.with_columns(pl.col("signup_ts").cast(pl.String)), "signup_ts", False),
    "duplicate id": (lambda f: pl.concat([f, f.head(1)]), "user_id", False),
    "null id": (lambda f: f.with_columns(user_id=pl.when(spread(1)).then(None).otherwise("user_id")), "user_id", False),
    "pasted paragraph as a company": (lambda f: f.with_columns(company=pl.when(spread(2)).then(pl.lit("x" * 500))
                                                                .otherwise("company")), "company_chars", True),
}


@pytest.mark.parametrize("defect", USER_DEFECTS)
def test_the_users_suite_catches(defect, world):
    inject, column, quarantined = USER_DEFECTS[defect]
    frame, suite = _users_suite(inject(world.users), None)
    _check(frame, suite, column, quarantined)


def test_members_without_attributes_or_signup_times_are_valid(world):
    frame, suite = _users_suite(world.users.select("user_id"), None)
    assert run_suite(frame, suite).success


def _connections(frame, users):
    return _pairs(frame, "user_a", "user_b"), suites.connections_suite(users["user_id"])


CONNECTION_DEFECTS = {
    "wrong type": (lambda f: f.with_columns(pl.col("ts").cast(pl.String)), "ts", False),
    "null member": (lambda f: f.with_columns(user_b=pl.when(spread(1)).then(None).otherwise("user_b")), "user_b", False),
    "the same connection both ways": (lambda f: pl.concat([f, f.head(2).select(user_a="user_b", user_b="user_a", ts="ts")]),
                                      "compound_columns_to_be_unique", False),
    "connected to oneself": (lambda f: f.with_columns(user_b=pl.when(spread(2)).then(pl.col("user_a")).otherwise("user_b")),
                             "distinct", True),
    "unknown member": (lambda f: f.with_columns(user_a=pl.when(spread(3)).then(pl.lit("ghost")).otherwise("user_a")),
                       "user_a", True),
    "no time": (lambda f: f.with_columns(ts=pl.when(spread(2)).then(None).otherwise("ts")), "ts", True),
}


@pytest.mark.parametrize("defect", CONNECTION_DEFECTS)
def test_the_connections_suite_catches(defect, world):
    inject, column, quarantined = CONNECTION_DEFECTS[defect]
    _check(*_connections(inject(world.connections), world.users), column, quarantined)


REQUEST_DEFECTS = {
    "missing column": (lambda f: f.drop("accepted"), "accepted", False),
    "duplicate id": (lambda f: pl.concat([f, f.head(1)]), "request_id", False),
    "unknown member": (lambda f: f.with_columns(to_user=pl.when(spread(2)).then(pl.lit("ghost")).otherwise("to_user")),
                       "to_user", True),
    "request to oneself": (lambda f: f.with_columns(to_user=pl.when(spread(2)).then(pl.col("from_user")).otherwise("to_user")),
                           "distinct", True),
}


@pytest.mark.parametrize("defect", REQUEST_DEFECTS)
def test_the_requests_suite_catches(defect, world):
    inject, column, quarantined = REQUEST_DEFECTS[defect]
    _check(_pairs(inject(world.requests), "from_user", "to_user"), suites.requests_suite(world.users["user_id"]),
           column, quarantined)


def test_a_request_without_an_outcome_is_a_warning_not_a_stop(world):
    frame = world.requests.with_columns(accepted=pl.when(spread(3)).then(None).otherwise("accepted"))
    result = run_suite(_pairs(frame, "from_user", "to_user"), suites.requests_suite(world.users["user_id"]))
    assert result.success and [w for w in result.warnings if "accepted" in (w.column or "")], result.summary()


VIEW_DEFECTS = {
    "missing column": (lambda f: f.drop("viewed"), "viewed", False),
    "null viewer": (lambda f: f.with_columns(viewer=pl.when(spread(1)).then(None).otherwise("viewer")), "viewer", False),
    "unknown member": (lambda f: f.with_columns(viewed=pl.when(spread(3)).then(pl.lit("ghost")).otherwise("viewed")),
                       "viewed", True),
    "no time": (lambda f: f.with_columns(ts=pl.when(spread(3)).then(None).otherwise("ts")), "ts", True),
}


@pytest.mark.parametrize("defect", VIEW_DEFECTS)
def test_the_profile_views_suite_catches(defect, world):
    inject, column, quarantined = VIEW_DEFECTS[defect]
    _check(inject(world.profile_views), suites.profile_views_suite(world.users["user_id"]), column, quarantined)


def test_many_bad_rows_are_more_than_a_quarantine_may_take(world):
    broken = world.connections.with_columns(user_a=pl.when(pl.int_range(pl.len()) % 20 == 0).then(pl.lit("ghost"))
                                            .otherwise("user_a"))
    result = run_suite(*_connections(broken, world.users))
    assert not result.success and "user_a" in result.summary()


def test_the_readme_states_every_raw_expectation_with_its_policy():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    ids = pl.Series([], dtype=pl.String)
    table = policy_markdown([("users", suites.users_suite(list(suites.USERS_OPTIONAL))),
                             ("connections", suites.connections_suite(ids)), ("requests", suites.requests_suite(ids)),
                             ("profile_views", suites.profile_views_suite(ids))])
    assert table in readme, f"the README's policy table of people_you_may_know is not the suites':\n{table}"
