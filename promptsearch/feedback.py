"""Human feedback: ratings of what the best prompts produce, and a refine search that folds them in.

    ratings.jsonl   one rating per line, appended (and fsynced) the moment it is given:
                    time, candidate id, prompt, example key, input, output, reference, rating 1-5, comment

Three pieces turn ratings into a search objective:

- :class:`RatingModel` -- a ridge regression on simple features of (prompt, output): hashed word n-grams of
  the prompt, hashed character n-grams of the output, output length, and whether the output is correct by
  the task's metric. Trained on the rated pairs, it predicts the rating of any output nobody rated.
- :class:`BlendedScorer` -- wraps a :class:`~promptsearch.scorer.Scorer` so every per-example score becomes
  ``(1 - w) * metric + w * rating`` (rating mapped to [0, 1]: the person's rating where that exact output was
  rated, else the model's prediction). Racing, the leaderboard and every strategy then optimise the blend.
- :func:`comment_edits` -- comments become instructions ("too long" -> "Respond concisely."): a small built-in
  mapping, extensible with a JSON file ``{"regex": "instruction"}``, and optionally the model's own proposal.
  :class:`Refine` proposes those edits on the rated prompts; the strategies after it (clarify, evolution)
  start from the leaderboard, which is ranked by the blend.

:func:`refine` runs all of it into a new run directory ``RUN-refine-N``; the original run is never written to.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .candidate import Candidate
from .errors import PromptSearchError
from .store import RunStore
from .template import escape, validate

log = logging.getLogger(__name__)

RATINGS = "ratings.jsonl"
REFINE_FILE = "refine.json"
LOW = 3  # comments on ratings at or below this become edits

# (pattern, instruction): the first patterns win when several match the same comment.
BUILTIN_EDITS: list[tuple[str, str]] = [
    (r"too (long|verbose|wordy|detailed)|shorter|rambl|less detail|concise", "Respond concisely."),
    (r"explain|explanation|extra text|chatty", "Do not explain."),
    (r"too (short|brief|terse)|more detail|elaborate|longer", "Give a detailed answer."),
    (r"too (abstract|vague|general)|be (more )?specific|more (concrete|specific)", "Give a concrete, specific answer."),
    (r"more abstract|too (specific|concrete|literal)|more general", "Give a more abstract answer."),
    (r"too (formal|stiff)|friendlier|more casual", "Use a friendly, natural tone."),
    (r"tone|rude|too (casual|informal)|impolite|more formal|polite", "Use a polite, formal tone."),
    (r"one word|single word", "Answer with one word."),
    (r"repeat|repetit|copies|echo", "Do not repeat the input."),
    (r"format|extra words|only the answer", "Give only the answer, nothing else."),
    (r"wrong|incorrect|mistake|not right|false", "Be precise."),
]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ---- ratings --------------------------------------------------------------------------------------
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
    try:
        rating = check_rating(rec.get("rating"))
    except PromptSearchError as e:
        raise PromptSearchError(f"{where}: {e}") from None
    for name in ("prompt", "input", "output"):
        if name in rec and rec[name] is not None and not isinstance(rec[name], str):
            raise PromptSearchError(f"{where}: field {name!r} must be a string")
    if not rec.get("prompt") and not rec.get("candidate"):
        raise PromptSearchError(f"{where}: a rating needs the 'prompt' (or the 'candidate' id) it rates")
    if not isinstance(rec.get("input"), str):
        raise PromptSearchError(f"{where}: missing field 'input'")
    words = rec.get("label_words")
    score = rec.get("score")
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
    if not path.exists():
        if strict:
            raise PromptSearchError(f"{path}: file not found")
        return [], []
    ratings, problems = [], []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                raise PromptSearchError(f"{where}: corrupt line (not JSON)") from None
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

    def ratings(self) -> list[Rating]:
        ratings, problems = self.load()
        for p in problems:
            log.warning("%s", p)
        return ratings

    def add(self, rating: Rating) -> dict:
        """Append one rating now (fsynced). A torn last line is closed first so it stays on its own line."""
        check_rating(rating.rating)
        if self.path.exists():
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(self.path, "ab") as f:
                    f.write(b"\n")
        record = rating.to_json()
        self.store.append(RATINGS, record)
        return record

    def rated_pairs(self) -> set[tuple[str, str]]:
        return {(r.candidate, r.example or r.input) for r in self.ratings()}


# ---- what to rate -----------------------------------------------------------------------------------
@dataclass
class Item:
    """One (prompt, input) pair to show a rater."""

    rank: int
    candidate: Candidate
    dev: dict | None
    example: object  # promptsearch.task.Example
    output: str | None = None
    score: float | None = None

    def reference(self, task) -> str:
        if task.kind == "classification" and self.example.label is not None:
            return (self.candidate.label_words or task.label_words)[self.example.label]
        return self.example.output

    def rating(self, task, value: int, comment: str = "", source: str = "interactive") -> Rating:
        return Rating(candidate=self.candidate.id, prompt=self.candidate.prompt, input=self.example.input,
                      output=self.output or "", rating=value, comment=comment, example=self.example.key,
                      reference=self.reference(task), score=self.score, label_words=self.candidate.label_words,
                      source=source)


def board_of(store: RunStore) -> list[dict]:
    """The run's leaderboard: from summary.json when finished, else from the log."""
    from . import runner

    summary = store.summary
    board = (summary or {}).get("leaderboard") or runner.leaderboard_from_log(store)
    if not board:
        raise PromptSearchError(f"{store.dir}: no candidate has been scored yet")
    return board


