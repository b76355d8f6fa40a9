"""The continual-learning kit's window: what a fine-tune learns from and what it is judged on."""

import pytest


@pytest.mark.parametrize(
    "days, trained_through, fresh, holdout",
    [
        (["01", "02", "03", "04", "05"], "02", ["03", "04"], "05"),
        (["03", "01", "05", "04"], "01", ["03", "04"], "05"),  # any order, gaps kept as they are
    ],
)
def test_the_fine_tune_window_learns_the_days_after_the_model_and_holds_out_the_newest(days, trained_through, fresh, holdout):
    from datetime import date

    from assets.continual import fine_tune_window

    def day(d):
        return date(2026, 1, int(d))

    assert fine_tune_window([day(d) for d in days], day(trained_through)) == ([day(d) for d in fresh], day(holdout))


def test_nothing_new_to_learn_is_an_error_that_says_what_to_do():
    from datetime import date

    from assets.continual import fine_tune_window

    with pytest.raises(ValueError, match="nothing new to learn.*ingest the next day"):
        fine_tune_window([date(2026, 1, 4), date(2026, 1, 5)], date(2026, 1, 4))
