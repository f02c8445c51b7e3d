"""Significance tests for prompt comparisons.

Paired (two prompts scored on the same examples): exact McNemar for 0/1 metrics, a paired bootstrap
otherwise. Unpaired (a recorded score against new data, as a monitor does): a one-sided Fisher exact
test for 0/1 metrics, a one-sided bootstrap otherwise. Exact tests are written out with
``math.comb`` so the package needs no scipy; the tests check them against scipy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .errors import PromptSearchError

PROPORTION_METRICS = ("accuracy", "exact_match", "contains")  # per-example scores are 0 or 1
BOOTSTRAP_ROUNDS = 10_000


@dataclass(frozen=True)
class TestResult:
    test: str  # which test, in words, e.g. "exact McNemar"
    difference: float  # b - a in the metric's units (for a monitor: new - recorded)
    p_value: float
    detail: str = ""  # e.g. the discordant counts

    def to_json(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        extra = f", {self.detail}" if self.detail else ""
        return f"{self.difference:+.3f}, {self.test} p={format_p(self.p_value)}{extra}"


def format_p(p: float) -> str:
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.1e}"


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of p-values for testing several hypotheses at once (same order as given):
    reject where the adjusted p < alpha and the chance of any false rejection stays under alpha."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def binom_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), exactly (integer arithmetic, then one division)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def mcnemar_exact(a: list[float], b: list[float]) -> TestResult:
    """Two-sided exact McNemar test of two 0/1 outcome lists on the same examples: under the null,
    the discordant pairs split as a fair coin."""
    if len(a) != len(b):
        raise PromptSearchError(f"paired test needs outcomes on the same examples ({len(a)} vs {len(b)})")
    only_b = sum(1 for x, y in zip(a, b) if y > x)
    only_a = sum(1 for x, y in zip(a, b) if x > y)
    n = only_a + only_b
    p = 1.0 if n == 0 else min(1.0, 2 * binom_cdf(min(only_a, only_b), n))
    diff = (only_b - only_a) / len(a) if a else 0.0
    return TestResult("exact McNemar", diff, p, f"{only_b} vs {only_a} discordant")


def paired_bootstrap(metric: str, a: dict, b: dict, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> TestResult:
    """Two-sided paired bootstrap: resample examples (the same ones for both prompts) and count how
    often the difference falls on the other side of zero. ``a``/``b`` hold ``scores`` and, for macro
    F1, ``golds`` and ``preds`` lists aligned by example."""
    n = len(a["scores"])
    if n != len(b["scores"]) or n == 0:
        raise PromptSearchError(f"paired test needs outcomes on the same examples ({n} vs {len(b['scores'])})")
    rng = np.random.default_rng(seed)
    observed = _value(metric, b, None) - _value(metric, a, None)
    diffs = np.array([_value(metric, b, idx) - _value(metric, a, idx) for idx in _resamples(rng, n, rounds)])
    p = _two_sided(diffs)
    return TestResult("paired bootstrap", float(observed), p, f"{rounds} resamples")


def paired_test(metric: str, a: dict, b: dict) -> TestResult:
    """The paired test fit for the scores: exact McNemar for 0/1 scores, bootstrap otherwise."""
    if zero_one(metric, a["scores"], b["scores"]):
        return mcnemar_exact(a["scores"], b["scores"])
    return paired_bootstrap(metric, a, b)


def zero_one(metric: str, *score_lists) -> bool:
    """Whether exact tests for proportions apply: a 0/1 metric whose scores are all 0 or 1 (a refine run
    blends ratings into them, and then they are not)."""
    return metric in PROPORTION_METRICS and all(s in (0, 1) for scores in score_lists for s in scores)


def fisher_one_sided_less(successes_new: int, n_new: int, successes_old: int, n_old: int) -> float:
    """P-value that the new proportion is lower than the old one (one-sided Fisher exact test):
    P(X <= successes_new) for X hypergeometric with the table's margins."""
    total_success = successes_new + successes_old
    total = n_new + n_old
    denom = math.comb(total, n_new)
    low = max(0, total_success - n_old)
    return min(1.0, sum(math.comb(total_success, k) * math.comb(total - total_success, n_new - k)
                        for k in range(low, successes_new + 1)) / denom)


def drop_test(metric: str, old: dict, new: dict, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> TestResult:
    """One-sided test that the metric on new data is lower than the recorded one (different examples)."""
    diff = _value(metric, new, None) - _value(metric, old, None)
    if zero_one(metric, old["scores"], new["scores"]):
        s_new, s_old = round(sum(new["scores"])), round(sum(old["scores"]))
        p = fisher_one_sided_less(s_new, len(new["scores"]), s_old, len(old["scores"]))
        return TestResult("one-sided Fisher exact", diff, p, f"Cohen's h {cohens_h(_value(metric, new, None), _value(metric, old, None)):+.2f}")
    rng = np.random.default_rng(seed)
    n_old, n_new = len(old["scores"]), len(new["scores"])
    diffs = np.array([_value(metric, new, i_new) - _value(metric, old, i_old)
                      for i_new, i_old in zip(_resamples(rng, n_new, rounds), _resamples(rng, n_old, rounds))])
    p = float((np.sum(diffs >= 0) + 1) / (rounds + 1))
    return TestResult("one-sided bootstrap", diff, p, f"{rounds} resamples")


def cohens_h(p1: float, p2: float) -> float:
    """Effect size of a difference between two proportions (0.2 small, 0.5 medium, 0.8 large)."""
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))


def _resamples(rng, n: int, rounds: int):
    for _ in range(rounds):
        yield rng.integers(0, n, n)


def _value(metric: str, rows: dict, idx) -> float:
    """The metric over (a resample of) per-example rows: the mean score, or macro F1."""
    if metric == "macro_f1":
        golds, preds = np.asarray(rows["golds"]), np.asarray(rows["preds"])
        return fast_macro_f1(golds if idx is None else golds[idx], preds if idx is None else preds[idx])
    scores = np.asarray(rows["scores"], dtype=float)
    return float(scores.mean() if idx is None else scores[idx].mean())


def fast_macro_f1(golds: np.ndarray, preds: np.ndarray) -> float:
    """Macro F1 over every label seen in either list (as scikit-learn computes it, zero_division=0),
    in numpy: the bootstrap calls it thousands of times."""
    f1s = []
    for label in np.union1d(golds, preds):
        tp = np.sum((golds == label) & (preds == label))
        denom = np.sum(golds == label) + np.sum(preds == label)
        f1s.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1s))


def _two_sided(diffs: np.ndarray) -> float:
    """Share of resampled differences at or beyond zero on the far side, doubled (with the +1
    correction, so a p-value is never exactly 0 from finitely many resamples)."""
    rounds = len(diffs)
    tail = min(np.sum(diffs <= 0), np.sum(diffs >= 0))
    return float(min(1.0, 2 * (tail + 1) / (rounds + 1)))


def outcomes(results, examples, label_words=()) -> dict:
    """Per-example rows the tests read, aligned by example: score, gold label and predicted label
    (index into the label words, -1 for an answer that is none of them)."""
    words = list(label_words)
    return {"keys": [ex.key for ex in examples], "scores": [r.score for r in results],
            "golds": [ex.label for ex in examples],
            "preds": [words.index(r.prediction) if r.prediction in words else -1 for r in results]}
