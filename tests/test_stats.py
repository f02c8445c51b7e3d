"""The significance tests against scipy (the reference implementation)."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from promptsearch.errors import PromptSearchError
from promptsearch.metrics import macro_f1
from promptsearch.stats import (
    cohens_h,
    drop_test,
    fast_macro_f1,
    fisher_one_sided_less,
    mcnemar_exact,
    paired_bootstrap,
    paired_test,
)


def _pairs(only_a, only_b, both, neither):
    a = [1] * only_a + [0] * only_b + [1] * both + [0] * neither
    b = [0] * only_a + [1] * only_b + [1] * both + [0] * neither
    return a, b


@pytest.mark.parametrize("only_a,only_b", [(7, 64), (10, 10), (0, 5), (3, 0), (12, 25), (1, 2), (40, 61)])
def test_exact_mcnemar_matches_scipy_binomtest(only_a, only_b):
    a, b = _pairs(only_a, only_b, both=50, neither=30)
    result = mcnemar_exact(a, b)
    reference = scipy_stats.binomtest(only_b, only_a + only_b, 0.5).pvalue
    assert result.p_value == pytest.approx(reference, rel=1e-12, abs=1e-300)
    assert result.difference == pytest.approx((only_b - only_a) / len(a))
    assert result.detail == f"{only_b} vs {only_a} discordant"


def test_mcnemar_without_discordant_pairs_is_one_and_mismatched_lengths_refused():
    assert mcnemar_exact([1, 0, 1], [1, 0, 1]).p_value == 1.0
    with pytest.raises(PromptSearchError, match="same examples"):
        mcnemar_exact([1, 0], [1, 0, 1])


@pytest.mark.parametrize("new,n_new,old,n_old", [(112, 200, 167, 200), (160, 200, 167, 200), (5, 10, 9, 10), (30, 30, 2, 30)])
def test_one_sided_fisher_matches_scipy(new, n_new, old, n_old):
    reference = scipy_stats.fisher_exact([[new, n_new - new], [old, n_old - old]], alternative="less").pvalue
    assert fisher_one_sided_less(new, n_new, old, n_old) == pytest.approx(reference, rel=1e-9)


def test_paired_bootstrap_ci_and_p_against_scipy():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, 150)
    b = a + rng.normal(0.3, 0.5, 150)  # b is clearly better, paired
    res = paired_bootstrap("loglik", {"scores": list(a)}, {"scores": list(b)}, rounds=4000)
    ref = scipy_stats.bootstrap((b, a), lambda x, y: np.mean(x) - np.mean(y), paired=True, method="percentile",
                                n_resamples=4000, random_state=0).confidence_interval
    assert res.difference == pytest.approx(np.mean(b - a))
    assert ref.low > 0 and res.p_value < 0.001  # the reference CI excludes 0, so the test rejects
    t = scipy_stats.ttest_rel(b, a).pvalue  # large n: bootstrap and t agree on a clear effect
    assert t < 1e-6
    same = paired_bootstrap("loglik", {"scores": list(a)}, {"scores": list(a + rng.normal(0, 0.5, 150))}, rounds=4000)
    ref_p = scipy_stats.ttest_rel(a + rng.normal(0, 0.5, 150), a).pvalue
    assert same.p_value > 0.05 and ref_p > 0.01


def test_paired_test_picks_mcnemar_for_accuracy_and_bootstrap_for_macro_f1():
    a, b = _pairs(3, 20, 40, 10)
    assert paired_test("accuracy", {"scores": a}, {"scores": b}).test == "exact McNemar"
    golds = [0, 1, 2] * 20
    res = paired_test("macro_f1", {"scores": a[:60], "golds": golds, "preds": [0] * 60},
                      {"scores": b[:60], "golds": golds, "preds": golds}, )
    assert res.test == "paired bootstrap" and res.difference == pytest.approx(1.0 - macro_f1(golds, [0] * 60))


def test_fast_macro_f1_equals_sklearn():
    rng = np.random.default_rng(0)
    golds, preds = rng.integers(0, 4, 300), rng.integers(-1, 4, 300)
    assert fast_macro_f1(golds, preds) == pytest.approx(macro_f1(list(golds), list(preds)))


def test_drop_test_flags_a_drop_and_not_a_steady_score():
    old = {"scores": [1] * 167 + [0] * 33}
    dropped = drop_test("accuracy", old, {"scores": [1] * 112 + [0] * 88})
    assert dropped.p_value < 1e-6 and dropped.difference == pytest.approx(0.56 - 0.835)
    assert f"{cohens_h(0.56, 0.835):+.2f}" in dropped.detail
    steady = drop_test("accuracy", old, {"scores": [1] * 165 + [0] * 35})
    assert steady.p_value > 0.3
    rng = np.random.default_rng(2)
    loglik_old = {"scores": list(rng.normal(-1.0, 0.3, 100))}
    assert drop_test("loglik", loglik_old, {"scores": list(rng.normal(-1.5, 0.3, 100))}, rounds=2000).p_value < 0.01
    assert drop_test("loglik", loglik_old, {"scores": list(rng.normal(-0.9, 0.3, 100))}, rounds=2000).p_value > 0.5


def test_blended_scores_get_the_bootstrap_not_mcnemar():
    a, b = [0.0, 0.7, 1.0, 0.3] * 10, [1.0, 0.9, 1.0, 0.2] * 10  # accuracy with ratings blended in (a refine run)
    result = paired_test("accuracy", {"scores": a}, {"scores": b})
    assert result.test == "paired bootstrap" and result.difference == pytest.approx(np.mean(b) - np.mean(a))
    assert drop_test("accuracy", {"scores": a}, {"scores": b}, rounds=500).test == "one-sided bootstrap"


def test_holm_adjusts_step_down_and_keeps_the_order_given():
    from promptsearch.stats import holm
    # sorted 0.01, 0.02, 0.04, 0.30 -> 4 * 0.01, 3 * 0.02, max(0.06, 2 * 0.04), max(0.08, 0.30)
    assert holm([0.04, 0.01, 0.30, 0.02]) == pytest.approx([0.08, 0.04, 0.30, 0.06])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0]) and holm([]) == []
