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
    ``strategy``, ``parents`` (candidate ids) and ``edit`` record where it came from.

    Options that change how a prompt is scored are part of its identity, each left out of the id and the
    JSON when unset so that older runs keep their ids: ``calibrate`` ("contextual" or "domain": the label
    scores are corrected for the prompt's own bias), ``demos`` (a rule that picks demonstrations per input,
    such as "similar:4" or "balanced:4"), ``members``/``weights`` (an ensemble: the members' scores
    combined), and ``verbalizer`` (per class, more words whose probabilities count toward it: a class's score is
    the log of the summed probability of its label word and these)."""

    prompt: str
    label_words: tuple[str, ...] | None = None
    soft: str | None = None
    strategy: str = "seed"
    parents: tuple[str, ...] = ()
    edit: str = ""
    calibrate: str | None = None
    demos: str | None = None
    members: tuple[Candidate, ...] = ()
    weights: tuple[float, ...] = ()
    verbalizer: tuple[tuple[str, ...], ...] = ()

    @property
    def id(self) -> str:
        """Same prompt, verbalizer, soft prompt and scoring options: same id, whoever proposed it (no double
        scoring)."""
        parts = [self.prompt, list(self.label_words) if self.label_words else None, self.soft]
        options = self.options()
        if options:
            parts.append(options)
        return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]

    def options(self) -> dict:
        """The scoring options that are set, as JSON (members by their full records)."""
        out: dict = {}
        if self.calibrate:
            out["calibrate"] = self.calibrate
        if self.demos:
            out["demos"] = self.demos
        if self.members:
            out["members"] = [m.to_json() for m in self.members]
            out["weights"] = list(self.weights)
        if self.verbalizer:
            out["verbalizer"] = [list(words) for words in self.verbalizer]
        return out

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "prompt": self.prompt,
            "label_words": list(self.label_words) if self.label_words else None,
            "soft": self.soft,
            "strategy": self.strategy,
            "parents": list(self.parents),
            "edit": self.edit,
            **self.options(),
        }

    @classmethod
    def from_json(cls, d: dict) -> Candidate:
        words = d.get("label_words")
        return cls(d["prompt"], tuple(words) if words else None, d.get("soft"), d.get("strategy", "seed"),
                   tuple(d.get("parents", ())), d.get("edit", ""), calibrate=d.get("calibrate"), demos=d.get("demos"),
                   members=tuple(cls.from_json(m) for m in d.get("members", ())),
                   weights=tuple(float(w) for w in d.get("weights", ())),
                   verbalizer=read_verbalizer(d.get("verbalizer", [])))


def read_verbalizer(value) -> tuple[tuple[str, ...], ...]:
    """A logged verbalizer: a list of word lists (one per class), each word non-empty text."""
    if not isinstance(value, list) or not all(isinstance(ws, list) and ws and all(isinstance(w, str) and w.strip()
                                                                               for w in ws) for ws in value):
        raise ValueError("verbalizer: a list of word lists, one per class")
    return tuple(tuple(ws) for ws in value)


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