def logged_results(store: RunStore) -> dict[str, dict[str, list]]:
    """candidate id -> example key -> logged result row ([score, prediction, logprob, label_logprobs])."""
    out: dict[str, dict[str, list]] = {}
    for rec in store.read("candidates.jsonl"):
        out.setdefault(rec["candidate"]["id"], {}).update(rec.get("results") or {})
    return out


def rating_items(store: RunStore, task, top: int = 3, n_inputs: int = 3, seed: int = 0,
                 rated: set | None = None) -> list[Item]:
    """The pairs to rate: the run's ``top`` prompts (soft prompts left out) on the same ``n_inputs`` dev
    examples, drawn (seeded) from the examples whose outputs the run already logged for all of them, so
    no model is needed when it can be helped. Pairs in ``rated`` (candidate id, example key) are left out,
    so rating again continues where the last session stopped."""
    import random

    rows = [r for r in board_of(store) if not r.get("soft")][:top]
    if not rows:
        raise PromptSearchError(f"{store.dir}: the run has no readable (non-soft) prompt to rate")
    cands = [Candidate.from_json(r) for r in rows]
    logged = logged_results(store)
    common = set.intersection(*(set(logged.get(c.id, {})) for c in cands))
    pool = [ex for ex in task.dev if ex.key in common] or list(task.dev)
    picks = random.Random(seed).sample(pool, min(n_inputs, len(pool)))
    items = []
    for row, cand in zip(rows, cands):
        for ex in picks:
            if rated and (cand.id, ex.key) in rated:
                continue
            got = logged.get(cand.id, {}).get(ex.key)
            items.append(Item(row.get("rank", 0), cand, row.get("dev"), ex,
                              got[1] if got else None, got[0] if got else None))
    return items


def fill_outputs(items: list[Item], task, scorer) -> None:
    """Run the model for items whose output the run log did not hold."""
    by_cand: dict[str, list[Item]] = {}
    for it in items:
        if it.output is None:
            by_cand.setdefault(it.candidate.id, []).append(it)
    for group in by_cand.values():
        results = scorer.evaluate(task, group[0].candidate, [it.example for it in group])
        for it, r in zip(group, results):
            it.output, it.score = r.prediction, r.score
    for it in items:  # loglik tasks keep no prediction: show the greedy continuation instead
        if not it.output and task.kind == "generation" and task.metric == "loglik":
            it.output = scorer.generate(it.candidate.prompt, [it.example], scorer.max_new_tokens(task))[0].prediction


