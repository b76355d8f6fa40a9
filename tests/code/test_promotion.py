import numpy as np
import pytest

import models.promotion as promotion
from models.promotion import Interval, PromotionPolicy, paired_bootstrap

CHAMPION = {"nce": 0.90, "log_loss": 0.120, "calibration_error": 0.002}
ENTROPY = CHAMPION["log_loss"] / CHAMPION["nce"]  # log loss of the background rate: NCE = log loss / this
policy = PromotionPolicy()
point_policy = PromotionPolicy(require_interval=False)  # yesterday's gate: point estimates only


def _challenger(**changes):
    return {**CHAMPION, **changes}


def _interval(low, high, point=None):
    return Interval(low, high, (low + high) / 2 if point is None else point, 0.95, 2000, 10_000)


def _rows(units, shift, noise, seed=0):
    """Per-row NCE shares of a champion (heavy-tailed, like per-row log loss) and of a challenger `shift` away."""
    rng = np.random.default_rng(seed)
    champion = rng.exponential(CHAMPION["nce"], units)
    return champion + shift + rng.normal(0, noise, units), champion


def _metrics(nce_units):
    nce = float(np.mean(nce_units))
    return {"nce": nce, "log_loss": nce * ENTROPY, "calibration_error": CHAMPION["calibration_error"]}


# The point-estimate gate, kept for require_interval=False.


def test_first_challenger_is_promoted_when_it_passes_the_limits():
    decision = policy.decide(_challenger(), None)
    assert decision.promote and "no champion" in decision.reason and decision.interval is None


@pytest.mark.parametrize("metric,value", [("nce", 1.02), ("calibration_error", 0.05)])
def test_first_challenger_is_refused_past_an_absolute_limit(metric, value):
    decision = policy.decide(_challenger(**{metric: value}), None)
    assert not decision.promote and decision.unusable


def test_better_challenger_is_promoted_by_the_point_gate():
    decision = point_policy.decide(_challenger(nce=0.89, log_loss=0.119), CHAMPION)
    assert decision.promote and "1.11% better" in decision.reason


@pytest.mark.parametrize("nce", [0.90, 0.8995, 0.91])
def test_equal_barely_better_or_worse_challenger_keeps_the_champion(nce):
    decision = point_policy.decide(_challenger(nce=nce), CHAMPION)
    assert not decision.promote and not decision.unusable and "is not below champion's" in decision.reason


def test_guards_block_a_better_nce_with_worse_calibration():
    challenger = _challenger(nce=0.88, log_loss=0.118, calibration_error=0.0045)
    assert not point_policy.decide(challenger, CHAMPION).promote
    decision = policy.decide(challenger, CHAMPION, _interval(-0.03, -0.01))
    assert not decision.promote and "guard calibration_error" in decision.reason


def test_decision_tags_record_both_scores_the_reason_and_the_mode():
    tags = point_policy.decide(_challenger(nce=0.89, log_loss=0.119), CHAMPION).tags()
    assert tags["promotion_decision"] == "promote" and tags["promotion_mode"] == "superiority"
    assert tags["challenger_nce"] == "0.890000" and tags["champion_nce"] == "0.900000"
    assert "better" in tags["promotion_reason"] and "nce_difference" not in tags


# The paired bootstrap.


def test_interval_covers_a_known_shift_and_is_as_wide_as_the_paired_noise():
    shift, noise = -0.01, 0.05
    covered, widths = 0, []
    for seed in range(100):
        challenger, champion = _rows(400, shift, noise, seed)
        interval = paired_bootstrap(challenger, champion, seed=seed)
        covered += interval.low <= shift <= interval.high
        widths.append((interval.high - interval.low) / (2 * 1.96 * np.std(challenger - champion) / np.sqrt(400)))
    assert 88 <= covered <= 99  # a 95% interval: neither too narrow nor too wide
    # Paired: the width follows the per-row difference (sd 0.05), not the rows' own spread (sd 0.9).
    assert 0.9 < np.mean(widths) < 1.1


