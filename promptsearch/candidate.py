"""Candidates (immutable prompt records) and trials (a candidate with its scores)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidate:
    """A prompt to try. ``prompt`` has an ``{input}`` slot; ``label_words`` overrides the task's
    verbalizer; ``soft`` names a trained soft prompt that is prepended (then it is not readable text).
    ``strategy``, ``parents`` (candidate ids) and ``edit`` record where it came from."""

    prompt: str
    label_words: tuple[str, ...] | None = None
    soft: str | None = None
    strategy: str = "seed"
    parents: tuple[str, ...] = ()
    edit: str = ""

    @property
    def id(self) -> str:
        """Same prompt, verbalizer and soft prompt: same id, whoever proposed it (no double scoring)."""
        raw = json.dumps([self.prompt, list(self.label_words) if self.label_words else None, self.soft])
        return hashlib.sha1(raw.encode()).hexdigest()[:12]

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "prompt": self.prompt,
            "label_words": list(self.label_words) if self.label_words else None,
            "soft": self.soft,
            "strategy": self.strategy,
            "parents": list(self.parents),
            "edit": self.edit,
        }

    @classmethod
    def from_json(cls, d: dict) -> Candidate:
        words = d.get("label_words")
        return cls(d["prompt"], tuple(words) if words else None, d.get("soft"), d.get("strategy", "seed"),
                   tuple(d.get("parents", ())), d.get("edit", ""))


@dataclass
class Trial:
    """A candidate and its scores: ``rungs`` maps a dev-subset size to (metric, tie-break)."""

    candidate: Candidate
    rungs: dict[int, tuple[float, float]] = field(default_factory=dict)
    order: int = 0  # when it was first scored; earlier wins ties

    @property
    def rung(self) -> int:
        return max(self.rungs) if self.rungs else 0

    @property
    def score(self) -> float:
        return self.rungs[self.rung][0] if self.rungs else -math.inf

    def sort_key(self):
        """Most examples first, then metric, then mean gold log-likelihood, then age."""
        if not self.rungs:
            return (0, -math.inf, -math.inf, -self.order)
        metric, tie = self.rungs[self.rung]
        return (self.rung, metric, -math.inf if math.isnan(tie) else tie, -self.order)