def complete_records(ratings: list[Rating], store: RunStore, task, parts_loader) -> list[Rating]:
    """Fill in what a hand-written rating left out: the prompt (from its candidate id), the candidate id
    (from its prompt), the example key and the output (from the run log, else by running the model)."""
    known = {}
    for rec in store.read("candidates.jsonl"):
        known[rec["candidate"]["id"]] = Candidate.from_json(rec["candidate"])
    examples = {}
    for ex in task.test + task.train + task.dev:  # dev last: a dev match wins
        examples[ex.input] = ex
    logged = logged_results(store)
    out, missing, scorer = [], [], None
    for r in ratings:
        if not r.prompt:
            if r.candidate not in known:
                raise PromptSearchError(f"rating names candidate {r.candidate!r}, which this run never scored")
            cand = known[r.candidate]
        else:
            cand = Candidate(validate(r.prompt), r.label_words)
        ex = examples.get(r.input)
        r = replace(r, prompt=cand.prompt, candidate=cand.id, label_words=cand.label_words,
                    example=r.example or (ex.key if ex else ""))
        got = logged.get(cand.id, {}).get(r.example) if r.example else None
        if not r.output and got:
            r = replace(r, output=got[1], score=got[0] if r.score is None else r.score)
        if not r.output:
            missing.append((len(out), cand, ex))
        if ex is not None and r.score is None and r.output:
            r = replace(r, score=raw_score(task, cand, ex, r.output))
        if not r.reference and ex is not None:
            r = replace(r, reference=Item(0, cand, None, ex).reference(task))
        out.append(r)
    if missing:
        _, _, scorer = parts_loader()
        from .task import Example

        for i, cand, ex in missing:
            ex = ex or Example(out[i].input, "", id="rated")
            res = scorer.evaluate(task, cand, [ex])[0]
            out[i] = replace(out[i], output=res.prediction, score=res.score if ex.id != "rated" else None)
    return out


# ---- metric from a prediction ----------------------------------------------------------------------
def raw_score(task, candidate: Candidate, example, prediction: str) -> float:
    """The example's share of the task metric, recomputed from the prediction alone (as the scorer does)."""
    if task.kind == "classification":
        words = candidate.label_words or task.label_words
        return float(example.label is not None and prediction == words[example.label])
    p = (prediction or "").strip().lower()
    answers = [a.strip().lower() for a in example.answers]
    if task.metric == "exact_match":
        return float(p in answers)
    return float(any(a and a in p for a in answers))


# ---- the rating predictor ------------------------------------------------------------------------
class RatingModel:
    """Predicts a rating in [0, 1] from (prompt, output, correct). Ridge regression on hashed word 1-2-grams
    of the prompt, hashed character 2-4-grams of the output, and dense features (log output length, word
    count, empty output, correct by the metric). Fewer than 3 ratings, or all equal: predicts their mean."""

    def __init__(self, alpha: float = 1.0, n_features: int = 2**12, prompt_weight: float = 0.5):
        self.alpha = alpha
        self.n_features = n_features
        self.prompt_weight = prompt_weight

    def _features(self, prompts, outputs, correct, fit=False):
        import numpy as np
        from scipy import sparse
        from sklearn.feature_extraction.text import HashingVectorizer

        words = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=self.n_features,
                                  alternate_sign=False, norm="l2", token_pattern=r"[^\s]+")
        chars = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=self.n_features,
                                  alternate_sign=False, norm="l2")
        dense = np.array([[math.log1p(len(o)), len(o.split()), float(not o.strip()),
                           0.5 if c is None or (isinstance(c, float) and math.isnan(c)) else float(c)]
                          for o, c in zip(outputs, correct)], dtype=float)
        if fit:
            self.mean_ = dense.mean(0)
            self.scale_ = np.where(dense.std(0) > 1e-9, dense.std(0), 1.0)
        dense = (dense - self.mean_) / self.scale_
        return sparse.hstack([words.transform(prompts) * self.prompt_weight, chars.transform(outputs),
                              sparse.csr_matrix(dense)]).tocsr()

    def fit(self, ratings: list[Rating]) -> RatingModel:
        import numpy as np

        y = np.array([r.value for r in ratings], dtype=float)
        self.n_ = len(ratings)
        self.mean_rating_ = float(y.mean()) if len(y) else 0.5
        self.ridge_ = None
        if len(y) >= 3 and y.std() > 1e-9:
            from sklearn.linear_model import Ridge

            X = self._features([r.prompt for r in ratings], [r.output for r in ratings],
                               [r.score for r in ratings], fit=True)
            self.ridge_ = Ridge(alpha=self.alpha).fit(X, y)
            self.train_mae_ = float(np.abs(np.clip(self.ridge_.predict(X), 0, 1) - y).mean())
        return self

    def predict(self, prompts: list[str], outputs: list[str], correct: list) -> list[float]:
        import numpy as np

        if self.ridge_ is None:
            return [self.mean_rating_] * len(prompts)
        X = self._features(prompts, outputs, correct)
        return [float(v) for v in np.clip(self.ridge_.predict(X), 0.0, 1.0)]

    def describe(self) -> str:
        if self.ridge_ is None:
            return f"mean of {self.n_} rating(s) ({1 + 4 * self.mean_rating_:.2f}/5); too few or all equal to learn from"
        return f"ridge regression on {self.n_} rated outputs (training error {4 * self.train_mae_:.2f} rating points)"