def test_interval_shrinks_with_more_units():
    small = paired_bootstrap(*_rows(2_000, -0.01, 0.05))
    large = paired_bootstrap(*_rows(32_000, -0.01, 0.05))
    assert small.low <= -0.01 <= small.high and large.low <= -0.01 <= large.high
    assert 0.2 < (large.high - large.low) / (small.high - small.low) < 0.3  # 1/sqrt(16)
    assert (small.units, large.units, large.resamples, large.confidence) == (2_000, 32_000, 2000, 0.95)


@pytest.mark.parametrize("budget", [promotion._GATHER_BUDGET, 20_000])  # one block; many blocks and a short tail
def test_interval_agrees_with_the_textbook_resampling_bootstrap(monkeypatch, budget):
    monkeypatch.setattr(promotion, "_GATHER_BUDGET", budget)
    challenger, champion = _rows(1_001, -0.01, 0.3, seed=3)  # 1,001: the last byte of the draw is partial
    difference = challenger - champion
    draws = np.random.default_rng(7).integers(0, len(difference), size=(4_000, len(difference)))
    low, high = np.quantile(difference[draws].mean(axis=1), [0.025, 0.975])
    interval = paired_bootstrap(challenger, champion)
    se = np.std(difference) / np.sqrt(len(difference))
    assert interval.point == pytest.approx(difference.mean())
    assert abs(interval.low - low) < 0.25 * se and abs(interval.high - high) < 0.25 * se


def test_interval_is_deterministic_for_a_seed():
    rows = _rows(5_000, 0.0, 0.05)
    assert paired_bootstrap(*rows, seed=1) == paired_bootstrap(*rows, seed=1)
    assert paired_bootstrap(*rows, seed=1) != paired_bootstrap(*rows, seed=2)
    assert paired_bootstrap(*rows, confidence=0.8).high < paired_bootstrap(*rows, confidence=0.99).high


def test_interval_tags():
    tags = Interval(-0.0052, -0.0009, -0.0031, 0.95, 2000, 300_000).tags("nce")
    assert tags == {
        "nce_difference": "-0.003100", "nce_difference_ci_low": "-0.005200", "nce_difference_ci_high": "-0.000900",
        "bootstrap_units": "300000", "bootstrap_resamples": "2000", "bootstrap_confidence": "0.950000",
    }


@pytest.mark.parametrize(
    "challenger,champion,options,message",
    [
        ([0.1, 0.2, 0.3], [0.1, 0.2], {}, "3 units but champion_units has 2"),
        ([0.1], [0.2], {}, "at least 2 units"),
        ([], [], {}, "at least 2 units"),
        ([0.1, float("nan")], [0.1, 0.2], {}, "challenger_units has 1 non-finite"),
        ([0.1, 0.2], [float("inf"), 0.2], {}, "champion_units has 1 non-finite"),
        ([[0.1, 0.2]], [[0.1, 0.2]], {}, "1-D"),
        ([0.1, 0.2], [0.1, 0.2], {"resamples": 0}, "resamples"),
        ([0.1, 0.2], [0.1, 0.2], {"confidence": 1.0}, "confidence"),
        ([0.1, 0.2], [0.1, 0.2], {"confidence": 0.0}, "confidence"),
    ],
)
def test_bootstrap_rejects_bad_input(challenger, champion, options, message):
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(challenger, champion, **options)


# Superiority: better beyond noise.


def test_identical_models_are_not_promoted():
    _, champion = _rows(10_000, 0.0, 0.0)
    interval = paired_bootstrap(champion, champion)
    assert interval.low <= 0 <= interval.high
    decision = policy.decide(_metrics(champion), _metrics(champion), interval)
    assert not decision.promote and not decision.unusable


SEED_LUCKY = 1  # a holdout on which the challenger happens to score better


