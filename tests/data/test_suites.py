"""Each suite passes on clean data and catches every defect injected on purpose, naming the column."""

from datetime import timedelta

import polars as pl
import pytest

from expectations import ad_click as suites
from expectations.runner import FAIL, WARN, Rule, Suite, quarantine, run_suite
from models.ad_click.features import point_in_time_features, day_bounds

DAY = "2026-01-04"


@pytest.fixture(scope="module")
def day_impressions(small_world):
    start, end = day_bounds(DAY)
    return small_world.impressions.filter((pl.col("ts") >= start) & (pl.col("ts") < end))


@pytest.fixture(scope="module")
def impressions_suite(small_world):
    start, end = day_bounds(DAY)
    return suites.impressions_suite(start, end, small_world.users["user_id"], small_world.ads["ad_id"], click_times=True)


@pytest.fixture(scope="module")
def features(small_world):
    start, _ = day_bounds(DAY)
    return point_in_time_features(small_world.impressions, small_world.users, small_world.ads, targets_from=start)


def _first_rows(n: int) -> pl.Expr:
    return pl.int_range(pl.len()) < n


def _failed_columns(result) -> set:
    return {f.column for f in result.failures}


def test_clean_data_passes_every_suite(small_world, day_impressions, impressions_suite, features):
    assert run_suite(small_world.users, suites.users_suite()).success
    assert run_suite(small_world.ads, suites.ads_suite()).success
    assert run_suite(day_impressions, impressions_suite).success
    assert run_suite(features, suites.features_suite()).success
    assert run_suite(features, suites.leakage_suite()).success


IMPRESSION_DEFECTS = {
    "missing column": (lambda f: f.drop("device"), "device", "missing"),
    "wrong type": (lambda f: f.with_columns(pl.col("position").cast(pl.String)), "position", "has type String"),
    "naive timestamps": (lambda f: f.with_columns(pl.col("ts").dt.replace_time_zone(None)), "ts", "has type"),
    "duplicate id": (
        lambda f: f.with_columns(impression_id=pl.when(_first_rows(2)).then(pl.lit("dup")).otherwise("impression_id")),
        "impression_id",
        "2 unexpected",
    ),
    "null id": (
        lambda f: f.with_columns(impression_id=pl.when(_first_rows(1)).then(None).otherwise("impression_id")),
        "impression_id",
        "1 unexpected",
    ),
    "position out of range": (
        lambda f: f.with_columns(position=pl.when(_first_rows(3)).then(0).otherwise("position")), "position", "3 unexpected"
    ),
    "click not 0/1": (lambda f: f.with_columns(clicked=pl.when(_first_rows(1)).then(2).otherwise("clicked")), "clicked", "1 unexpected"),
    "ts outside the day": (
        lambda f: f.with_columns(ts=pl.when(_first_rows(1)).then(pl.col("ts") - timedelta(days=1)).otherwise("ts")),
        "ts",
        "1 unexpected",
    ),
    "unknown user": (
        lambda f: f.with_columns(user_id=pl.when(_first_rows(4)).then(pl.lit("ghost")).otherwise("user_id")), "user_id", "4 unexpected"
    ),
    "unknown ad": (lambda f: f.with_columns(ad_id=pl.when(_first_rows(1)).then(pl.lit("ghost")).otherwise("ad_id")), "ad_id", "1 unexpected"),
    "click before its impression": (
        lambda f: f.with_columns(click_ts=pl.when(pl.col("click_ts").is_not_null() & (pl.col("click_ts").cum_count() < 3))
                                 .then(pl.col("ts") - timedelta(minutes=1)).otherwise("click_ts")),
        "click_ts > ts",
        "unexpected",
    ),
}


# A malformed row is quarantined (these defects touch well under the 1% limit); schema, id and window problems fail.
QUARANTINED = {"position out of range", "click not 0/1", "unknown user", "unknown ad", "click before its impression"}


@pytest.mark.parametrize("defect", IMPRESSION_DEFECTS)
def test_impressions_suite_catches(defect, day_impressions, impressions_suite):
    inject, column, problem = IMPRESSION_DEFECTS[defect]
    broken = inject(day_impressions)
    result = run_suite(broken, impressions_suite)
    caught = result.quarantined if defect in QUARANTINED else result.failures
    matching = [f for f in caught if f.column == column and problem in f.problem]
    assert matching, result.markdown(caught)
    if defect in QUARANTINED:
        assert result.success, result.summary()
        kept, set_aside = result.split(broken)
        assert set_aside.height == matching[0].unexpected_count == len(result.quarantined_rows)
        assert kept.height + set_aside.height == broken.height
        assert run_suite(kept, impressions_suite).success and not run_suite(kept, impressions_suite).quarantined_rows
        first_column = column.split(" ")[0]  # a pair expectation ("click_ts > ts") is listed by both its columns
        assert set_aside["failed_expectations"].str.contains(first_column, literal=True).all()
    else:
        assert not result.success


