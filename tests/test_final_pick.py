"""benchmarks/analyses/final_pick.py: rules that pick among a run's finalists, compared on the development split."""
import pytest

from benchmarks.analyses import final_pick


def _f(dev, train, devsplit, dev_n=40, train_n=40):
    return {"id": f"{dev}-{train}", "dev": dev, "dev_n": dev_n, "train": train, "train_n": train_n, "devsplit": devsplit}


def test_each_rule_is_compared_with_todays_pick_on_the_development_split():
    runs = [
        # today's pick (first) is lucky on dev; train rows expose it, and the pooled rule switches
        {"finalists": [_f(0.90, 0.60, 0.70), _f(0.85, 0.80, 0.80), _f(0.80, 0.70, 0.75)]},
        # train rows alone would switch to a worse one; pooled stays
        {"finalists": [_f(0.90, 0.80, 0.85), _f(0.70, 0.82, 0.60), _f(0.60, 0.50, 0.65)]},
    ]
    out = final_pick.compare(runs)
    assert out["pooled"] == {"mean_difference": pytest.approx(0.05), "better_in": 1, "worse_in": 0, "runs": 2}
    assert out["train"]["mean_difference"] == pytest.approx((0.10 - 0.25) / 2) and out["train"]["worse_in"] == 1
    assert out["oracle"]["mean_difference"] == pytest.approx(0.05) and out["oracle"]["worse_in"] == 0