def test_an_equally_good_model_that_is_luckily_better_on_the_holdout_is_not_promoted():
    challenger, champion = _rows(10_000, 0.0, 0.05, seed=SEED_LUCKY)
    mine, theirs = _metrics(challenger), _metrics(champion)
    assert mine["nce"] < theirs["nce"]  # the holdout flatters the challenger: with no minimum, the point would pass
    lenient = PromotionPolicy(min_relative_improvement=0.0)
    assert PromotionPolicy(min_relative_improvement=0.0, require_interval=False).decide(mine, theirs).promote
    interval = paired_bootstrap(challenger, champion)
    assert interval.low < 0 < interval.high
    decision = lenient.decide(mine, theirs, interval)
    assert not decision.promote and "does not clear zero" in decision.reason


def test_a_real_improvement_with_enough_units_is_promoted():
    challenger, champion = _rows(20_000, -0.0036, 0.05, seed=11)  # 0.4% lower NCE
    interval = paired_bootstrap(challenger, champion)
    decision = policy.decide(_metrics(challenger), _metrics(champion), interval)
    assert interval.high < 0
    assert decision.promote, decision.reason
    assert "clears zero" in decision.reason and "better than the champion; guards hold" in decision.reason
    assert "[95% CI " in decision.reason
    tags = decision.tags()
    assert tags["nce_difference_ci_high"] == f"{interval.high:.6f}" and tags["bootstrap_units"] == "20000"


def test_a_point_improvement_within_noise_is_not_promoted():
    challenger, champion = _rows(300, -0.0036, 0.1, seed=2)
    interval = paired_bootstrap(challenger, champion)
    mine, theirs = _metrics(challenger), _metrics(champion)
    assert mine["nce"] < theirs["nce"] * (1 - policy.min_relative_improvement)  # the point gate alone would pass
    assert point_policy.decide(mine, theirs).promote
    decision = policy.decide(mine, theirs, interval)
    assert interval.low < 0 < interval.high
    assert not decision.promote and not decision.unusable
    assert "does not clear zero: not better beyond noise" in decision.reason


@pytest.mark.parametrize("higher_is_better,low,high,promote", [
    (False, -0.004, -0.001, True),
    (False, -0.004, 0.001, False),
    (False, 0.001, 0.004, False),
    (True, 0.001, 0.004, True),
    (True, -0.001, 0.004, False),
    (True, -0.004, -0.001, False),
])
def test_superiority_needs_the_interval_to_clear_zero_in_the_better_direction(higher_is_better, low, high, promote):
    if higher_is_better:
        gate = PromotionPolicy(metric="ndcg_at_10", guards={}, absolute_limits={}, higher_is_better=True)
        champion, challenger = {"ndcg_at_10": 0.30}, {"ndcg_at_10": 0.31}
    else:
        gate, champion, challenger = policy, CHAMPION, _challenger(nce=0.89)  # the point always says better
    assert gate.decide(challenger, champion, _interval(low, high)).promote is promote


def test_the_interval_adds_to_the_minimum_improvement_rather_than_replacing_it():
    decision = policy.decide(_challenger(nce=0.8995), CHAMPION, _interval(-0.0008, -0.0002))
    assert not decision.promote and "is not below champion's" in decision.reason and "95% CI" in decision.reason


# Non-inferiority: a fresh model replaces a stale one unless it may be worse beyond the margin.

NCE_NI = PromotionPolicy(mode="non_inferiority")  # margin 0.5% of 0.90: 0.0045
NDCG = {"ndcg_at_10": 0.30, "recall_at_100": 0.50}
NDCG_NI = PromotionPolicy(metric="ndcg_at_10", guards={"recall_at_100": 0.01}, absolute_limits={},
                          higher_is_better=True, mode="non_inferiority")  # margin 0.5% of 0.30: 0.0015


