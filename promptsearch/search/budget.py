"""What a run may spend: candidates, example-evaluations, seconds, tokens. The loop (loop.py) charges it
what the scorer declares a candidate costs (``Scorer.cost``, ``Scorer.once_costs``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Budget:
    """Local compute a run may spend; whichever limit is hit first stops it cleanly."""

    max_candidates: int | None = None
    max_evals: int | None = None  # example-evaluations (forward passes over one example)
    max_seconds: float | None = None
    # tokens of the texts scored (each example-evaluation's rendered prompt and input): what a served model
    # bills. Counted from the texts, not the server's replies, so a resumed run counts as the original did.
    max_tokens: int | None = None