# ---- the blended objective -------------------------------------------------------------------------
class BlendedScorer:
    """A scorer whose per-example score is ``(1 - weight) * metric + weight * rating``; everything else
    (model, generation, caches, soft prompts) is the wrapped scorer's. The rating is the person's where
    this candidate's output on this example was rated, else the :class:`RatingModel`'s prediction."""

    blends_ratings = True

    def __init__(self, scorer, model: RatingModel, weight: float, ratings: list[Rating]):
        if not 0.0 <= weight <= 1.0:
            raise PromptSearchError(f"rating weight {weight} is outside 0-1")
        self.scorer, self.rating_model, self.weight = scorer, model, weight
        self.rated: dict[tuple[str, str], list[float]] = {}
        for r in ratings:
            self.rated.setdefault((r.candidate, r.example or r.input), []).append(r.value)

    def __getattr__(self, name):
        return getattr(self.scorer, name)

    def ratings_of(self, task, candidate: Candidate, examples, results) -> list[tuple[float, bool]]:
        """(rating in [0, 1], whether a person gave it) for each (example, result)."""
        out: list = [None] * len(examples)
        todo = []
        for i, (ex, r) in enumerate(zip(examples, results)):
            given = self.rated.get((candidate.id, ex.key)) or self.rated.get((candidate.id, ex.input))
            if given:
                out[i] = (sum(given) / len(given), True)
            else:
                todo.append(i)
        if todo:
            preds = self.rating_model.predict([candidate.prompt] * len(todo), [results[i].prediction for i in todo],
                                              [raw_score(task, candidate, examples[i], results[i].prediction) for i in todo])
            for i, p in zip(todo, preds):
                out[i] = (p, False)
        return out

    def evaluate(self, task, candidate, examples):
        raw = self.scorer.evaluate(task, candidate, examples)
        rates = self.ratings_of(task, candidate, examples, raw)
        w = self.weight
        return [replace(r, score=(1 - w) * r.score + w * q) for r, (q, _) in zip(raw, rates)]

    def preload(self, task, candidate, results) -> None:
        """Results read back from a log may be blended: the wrapped cache gets the raw metric back."""
        from .task import Example  # noqa: F401  (examples are looked up by key below)

        by_key = {ex.key: ex for ex in task.dev + task.test + task.train}
        raw = {}
        for key, r in results.items():
            ex = by_key.get(key)
            if ex is not None:
                raw[key] = replace(r, score=raw_score(task, candidate, ex, r.prediction))
        self.scorer.preload(task, candidate, raw)

    def details(self, task, candidate, examples) -> dict:
        """Raw metric, mean rating and how many ratings were a person's, on these examples."""
        raw = self.scorer.evaluate(task, candidate, examples)
        rates = self.ratings_of(task, candidate, examples, raw)
        n = max(1, len(raw))
        return {"dev": sum(r.score for r in raw) / n, "rating": sum(q for q, _ in rates) / n,
                "rated": sum(1 for _, human in rates if human), "n": len(raw)}


def blendable(task) -> None:
    if task.metric in ("macro_f1", "loglik"):
        raise PromptSearchError(f"refine blends ratings into per-example scores in [0, 1]; task {task.name}'s "
                                f"metric {task.metric} is not one (use accuracy, exact_match or contains)")


