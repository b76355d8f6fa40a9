import pytest

from models.promotion import PromotionPolicy

CHAMPION = {"nce": 0.90, "log_loss": 0.120, "calibration_error": 0.002}
policy = PromotionPolicy()


def _challenger(**changes):
    return {**CHAMPION, **changes}


def test_first_challenger_is_promoted_when_it_passes_the_limits():
    decision = policy.decide(_challenger(), None)
    assert decision.promote and "no champion" in decision.reason


@pytest.mark.parametrize("metric,value", [("nce", 1.02), ("calibration_error", 0.05)])
def test_first_challenger_is_refused_past_an_absolute_limit(metric, value):
    decision = policy.decide(_challenger(**{metric: value}), None)
    assert not decision.promote and decision.unusable


def test_better_challenger_is_promoted():
    decision = policy.decide(_challenger(nce=0.89, log_loss=0.119), CHAMPION)
    assert decision.promote and "1.11% better" in decision.reason


@pytest.mark.parametrize("nce", [0.90, 0.8995, 0.91])
def test_equal_barely_better_or_worse_challenger_keeps_the_champion(nce):
    decision = policy.decide(_challenger(nce=nce), CHAMPION)
    assert not decision.promote and not decision.unusable and "is not below champion's" in decision.reason


def test_guards_block_a_better_nce_with_worse_calibration():
    decision = policy.decide(_challenger(nce=0.88, log_loss=0.118, calibration_error=0.0045), CHAMPION)
    assert not decision.promote and "guard calibration_error" in decision.reason


def test_decision_tags_record_both_scores_and_the_reason():
    tags = policy.decide(_challenger(nce=0.89, log_loss=0.119), CHAMPION).tags()
    assert tags["promotion_decision"] == "promote"
    assert tags["challenger_nce"] == "0.890000" and tags["champion_nce"] == "0.900000"
    assert "better" in tags["promotion_reason"]
