"""Ratings: one person's 1-5 verdict (and comment) on one output of one prompt, stored append-only
in ``RUN/ratings.jsonl`` and read back tolerantly (a corrupt line is reported, never removed)."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import PromptSearchError
from ..files import check_fields, decode, parse_json, present, read_bytes
from ..store import RunStore

log = logging.getLogger(__name__)

RATINGS = "ratings.jsonl"
FIELDS = ("time", "candidate", "prompt", "label_words", "example", "input", "output", "reference", "score",
          "rating", "comment", "source")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")

@dataclass(frozen=True)
class Rating:
    """One person's rating (1-5) of one output of one prompt, with an optional comment."""

    candidate: str
    prompt: str
    input: str
    output: str
    rating: int
    comment: str = ""
    example: str = ""  # the example's content key, when the input is a task example
    reference: str = ""  # the gold answer shown to the rater, if any
    score: float | None = None  # the output's share of the task metric (1/0), when known
    label_words: tuple[str, ...] | None = None
    time: str = ""
    source: str = "interactive"

    @property
    def value(self) -> float:
        """The rating mapped to [0, 1]."""
        return (self.rating - 1) / 4

    def to_json(self) -> dict:
        return {"time": self.time or _now(), "candidate": self.candidate, "prompt": self.prompt,
                "label_words": list(self.label_words) if self.label_words else None, "example": self.example,
                "input": self.input, "output": self.output, "reference": self.reference, "score": self.score,
                "rating": self.rating, "comment": self.comment, "source": self.source}


def check_rating(value) -> int:
    """A rating as typed or read: an integer 1-5, else PromptSearchError."""
    if isinstance(value, bool):
        raise PromptSearchError(f"rating {value!r} is not a number 1-5")
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"[+-]?\d+(\.0*)?", value):
            raise PromptSearchError(f"rating {value!r} is not a number 1-5")
        value = int(float(value))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= 5:
        raise PromptSearchError(f"rating {value!r} is outside 1-5")
    return value


def parse_rating(rec, where: str, source: str = "file") -> Rating:
    """A rating from a JSON record; ``where`` (file:line) prefixes any error."""
    if not isinstance(rec, dict):
        raise PromptSearchError(f"{where}: a rating must be a JSON object")
    check_fields(rec, FIELDS, where)
    try:
        rating = check_rating(rec.get("rating"))
    except PromptSearchError as e:
        raise PromptSearchError(f"{where}: {e}") from None
    for name in ("prompt", "input", "output", "candidate", "comment", "example", "reference", "time", "source"):
        if name in rec and rec[name] is not None and not isinstance(rec[name], str):
            raise PromptSearchError(f"{where}: field {name!r} must be a string")
    words = rec.get("label_words")
    if words is not None and (not isinstance(words, list) or not all(isinstance(w, str) for w in words)):
        raise PromptSearchError(f"{where}: field 'label_words' must be a list of strings or null")
    score = rec.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise PromptSearchError(f"{where}: field 'score' must be a number or null")
    if not rec.get("prompt") and not rec.get("candidate"):
        raise PromptSearchError(f"{where}: a rating needs the 'prompt' (or the 'candidate' id) it rates")
    if not isinstance(rec.get("input"), str):
        raise PromptSearchError(f"{where}: missing field 'input'")
    return Rating(candidate=str(rec.get("candidate") or ""), prompt=rec.get("prompt") or "", input=rec["input"],
                  output=rec.get("output") if isinstance(rec.get("output"), str) else "", rating=rating,
                  comment=str(rec.get("comment") or "").strip(), example=str(rec.get("example") or ""),
                  reference=str(rec.get("reference") or ""),
                  score=float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
                  label_words=tuple(words) if words else None, time=str(rec.get("time") or ""),
                  source=str(rec.get("source") or source))


def read_ratings(path: Path, strict: bool = False) -> tuple[list[Rating], list[str]]:
    """Ratings in a JSONL file and one message per line that could not be read. With ``strict`` the
    first bad line raises instead (used for files a user hands in). The file is never rewritten."""
    path = Path(path)
    if not present(path):
        if strict:
            raise PromptSearchError(f"{path}: file not found")
        return [], []
    ratings, problems = [], []
    for lineno, raw in enumerate(read_bytes(path).splitlines(), 1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            text = decode(raw, str(path), lineno)
            try:
                json.loads(text)
            except json.JSONDecodeError:
                raise PromptSearchError(f"{where}: corrupt line (not JSON)") from None
            except RecursionError:
                pass  # parse_json below says what is wrong
            rec = parse_json(text, where)
            ratings.append(parse_rating(rec, where))
        except PromptSearchError as e:
            if strict:
                raise
            problems.append(f"{e}; skipped (the line stays in the file)")
    return ratings, problems


class Feedback:
    """The ratings of one run: read from and appended to ``run_dir/ratings.jsonl``."""

    def __init__(self, store: RunStore):
        self.store = store

    @classmethod
    def open(cls, run_dir) -> Feedback:
        return cls(RunStore.open(run_dir))

    @property
    def path(self) -> Path:
        return self.store.dir / RATINGS

    def load(self) -> tuple[list[Rating], list[str]]:
        """(ratings, problems): corrupt lines are reported and skipped, never removed."""
        return read_ratings(self.path)

    def add(self, rating: Rating) -> dict:
        """Append one rating now (fsynced). A torn last line is closed first so it stays on its own line."""
        check_rating(rating.rating)
        if present(self.path):
            data = read_bytes(self.path)
            if data and not data.endswith(b"\n"):
                self.store.append_raw(RATINGS, b"\n")
        record = rating.to_json()
        self.store.append(RATINGS, record)
        return record

