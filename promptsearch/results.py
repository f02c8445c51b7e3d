"""What scoring one example gives (``ExampleResult``) and the two text rules every scoring path shares.
No imports of the rest of the package: the scorer and its layers (calibration, demonstrations,
ensembles) all build on this module, never on each other's."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ExampleResult:
    score: float  # this example's share of the metric: 1/0 for accuracy and exact match
    prediction: str  # the predicted label word or generated answer
    logprob: float = math.nan  # log-likelihood of the gold answer, where computed
    label_logprobs: tuple[float, ...] = ()  # classification: one per label word

    def to_json(self) -> list:
        return [self.score, self.prediction, None if math.isnan(self.logprob) else self.logprob, list(self.label_logprobs)]

    @classmethod
    def from_json(cls, row: list) -> ExampleResult:
        return cls(row[0], row[1], math.nan if row[2] is None else row[2], tuple(row[3]))


def continuation(context: str, answer: str) -> str:
    """The answer as it follows the context: after a space unless the context ends in white space."""
    return answer if not context or context[-1].isspace() else " " + answer


def first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0].strip() if text else ""
