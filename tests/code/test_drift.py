import numpy as np
import pytest

from models.drift import RetrainPolicy, SimulatedDrift, ks_statistic, psi_categorical, psi_numeric

rng = np.random.default_rng(0)


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    reference = rng.normal(0, 1, 50_000)
    assert psi_numeric(reference, rng.normal(0, 1, 50_000)) < 0.01
    assert psi_numeric(reference, rng.normal(0.5, 1, 50_000)) > 0.2
    assert ks_statistic(reference, rng.normal(0, 1, 50_000)) < 0.02
    assert ks_statistic(reference, rng.normal(0.5, 1, 50_000)) > 0.15


def test_psi_handles_discrete_values_and_missing_values():
    reference = rng.integers(1, 4, 10_000).astype(float)
    assert psi_numeric(reference, rng.integers(1, 4, 10_000).astype(float)) < 0.01
    assert psi_numeric(reference, np.full(1000, 3.0)) > 1.0
    with_nan = np.where(rng.random(10_000) < 0.3, np.nan, reference)
    assert np.isfinite(psi_numeric(with_nan, reference))


def test_categorical_psi_sees_a_new_category_and_a_mix_change():
    reference = rng.choice(["mobile", "desktop", "tablet"], 20_000, p=[0.65, 0.28, 0.07]).tolist()
    same = rng.choice(["mobile", "desktop", "tablet"], 20_000, p=[0.65, 0.28, 0.07]).tolist()
    assert psi_categorical(reference, same) < 0.01
    shifted = rng.choice(["mobile", "desktop", "tablet"], 20_000, p=[0.4, 0.2, 0.4]).tolist()
    assert psi_categorical(reference, shifted) > 0.2
    assert psi_categorical(reference, same + ["NG"] * 5_000) > 0.1


DAYS = [f"2026-02-{d:02d}" for d in range(1, 15)]


@pytest.mark.parametrize(
    "alarms,expected",
    [
        ([False] * 6, None),
        ([False, False, False, False, True, False], None),  # one alarm of three: noise
        ([False, False, False, True, False, True], "2026-02-04"),
        ([False, False, False, False, True, True], "2026-02-05"),
    ],
)
def test_policy_needs_two_alarms_in_three_days(alarms, expected):
    assert RetrainPolicy().episode_start(DAYS[: len(alarms)], alarms, None) == expected


def test_policy_cools_down_after_a_request():
    policy = RetrainPolicy(cooldown_days=7)
    alarms = [False, False, True, True, True, True, True, True, True, True, True]
    assert policy.episode_start(DAYS[:4], alarms[:4], None) == "2026-02-03"
    assert policy.episode_start(DAYS[:8], alarms[:8], last_trigger_day="2026-02-04") is None
    # Past the cool-down the same episode keeps its first day: the same run key, so no second run for it.
    assert policy.episode_start(DAYS[:11], alarms[:11], last_trigger_day="2026-02-04") == "2026-02-03"


def test_a_later_episode_after_a_quiet_window_is_a_new_one():
    alarms = [True, True, False, False, False, True, True]
    assert RetrainPolicy(cooldown_days=0).episode_start(DAYS[:7], alarms, last_trigger_day="2026-02-02") == "2026-02-06"


def test_judge_day_raises_the_alarm_on_a_distribution_a_level_or_a_live_metric():
    from models.drift import Distribution, Level, LiveMetric, Monitors, judge_day

    monitors = Monitors(
        distributions=(Distribution("device", categorical=True), Distribution("score", label="prediction", max_psi=0.1)),
        levels=(Level("rows", relative=True, max_rise=0.5, max_fall=0.5),),
        live=(LiveMetric("recall", higher_is_better=True, tolerance=0.2),),
    )
    device = rng.choice(["mobile", "desktop"], 5_000, p=[0.7, 0.3]).tolist()
    reference = {"device": device, "score": rng.normal(0, 1, 5_000)}
    normal = {"device": rng.choice(["mobile", "desktop"], 5_000, p=[0.7, 0.3]).tolist(), "score": rng.normal(0, 1, 5_000),
              "rows": 1_050.0}
    levels = {"rows": [1_000.0, 980.0, 1_020.0]}

    quiet = judge_day("2026-02-01", monitors, reference, normal, levels, {"recall": 0.19}, {"recall": 0.2})
    assert not quiet.alarm and quiet.messages == []
    assert quiet.value("rows") == 1_050.0 and quiet.max_psi < 0.05

    cases = {
        "device": ({**normal, "device": ["tablet"] * 2_000}, {"recall": 0.19}),
        "score": ({**normal, "score": rng.normal(1, 1, 5_000)}, {"recall": 0.19}),
        "rows": ({**normal, "rows": 300.0}, {"recall": 0.19}),
        "recall": (normal, {"recall": 0.1}),
    }
    for breached, (current, live) in cases.items():
        report = judge_day("2026-02-02", monitors, reference, current, levels, live, {"recall": 0.2})
        assert report.alarm and [s.name for s in report.breaches] == [breached], report.messages
    # Before the day's labels are in, the live metric cannot breach.
    waiting = judge_day("2026-02-03", monitors, reference, normal, levels, {"recall": None}, {"recall": 0.2})
    assert not waiting.alarm and "no labels yet" in waiting.signals[-1].message


def test_a_simulated_drift_setting_is_parsed_or_refused_with_its_usage():
    assert SimulatedDrift.parse("none", ("taste",)) == SimulatedDrift()
    assert SimulatedDrift.parse("taste@5", ("taste", "catalogue"), days=28) == SimulatedDrift("taste", 5)
    for wrong in ("sideways@5", "taste", "taste@x", "taste@0", "taste@28"):
        with pytest.raises(ValueError, match="KIND one of taste, catalogue.*1 to 27"):
            SimulatedDrift.parse(wrong, ("taste", "catalogue"), days=28)
