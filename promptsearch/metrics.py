"""Aggregate per-example results into a score with n and a 95% confidence interval."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

# The metrics each kind of task can be scored by; the first is its default.
METRICS = {"classification": ("accuracy", "macro_f1"), "generation": ("exact_match", "contains", "loglik")}

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Score:
    metric: str
    score: float
    n: int
    ci_low: float
    ci_high: float

    def to_json(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.score:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}] n={self.n}"


def wilson(successes: float, n: int) -> tuple[float, float]:
    """Wilson score interval: sound for proportions near 0 or 1 and for small n."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))  # plain floats (a numpy sum in: numpy out)


def macro_f1(golds: list[int], preds: list[int]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(golds, preds, average="macro", zero_division=0))


def bootstrap(stat, n: int, rounds: int = 1000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    values = sorted(stat(rng.integers(0, n, n)) for _ in range(rounds))
    return (values[int(0.025 * rounds)], values[int(0.975 * rounds) - 1])


def summarize(metric: str, results, examples, label_words=()) -> Score:
    n = len(results)
    if n == 0:
        return Score(metric, math.nan, 0, math.nan, math.nan)
    if metric == "macro_f1":
        golds = [ex.label for ex in examples]
        preds = [list(label_words).index(r.prediction) if r.prediction in label_words else -1 for r in results]
        value = macro_f1(golds, preds)
        lo, hi = bootstrap(lambda idx: macro_f1([golds[i] for i in idx], [preds[i] for i in idx]), n)
        return Score(metric, value, n, lo, hi)
    values = np.array([r.score for r in results], dtype=float)
    value = float(values.mean())
    if metric == "loglik":
        half = Z95 * float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
        return Score(metric, value, n, value - half, value + half)
    lo, hi = wilson(values.sum(), n)
    return Score(metric, value, n, lo, hi)


def score_prediction(task, example, prediction: str, label_words=()) -> float:
    """An example's share of the task metric (1/0) from the prediction alone: the predicted label word
    for classification (``label_words``: the candidate's, else the task's), the answer text otherwise
    (exact match of any accepted answer, or containing one; case-insensitive, stripped)."""
    if task.kind == "classification":
        words = label_words or task.label_words
        return float(example.label is not None and prediction == words[example.label])
    p = (prediction or "").strip().lower()
    answers = [a.strip().lower() for a in example.answers]
    if task.metric == "exact_match":
        return float(p in answers)
    return float(any(a and a in p for a in answers))


def softmax(scores) -> list[float]:
    """Normalised probabilities from log-scores (label log-likelihoods), shifted by the max for stability."""
    top = max(scores)
    e = [math.exp(x - top) for x in scores]
    total = sum(e)
    return [x / total for x in e]
