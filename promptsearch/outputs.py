"""Per-example outputs of a prompt: input, expected answer, what the model predicted or generated, and
whether that was right. `eval` and `show` print them (#30: a prompt that scores 0 must show why)."""

from __future__ import annotations

import math

from .format import flat

GRADED = ("accuracy", "macro_f1", "exact_match", "contains")  # metrics whose per-example score is right/wrong


def example_rows(task, examples, results: list, label_words=()) -> list[dict]:
    """One JSON row per example. ``correct`` is None for a log-likelihood metric (no right or wrong)."""
    from .metrics import score_prediction  # numpy: not at CLI import time

    words = tuple(label_words or task.label_words)
    rows = []
    for ex, r in zip(examples, results):
        if task.kind == "classification" and ex.label is not None and ex.label < len(words):
            expected = words[ex.label]
        else:
            expected = " | ".join(ex.answers)
        # right or wrong from the prediction itself: a refine run logs blended scores, not the metric's 1/0
        correct = bool(score_prediction(task, ex, r.prediction, words)) if task.metric in GRADED else None
        row = {"id": ex.id, "input": ex.input, "expected": expected, "prediction": r.prediction,
               "correct": correct, "score": r.score,
               "gold_logprob": None if math.isnan(r.logprob) else r.logprob}
        if r.label_logprobs:
            row["label_logprobs"] = list(r.label_logprobs)
        rows.append(row)
    return rows


def pick(rows: list[dict], limit: int | None, errors: bool) -> list[dict]:
    """The rows to print: only the wrong ones with ``errors``, at most ``limit`` of them."""
    chosen = [r for r in rows if r["correct"] is False] if errors else rows
    return chosen[:limit] if limit is not None else chosen


def render(rows: list[dict], shown: list[dict], title: str, width: int = 60) -> str:
    """A table of the chosen rows under a title that says how many of how many are shown."""
    wrong = sum(r["correct"] is False for r in rows)
    head = f"{title}: {len(shown)} of {len(rows)} examples shown ({wrong} wrong)"
    lines = [head, f"  {'ok':<3} {'expected':<16} {'predicted':<20} input"]
    for r in shown:
        ok = "-" if r["correct"] is None else ("yes" if r["correct"] else "NO")
        lines.append(f"  {ok:<3} {flat(r['expected'], 16):<16} {flat(r['prediction'], 20):<20} {flat(r['input'], width)}")
    return "\n".join(lines)
