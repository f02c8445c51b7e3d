"""Prompt ensembles: a candidate whose ``members`` (best first) are scored and combined per example.

- classification: each member's label log-likelihoods become probabilities over the labels (a softmax
  over its own label words, so members with other verbalizers still vote per label); the ensemble's
  distribution is their weighted mean and it predicts the argmax;
- generation (exact match, contains): a vote of the members' answers (compared stripped and lowercased),
  each member counting its weight; a tie goes to the answer of the best member among the tied ones;
- ``loglik`` tasks: the log of the weighted mean of the members' target probabilities (a mixture).

Members are scored by the same scorer (cached), so an ensemble of prompts raced already costs no new
forward passes where their results exist; the search still counts ``Scorer.cost(candidate)`` (``cost``
here) example-evaluations
per example (one per member), as if each member had been run.
"""

from __future__ import annotations

import math

from ..candidate import Candidate
from ..errors import PromptSearchError
from ..metrics import score_prediction, softmax
from ..results import ExampleResult


def cost(candidate: Candidate) -> int:
    """Example-evaluations one example of the candidate costs: one per ensemble member, else one."""
    return max(1, len(candidate.members))


def make(members: list[Candidate], weights: list[float] | None = None, strategy: str = "ensemble",
         edit: str = "") -> Candidate:
    """An ensemble candidate. It reads as its best (first) member: that member's prompt and label words
    are the ones shown and the ones its predictions are named by; its parents are the members."""
    if len(members) < 2:
        raise PromptSearchError("an ensemble needs at least two members")
    if any(m.members for m in members):
        raise PromptSearchError("an ensemble member cannot itself be an ensemble")
    weights = tuple(float(w) for w in (weights or [1.0] * len(members)))
    first = members[0]
    return Candidate(first.prompt, first.label_words, strategy=strategy, parents=tuple(m.id for m in members),
                     edit=edit or f"ensemble of {len(members)}", members=tuple(members), weights=weights)


def normalized(weights, k: int) -> list[float]:
    """Weights summing to one (uniform when none are given); a bad list is a one-line error."""
    w = [float(x) for x in weights] if weights else [1.0] * k
    if len(w) != k or any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
        raise PromptSearchError(f"ensemble weights {list(weights)} must be {k} non-negative numbers, not all zero")
    total = sum(w)
    return [x / total for x in w]


class Ensemble:
    """The ensemble layer of a scorer: members are scored through the scorer (its cache) and combined
    here; it declares what an example costs. It keeps no cache of its own."""

    cost = staticmethod(cost)

    def clear(self) -> None:
        pass

    @staticmethod
    def combine(task, candidate: Candidate, member_results, examples) -> list[ExampleResult]:
        return combine(task, candidate, member_results, examples)


def combine(task, candidate: Candidate, member_results: list[list[ExampleResult]], examples,
            weights=None) -> list[ExampleResult]:
    """Combine members' results (one list per member, aligned with ``examples``).

    Classification results hold, in ``label_logprobs``, the log of the ensemble's probability of each
    label (weighted mean of the members' softmaxed label log-likelihoods; they sum to one in probability)
    and, in ``logprob``, that value at the gold label. They are normalised where a single prompt's are raw
    log-likelihoods, so an ensemble's tie-break value is not comparable with a single prompt's (racing
    compares tie-breaks only between equal metric scores). Generation results hold the voted answer and
    no log-likelihood. ``weights`` overrides the candidate's (used when fitting them)."""
    w = normalized(weights if weights is not None else candidate.weights, len(member_results))
    if task.kind == "classification":
        words = candidate.label_words or task.label_words
        return [_classify(w, [rs[i] for rs in member_results], ex, words) for i, ex in enumerate(examples)]
    if task.metric == "loglik":
        return [_mixture(w, [rs[i] for rs in member_results]) for i in range(len(examples))]
    return [_vote(task, w, [rs[i] for rs in member_results], ex) for i, ex in enumerate(examples)]


def _classify(weights, results, example, words) -> ExampleResult:
    n_labels = len(words)
    mixed = [0.0] * n_labels
    for w, r in zip(weights, results):
        if len(r.label_logprobs) != n_labels:
            raise PromptSearchError(f"an ensemble member scores {len(r.label_logprobs)} labels, the task has {n_labels}")
        for j, p in enumerate(softmax(r.label_logprobs)):
            mixed[j] += w * p
    logs = tuple(math.log(p) if p > 0 else -math.inf for p in mixed)
    best = max(range(n_labels), key=logs.__getitem__)  # first label wins an exact tie, as for one prompt
    gold = logs[example.label] if example.label is not None else math.nan
    return ExampleResult(float(best == example.label), words[best], gold, logs)


def _vote(task, weights, results, example) -> ExampleResult:
    tally: dict[str, float] = {}
    first_said: dict[str, int] = {}
    for m, (w, r) in enumerate(zip(weights, results)):
        answer = (r.prediction or "").strip().lower()
        tally[answer] = tally.get(answer, 0.0) + w
        first_said.setdefault(answer, m)
    # most votes (up to float noise in the weights); then the answer of the best member that gave one
    top = max(tally.values())
    tied = [a for a, v in tally.items() if v >= top - 1e-9]
    winner = min(tied, key=first_said.__getitem__)
    prediction = results[first_said[winner]].prediction
    return ExampleResult(score_prediction(task, example, prediction), prediction)


def _mixture(weights, results) -> ExampleResult:
    top = max(r.logprob for r in results)
    value = top + math.log(sum(w * math.exp(r.logprob - top) for w, r in zip(weights, results)))
    return ExampleResult(value, "", value)