def test_failure_report_carries_example_rows(day_impressions, impressions_suite):
    broken = IMPRESSION_DEFECTS["position out of range"][0](day_impressions)
    failure = next(f for f in run_suite(broken, impressions_suite).quarantined if f.column == "position")
    assert failure.unexpected_count == 3
    assert {e["impression_id"] for e in failure.examples} == set(day_impressions["impression_id"][:3])


def test_a_quarantine_above_its_limit_fails_naming_the_expectation(day_impressions, impressions_suite):
    share = 0.05
    broken = day_impressions.with_columns(
        position=pl.when(pl.int_range(pl.len()) < share * pl.len()).then(0).otherwise("position"))
    result = run_suite(broken, impressions_suite)
    assert not result.success
    failure = next(f for f in result.failures if f.column == "position")
    assert "more than the quarantine limit of 1%" in failure.problem and "(5" in failure.problem


def test_a_warning_passes_with_the_violation_on_record(small_world):
    odd_age = small_world.users.with_columns(age=pl.when(_first_rows(1)).then(7).otherwise("age"))
    result = run_suite(odd_age, suites.users_suite())
    assert result.success and not result.quarantined_rows
    assert [f.column for f in result.warnings] == ["age"]


@pytest.mark.parametrize("policy", [quarantine(0.01), WARN])
def test_id_problems_always_fail(policy):
    import great_expectations.expectations as gxe

    with pytest.raises(ValueError, match="id problem"):
        Suite("s", [Rule(gxe.ExpectColumnValuesToBeUnique(column="x"), policy)])
    with pytest.raises(ValueError, match="id problem"):
        Suite("s", [Rule(gxe.ExpectColumnValuesToNotBeNull(column="x"), policy)], id_columns=("x",))
    with pytest.raises(ValueError, match="no rows to quarantine"):
        Suite("s", [Rule(gxe.ExpectColumnMeanToBeBetween(column="x", min_value=0), quarantine(0.01))])
    assert Suite("s", [Rule(gxe.ExpectColumnValuesToNotBeNull(column="x"), FAIL)], id_columns=("x",)).policies() == [
        ("x: expect_column_values_to_not_be_null", "fail")]


@pytest.mark.parametrize(
    "table,suite,inject,column",
    [
        ("users", suites.users_suite, lambda f: f.drop("country"), "country"),
        ("users", suites.users_suite, lambda f: f.with_columns(pl.col("age").cast(pl.Float64)), "age"),
        ("users", suites.users_suite, lambda f: pl.concat([f, f.head(1)]), "user_id"),
        ("users", suites.users_suite, lambda f: f.with_columns(user_id=pl.when(_first_rows(1)).then(None).otherwise("user_id")), "user_id"),
        ("ads", suites.ads_suite, lambda f: f.drop("category"), "category"),
        ("ads", suites.ads_suite, lambda f: pl.concat([f, f.head(2)]), "ad_id"),
        ("ads", suites.ads_suite, lambda f: f.with_columns(ad_id=pl.when(_first_rows(1)).then(None).otherwise("ad_id")), "ad_id"),
        ("ads", suites.ads_suite, lambda f: f.with_columns(pl.col("created_ts").cast(pl.String)), "created_ts"),
    ],
)
def test_dimension_suites_catch(small_world, table, suite, inject, column):
    result = run_suite(inject(getattr(small_world, table)), suite())
    assert column in _failed_columns(result), result.markdown()


FEATURE_DEFECTS = {
    "missing column": (lambda f: f.drop("ad_ctr_1d"), "ad_ctr_1d"),
    "wrong type": (lambda f: f.with_columns(pl.col("user_clicks_1h").cast(pl.Float64)), "user_clicks_1h"),
    "rate above one": (lambda f: f.with_columns(user_ctr_7d=pl.when(_first_rows(1)).then(1.5).otherwise("user_ctr_7d").cast(pl.Float32)), "user_ctr_7d"),
    "null where none is allowed": (
        lambda f: f.with_columns(user_tenure_days=pl.when(_first_rows(1)).then(None).otherwise("user_tenure_days")),
        "user_tenure_days",
    ),
    "duplicate id": (lambda f: pl.concat([f, f.head(1)]), "impression_id"),
    # Bounds are judged by min and max when they agree with the row-wise check; NaN is where they would not.
    "rate is NaN": (lambda f: f.with_columns(user_ctr_7d=pl.when(_first_rows(1)).then(float("nan")).otherwise("user_ctr_7d").cast(pl.Float32)), "user_ctr_7d"),
    "count at the strict bound": (
        lambda f: f.with_columns(seconds_since_user_saw_ad=pl.when(_first_rows(1)).then(0.0).otherwise("seconds_since_user_saw_ad").cast(pl.Float32)),
        "seconds_since_user_saw_ad",
    ),
}


