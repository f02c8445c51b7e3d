"""Score an artifact again, and decide whether it still holds (``eval --artifact --check``).

On the data it was scored on (same split hash) a rescoring must reproduce the recorded score; on
other data a one-sided test asks whether the score dropped below the recorded one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from . import artifact
from .errors import PromptSearchError
from .metrics import Score, summarize
from .stats import TestResult, drop_test, format_p, outcomes

ALPHA = 0.05
MEAN_METRICS = ("accuracy", "exact_match", "contains")  # a score that is the mean of the per-example scores


@dataclass(frozen=True)
class Check:
    ok: bool
    same_data: bool
    recorded: float
    score: float
    test: TestResult | None  # None on the same data: there the score must simply reproduce
    message: str  # one line, the verdict


def check_model(art: artifact.Artifact, fingerprint: str, allow_other: bool) -> None:
    """Refuse, in one line, a model whose weights differ from the ones the artifact was scored with."""
    if fingerprint != art.model["fingerprint"] and not allow_other:
        raise PromptSearchError(
            f"model fingerprint differs: the artifact was scored with {art.model['name']} ({art.model['fingerprint'][:23]}…), "
            f"this model is {fingerprint[:23]}…; pass --allow-other-model to score it anyway")


def check_consistent(art: artifact.Artifact) -> None:
    """The artifact's parts must agree: its recorded test split hash is the hash of the examples its per-example
    outcomes are for, and its test score is their mean where the metric is a mean. This catches an artifact edited
    in one place (say its split hash, to dodge the reproduce check); it cannot catch one rewritten whole, as
    nothing in it is signed."""
    outcomes = art.test_outcomes
    keys_hash = "sha256:" + hashlib.sha256("\n".join(sorted(outcomes["keys"])).encode()).hexdigest()
    if keys_hash != art.task["splits"]["test"]["sha256"]:
        raise PromptSearchError("the artifact does not hold together: its test split hash is not the hash of the examples "
                                "its per-example outcomes are for (edited by hand?); export it again")
    if art.metric in MEAN_METRICS and outcomes["scores"] and not artifact.same_score(
            sum(outcomes["scores"]) / len(outcomes["scores"]), art.scores["test"]["score"]):
        raise PromptSearchError("the artifact does not hold together: its test score is not the mean of its per-example "
                                "outcomes (edited by hand?); export it again")


def check_task(art: artifact.Artifact, task) -> None:
    if task.metric != art.metric or task.kind != art.task["kind"]:
        raise PromptSearchError(f"task {task.name} is {task.kind}/{task.metric}; the artifact was scored as "
                                f"{art.task['kind']}/{art.metric}")
    if art.label_words and task.kind == "classification" and len(art.label_words) != len(task.label_words):
        raise PromptSearchError(f"task {task.name} has {len(task.label_words)} labels; the artifact's prompt scores {len(art.label_words)}")


def evaluate(art: artifact.Artifact, task, scorer, examples, same_weights: bool = False) -> tuple[Score, dict]:
    """The artifact's score and per-example outcomes on examples (its prompt, label words, chat mode
    and soft prompt exactly as recorded; the scorer must already hold a soft prompt's vectors). On the recorded
    weights (``same_weights``) a calibrated prompt corrects by its stored bias rows, as ``predict`` does."""
    check_task(art, task)
    scoring_task, candidate = art.task_for_scoring(task), art.candidate()
    stored = ((art.scoring or {}).get("calibration_bias") or {}).get("biases")
    if same_weights and stored:
        scorer.calibration.adopt(scorer, scoring_task, candidate, stored)
    from .scoring.scorer import evaluate_fitting

    results = evaluate_fitting(scorer, scoring_task, candidate, examples)[0]  # a row too long: wrong, as recorded
    words = art.label_words or task.label_words
    return summarize(art.metric, results, examples, words), outcomes(results, examples, words)


def decide(art: artifact.Artifact, examples, score: Score, rows: dict, alpha: float = ALPHA) -> Check:
    """The monitor's verdict on a fresh scoring of the artifact."""
    recorded = art.scores["test"]["score"]
    metric = art.metric
    check_consistent(art)
    if artifact.split_hash(examples) == art.task["splits"]["test"]["sha256"]:
        # on the same data every example must come out as recorded, not just the mean
        by_key = dict(zip(art.test_outcomes["keys"], art.test_outcomes["preds"]))
        ok = artifact.same_score(score.score, recorded) and all(
            by_key.get(k) == p for k, p in zip(rows["keys"], rows["preds"]))
        verdict = "reproduced" if ok else "NOT reproduced"
        return Check(ok, True, recorded, score.score, None,
                     f"{verdict}: {metric} {score.score:.4f} on the recorded test data (recorded {recorded:.4f}, n={score.n})")
    test = drop_test(metric, art.test_outcomes, rows)
    dropped = test.p_value < alpha and test.difference < 0
    verdict = "DROP" if dropped else "ok"
    return Check(not dropped, False, recorded, score.score, test,
                 f"{verdict}: {metric} {score.score:.4f} (n={score.n}) vs recorded {recorded:.4f} (n={art.scores['test']['n']}): "
                 f"{test.difference:+.4f}, {test.detail}, {test.test} p={format_p(test.p_value)} (alpha {alpha})")