# ---- comments -> edits ---------------------------------------------------------------------------
def load_edit_map(path) -> list[tuple[str, str]]:
    """A user's ``{"regex": "instruction"}`` JSON file, checked."""
    p = Path(path)
    if not p.exists():
        raise PromptSearchError(f"{path}: file not found")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PromptSearchError(f"{path}: bad JSON at line {e.lineno}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in data.items()):
        raise PromptSearchError(f"{path}: must be a JSON object mapping a comment pattern to an instruction")
    for pattern in data:
        try:
            re.compile(pattern)
        except re.error as e:
            raise PromptSearchError(f"{path}: pattern {pattern!r} is not a valid regular expression ({e})") from None
    return [(k, v.strip()) for k, v in data.items()]


@dataclass
class Edit:
    instruction: str
    comments: list[str] = field(default_factory=list)
    source: str = "built-in"  # built-in, user, or model

    def to_json(self) -> dict:
        return {"instruction": self.instruction, "comments": self.comments, "source": self.source}


MODEL_EDIT_PROMPT = ("A user read an answer and complained: \"{comment}\"\n"
                     "Write one short instruction that would fix the answer.\nInstruction:")


def comment_edits(ratings: list[Rating], mapping: list[tuple[str, str]] | None = None, propose=None,
                  low: int = LOW) -> list[Edit]:
    """Instructions asked for by the comments on low ratings, most asked-for first. User patterns are tried
    before the built-in ones; a comment nothing matches goes to ``propose(comment) -> str`` when given."""
    table = [(p, e, "user") for p, e in (mapping or [])] + [(p, e, "built-in") for p, e in BUILTIN_EDITS]
    edits: dict[str, Edit] = {}
    for r in ratings:
        comment = r.comment.strip()
        if not comment or r.rating > low:
            continue
        hit = None
        for pattern, instruction, source in table:
            if re.search(pattern, comment, flags=re.IGNORECASE):
                hit = (instruction, source)
                break
        if hit is None and propose is not None:
            proposed = _clean_instruction(propose(comment))
            hit = (proposed, "model") if proposed else None
        if hit is None:
            log.info("comment %r maps to no edit", comment)
            continue
        edits.setdefault(hit[0], Edit(hit[0], source=hit[1])).comments.append(comment)
    return sorted(edits.values(), key=lambda e: -len(e.comments))


def _clean_instruction(text: str) -> str:
    text = (text or "").strip().strip('"').strip()
    text = text.split("\n")[0].strip()
    if not text or len(text) > 120 or len(text.split()) < 2:
        return ""
    return text if text[-1] in ".!" else text + "."


def model_proposer(scorer, charge=None):
    """``propose(comment)``: the model's own one-line instruction for a comment (greedy)."""

    def propose(comment: str) -> str:
        if charge is not None:
            charge(1)
        return scorer.complete([MODEL_EDIT_PROMPT.replace("{comment}", comment)], max_new_tokens=24)[0]

    return propose


def prepend(prompt: str, sentence: str) -> str:
    return escape(sentence) + "\n" + prompt


def before_cue(prompt: str, sentence: str) -> str | None:
    """Put the sentence on its own line before the answer cue (the last line, if it holds no input)."""
    lines = prompt.split("\n")
    if len(lines) < 2 or "{input}" in lines[-1] or "{input}" not in "\n".join(lines[:-1]):
        return None
    return "\n".join(lines[:-1] + [escape(sentence), lines[-1]])


# ---- refine: the whole loop ------------------------------------------------------------------------
def next_refine_dir(parent: Path) -> Path:
    """``RUN-refine-N`` beside the run, N the first free number (a refine of a refine counts on)."""
    root = re.sub(r"-refine-\d+$", "", parent.name)
    n = 1
    while (parent.parent / f"{root}-refine-{n}").exists():
        n += 1
    return parent.parent / f"{root}-refine-{n}"


def _with_scores(ratings: list[Rating], task) -> list[Rating]:
    dev = {ex.key: ex for ex in task.dev + task.train + task.test}
    out = []
    for r in ratings:
        if r.score is None and r.example in dev:
            r = replace(r, score=raw_score(task, Candidate(r.prompt, r.label_words), dev[r.example], r.output))
        out.append(r)
    return out


def parent_estimates(store: RunStore, task, board: list[dict], model: RatingModel, ratings: list[Rating],
                     weight: float) -> list[dict]:
    """Each parent leaderboard row with its mean rating (a person's, else predicted from its logged outputs)."""
    logged = logged_results(store)
    by_key = {ex.key: ex for ex in task.dev}
    rows = []
    for row in board:
        cand = Candidate.from_json(row)
        mine = [r for r in ratings if r.candidate == cand.id]
        if mine:
            rating, source = sum(r.value for r in mine) / len(mine), f"rated x{len(mine)}"
        else:
            pairs = [(by_key[k], v) for k, v in logged.get(cand.id, {}).items() if k in by_key]
            preds = model.predict([cand.prompt] * len(pairs), [v[1] for _, v in pairs],
                                  [raw_score(task, cand, ex, v[1]) for ex, v in pairs]) if pairs else []
            rating, source = (sum(preds) / len(preds) if preds else model.mean_rating_), "predicted"
        dev = (row.get("dev") or {}).get("score", 0.0)
        rows.append({**row, "rating": rating, "rating_source": source, "comments": [r.comment for r in mine if r.comment],
                     "blended": (1 - weight) * dev + weight * rating})
    return rows


def refine(parent_dir, out=None, weight: float = 0.5, edit_map=None, model_edits: bool = False,
           strategies=("clarify",), budget: dict | None = None, bases: int = 3, seed: int | None = None,
           parts=None, progress: bool = False, resume: bool = False) -> dict:
    """Continue a run's search with its ratings folded in; writes ``RUN-refine-N`` (or ``out``) and returns
    its summary with a ``refine`` section: edits, predictor, and how each prompt's rank moved and why."""
    from . import runner
    from . import strategy as registry
    from .search import Budget, Racing, Search

    if resume:
        store = RunStore.open(out)
        meta_path = store.dir / REFINE_FILE
        if not meta_path.exists():
            raise PromptSearchError(f"{out} is not a refine run (no {REFINE_FILE})")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        config = store.config
        store.repair()
        parent_dir, weight = meta["parent"], meta["weight"]
        ratings = [parse_rating(r, f"{meta_path}") for r in meta["ratings"]]
        edits = [Edit(e["instruction"], e["comments"], e["source"]) for e in meta["edits"]]
        parent = RunStore(parent_dir)
        task, fmodel, inner = parts or runner.load_parts(config)
        ratings = _with_scores(ratings, task)
    else:
        if not 0.0 <= weight <= 1.0:
            raise PromptSearchError(f"--rating-weight {weight} is outside 0-1")
        parent = RunStore.open(parent_dir)
        ratings, problems = Feedback(parent).load()
        for p in problems:
            log.warning("%s", p)
        if not ratings:
            raise PromptSearchError(f"{parent.dir / RATINGS} holds no ratings; rate first: promptsearch rate {parent.dir}")
        pconfig = parent.config
        task, fmodel, inner = parts or runner.load_parts(pconfig)
        blendable(task)
        ratings = _with_scores(ratings, task)
        mapping = load_edit_map(edit_map) if edit_map else None
        edits = comment_edits(ratings, mapping, propose=model_proposer(inner) if model_edits else None)
    blendable(task)
    model = RatingModel().fit(ratings)
    board = board_of(parent)[:10]
    estimates = parent_estimates(parent, task, board, model, ratings, weight)
    if not resume:
        ranked = sorted(estimates, key=lambda r: -r["blended"])
        options = {"refine": {"prompts": [{"prompt": r["prompt"], "label_words": r.get("label_words")} for r in ranked
                                          if not r.get("soft")],
                              "edits": [e.instruction for e in edits], "bases": bases, "blended": True}}
        for name in strategies:
            if name in pconfig.get("options", {}):
                options[name] = pconfig["options"][name]
        config = runner.make_config(**{k: v for k, v in pconfig.items() if k not in ("strategies", "options", "budget", "seed")},
                                    strategies=["refine", *strategies], options=options,
                                    seed=pconfig["seed"] if seed is None else seed, budget=budget or pconfig.get("budget"))
        out = Path(out) if out else next_refine_dir(parent.dir)
        store = RunStore.create(out, config)
        meta = {"parent": str(parent.dir), "weight": weight, "ratings": [r.to_json() for r in ratings],
                "edits": [e.to_json() for e in edits], "edit_map": str(edit_map) if edit_map else None,
                "model_edits": model_edits}
        store._write_json(REFINE_FILE, meta)
        for r in ratings:  # the run's ratings travel with it, so rate/refine can go on from here
            store.append(RATINGS, {**r.to_json(), "source": f"{r.source} via {parent.dir.name}"})
    # the parent's logged outputs: the rated prompts are re-scored without running the model again
    for rec in parent.read("candidates.jsonl"):
        cand = Candidate.from_json(rec["candidate"])
        results = {}
        from .scorer import ExampleResult

        for k, v in (rec.get("results") or {}).items():
            results[k] = ExampleResult.from_json(v)
        BlendedScorer(inner, model, weight, ratings).preload(task, cand, results)
    scorer = BlendedScorer(inner, model, weight, ratings)
    built = []
    for name in config["strategies"]:
        opts = config["options"].get(name) or {}
        built.append(registry.make(name, opts))
    search = Search(task, scorer, built, Budget(**config["budget"]), seed=config["seed"], store=store,
                    racing=Racing(**config["racing"]), batch_size=config["proposals_per_round"],
                    top_k=config["top_k"], progress=progress)
    if resume:
        search.resume_from_log()
    summary = search.run()
    summary["run_dir"] = str(store.dir)
    summary["model"] = fmodel.name
    summary["refine"] = explain(search, scorer, task, estimates, edits, model, ratings, weight, parent.dir)
    store.write_summary(summary)
    return summary


def explain(search, scorer: BlendedScorer, task, estimates, edits, model, ratings, weight, parent_dir) -> dict:
    """How the ranking moved: each prompt's old and new rank, raw dev metric, rating, blend, and why."""
    board = search.leaderboard()
    new_rank = {t.candidate.id: i + 1 for i, t in enumerate(board)}
    old = {r["id"]: r for r in estimates}
    shown = [t for t in board[:10]] + [search.trials[i] for i in old if i in search.trials and new_rank[i] > 10]
    moves = []
    for t in shown:
        c = t.candidate
        d = scorer.details(task, c, search.dev_order[: t.rung])
        o = old.get(c.id)
        why = []
        if o and o["rating_source"].startswith("rated"):
            why.append(f"rated {1 + 4 * o['rating']:.1f}/5 ({o['rating_source'][6:]})")
            if o["comments"]:
                why.append("comments: " + "; ".join(sorted(set(o["comments"]))[:3]))
        elif d["rated"] == 0:
            why.append(f"predicted {1 + 4 * d['rating']:.1f}/5")
        applied = [e.split(":", 1)[1] for e in c.edit.split("+") if e.startswith("feedback")]
        if applied:
            why.append("edit: " + " + ".join(applied))
        elif c.strategy not in ("refine", "seed") and c.edit:
            why.append(f"{c.strategy}: {c.edit}")
        moves.append({"id": c.id, "prompt": c.prompt, "strategy": c.strategy, "edit": c.edit,
                      "old_rank": o["rank"] if o else None, "new_rank": new_rank[c.id], "n": d["n"],
                      "dev": d["dev"], "rating": 1 + 4 * d["rating"], "rated": d["rated"], "blended": t.score,
                      "ratings_given": sum(1 for r in ratings if r.candidate == c.id),
                      "old_dev": (o.get("dev") or {}).get("score") if o else None,
                      "old_rating": 1 + 4 * o["rating"] if o else None, "why": why})
    best = board[0].candidate
    full = scorer.details(task, best, list(task.dev))
    test = scorer.details(task, best, list(task.test))
    old_best = min(estimates, key=lambda r: r["rank"])
    return {"parent": str(parent_dir), "weight": weight, "ratings": len(ratings), "predictor": model.describe(),
            "edits": [e.to_json() for e in edits], "moves": moves,
            "best": {"prompt": best.prompt, "dev": full["dev"], "test": test["dev"], "rating": 1 + 4 * full["rating"],
                     "blended": board[0].score},
            "parent_best": {"prompt": old_best["prompt"], "dev": (old_best.get("dev") or {}).get("score"),
                            "rating": 1 + 4 * old_best["rating"], "rating_source": old_best["rating_source"]}}
