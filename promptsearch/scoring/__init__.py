"""Scoring: the model-agnostic scorer (scorer.py) with its option layers -- calibration.py, demos.py,
ensemble.py, composed in ``Scorer.evaluate`` and charged by ``Scorer.cost`` -- the declared scorer protocol
(protocol.py) and the executors that fan scoring out (executors.py). The model computes the numbers
(promptsearch/models/). Import the public names from here: ``from promptsearch.scoring import Scorer``."""

from ..results import ExampleResult, continuation, first_line
from .protocol import ScorerLike, WrappedScorer
from .scorer import Scorer

__all__ = ["ExampleResult", "Scorer", "ScorerLike", "WrappedScorer", "continuation", "first_line"]