@pytest.mark.parametrize("defect", FEATURE_DEFECTS)
def test_features_suite_catches(defect, features):
    inject, column = FEATURE_DEFECTS[defect]
    result = run_suite(inject(features), suites.features_suite())
    assert column in _failed_columns(result)
    if defect in ("rate above one", "rate is NaN", "count at the strict bound"):
        # A bound judged by min and max is re-run row-wise when it fails: the one bad row is counted and shown.
        failure = next(f for f in result.failures if f.column == column)
        assert failure.unexpected_count == 1 and len(failure.examples) == 1


def test_leakage_suite_catches_a_feature_computed_from_the_future(small_world, features):
    """Aggregates whose window includes the impression itself: history reaches ts, and clicks track the label."""
    future = features.with_columns(
        history_asof_ts=pl.col("ts"),
        user_clicks_1h=(pl.col("user_clicks_1h") + pl.col("clicked").cast(pl.UInt32)),
    )
    result = run_suite(future, suites.leakage_suite())
    assert not result.success
    assert "ts > history_asof_ts" in _failed_columns(result)
    correlation = next(f for f in result.failures if f.expectation == "expect_no_column_to_correlate_with_label")
    assert "user_clicks_1h" in correlation.problem


def test_leakage_suite_catches_the_label_copied_into_a_feature(features):
    copied = features.with_columns(ad_ctr_1h=pl.col("clicked").cast(pl.Float32))
    failure = next(f for f in run_suite(copied, suites.leakage_suite()).failures)
    assert "ad_ctr_1h" in failure.problem and "1.0" in failure.problem


def test_model_inputs_suite_rejects_the_label_as_an_input():
    from models.ad_click.features import FEATURE_COLUMNS, LABEL

    assert run_suite(pl.DataFrame({"feature": list(FEATURE_COLUMNS)}), suites.model_inputs_suite()).success
    bad = pl.DataFrame({"feature": [*FEATURE_COLUMNS, LABEL]})
    assert "feature" in _failed_columns(run_suite(bad, suites.model_inputs_suite()))


def _split_frame(days: dict[str, list[int]]) -> pl.DataFrame:
    from datetime import datetime, timezone

    rows = [(split, datetime(2026, 1, d, 12, tzinfo=timezone.utc)) for split, ds in days.items() for d in ds]
    return pl.DataFrame({"split": [r[0] for r in rows], "ts": [r[1] for r in rows]}).with_columns(
        pl.col("ts").dt.cast_time_unit("us")
    )


@pytest.mark.parametrize(
    "days,ok",
    [
        ({"train": [1, 2], "validation": [3], "test": [4]}, True),
        ({"train": [1, 3], "validation": [2], "test": [4]}, False),  # overlapping windows
        ({"train": [3], "validation": [1], "test": [2]}, False),  # wrong order
        ({"train": [1], "validation": [2]}, False),  # no test window
    ],
)
def test_split_suite_requires_disjoint_ordered_windows(days, ok):
    assert run_suite(suites.split_windows(_split_frame(days)), suites.split_suite()).success is ok


def _raw_suites():
    from datetime import datetime, timezone

    from expectations import video_rec

    ids, t = pl.Series([], dtype=pl.String), datetime(2026, 1, 1, tzinfo=timezone.utc)
    return {
        "ad_click": [("impressions", suites.impressions_suite(t, t, ids, ids, click_times=True)), ("users", suites.users_suite()),
                     ("ads", suites.ads_suite())],
        "video_rec": [("interactions", video_rec.interactions_suite(ids, ids)), ("videos", video_rec.videos_suite()),
                      ("users", video_rec.users_suite())],
    }


@pytest.mark.parametrize("case", ["ad_click", "video_rec"])
def test_the_readme_states_every_raw_expectation_with_its_policy(case):
    from pathlib import Path

    from expectations.runner import policy_markdown

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = policy_markdown(_raw_suites()[case])
    assert table in readme, f"the README's policy table of {case} is not the suites':\n{table}"