@pytest.mark.parametrize("gate,champion,low,high,promote", [
    (NCE_NI, CHAMPION, -0.001, 0.003, True),  # slightly worse, within the margin
    (NCE_NI, CHAMPION, -0.002, -0.001, True),  # better
    (NCE_NI, CHAMPION, 0.002, 0.0044, True),  # surely worse, but by less than the margin
    (NCE_NI, CHAMPION, 0.003, 0.006, False),  # point within the margin, worse bound beyond it
    (NCE_NI, CHAMPION, 0.005, 0.008, False),  # beyond the margin
    (NDCG_NI, NDCG, -0.001, 0.0005, True),
    (NDCG_NI, NDCG, -0.0014, -0.0002, True),
    (NDCG_NI, NDCG, -0.002, -0.0004, False),
    (NDCG_NI, NDCG, -0.004, -0.002, False),
])
def test_non_inferiority_judges_the_worse_bound_against_the_margin(gate, champion, low, high, promote):
    metric = gate.metric
    point = (low + high) / 2
    challenger = {**champion, metric: champion[metric] + point}
    decision = gate.decide(challenger, champion, _interval(low, high, point))
    assert decision.promote is promote, decision.reason
    assert not decision.unusable and decision.mode == "non_inferiority"
    assert ("not worse than the champion beyond the 0.50% non-inferiority margin" in decision.reason) is promote
    assert f"worse bound {high if metric == 'nce' else low:.4g}" in decision.reason


@pytest.mark.parametrize("gate,champion,within,beyond", [
    (NCE_NI, CHAMPION, 0.003, 0.006), (NDCG_NI, NDCG, -0.001, -0.002),
])
def test_non_inferiority_on_bootstrapped_units(gate, champion, within, beyond):
    metric = gate.metric
    rng = np.random.default_rng(4)
    theirs = rng.exponential(champion[metric], 50_000)
    for shift, promote in [(within, True), (beyond, False)]:
        mine = theirs + shift + rng.normal(0, 0.02, len(theirs))
        interval = paired_bootstrap(mine, theirs)
        decision = gate.decide({**champion, metric: float(np.mean(mine))},
                               {**champion, metric: float(np.mean(theirs))}, interval)
        assert decision.promote is promote, decision.reason
        assert decision.tags()["promotion_mode"] == "non_inferiority"


def test_non_inferiority_needs_no_minimum_improvement_but_guards_and_limits_still_apply():
    slightly_worse = _challenger(nce=0.901)
    assert NCE_NI.decide(slightly_worse, CHAMPION, _interval(0.0, 0.002)).promote
    assert not policy.decide(slightly_worse, CHAMPION, _interval(0.0, 0.002)).promote
    worse_log_loss = NCE_NI.decide(_challenger(nce=0.901, log_loss=0.1201), CHAMPION, _interval(0.0, 0.002))
    assert not worse_log_loss.promote and "guard log_loss" in worse_log_loss.reason
    guarded = NCE_NI.decide(_challenger(calibration_error=0.005), CHAMPION, _interval(-0.001, 0.001))
    assert not guarded.promote and "guard calibration_error" in guarded.reason
    broken = NCE_NI.decide(_challenger(nce=1.05), CHAMPION, _interval(0.14, 0.16))
    assert not broken.promote and broken.unusable


@pytest.mark.parametrize("nce,promote", [(0.904, True), (0.905, False)])
def test_non_inferiority_without_an_interval_judges_the_point(nce, promote):
    gate = PromotionPolicy(mode="non_inferiority", require_interval=False, guards={})
    decision = gate.decide(_challenger(nce=nce), CHAMPION)
    assert decision.promote is promote and f"nce difference {nce - 0.90:.4g}" in decision.reason
    # An interval passed anyway is recorded but does not decide.
    assert gate.decide(_challenger(nce=nce), CHAMPION, _interval(0.0, 0.02)).promote is promote


# The interval is required, not optional.


@pytest.mark.parametrize("gate", [policy, NCE_NI])
def test_a_missing_interval_against_a_champion_is_an_error(gate):
    with pytest.raises(ValueError, match="requires a paired bootstrap interval"):
        gate.decide(_challenger(nce=0.89), CHAMPION)
    with pytest.raises(ValueError, match="requires a paired bootstrap interval"):
        gate.decide(_challenger(nce=1.05), CHAMPION)  # even when the challenger is broken
    assert gate.decide(_challenger(), None).promote  # no champion: nothing to compare


def test_an_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="mode"):
        PromotionPolicy(mode="inferiority")
