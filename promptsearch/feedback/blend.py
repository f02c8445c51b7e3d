"""The blended objective: per-example scores become ``(1 - w) * metric + w * rating``."""

from __future__ import annotations

from dataclasses import replace

from ..candidate import Candidate
from ..errors import PromptSearchError
from ..metrics import score_prediction
from ..scoring.protocol import WrappedScorer
from ..store import RunStore
from .edits import Edit
from .predictor import RatingModel
from .ratings import Rating, parse_rating

REFINE_FILE = "refine.json"  # a refine run's ratings and edits, as they were when it started


class BlendedScorer(WrappedScorer):
    """A scorer whose per-example score is ``(1 - weight) * metric + weight * rating``; everything else
    (model, generation, caches, soft prompts) is the wrapped scorer's. The rating is the person's where
    this candidate's output on this example was rated, else the :class:`RatingModel`'s prediction."""

    blends_ratings = True

    def __init__(self, scorer, model: RatingModel, weight: float, ratings: list[Rating]):
        if not 0.0 <= weight <= 1.0:
            raise PromptSearchError(f"rating weight {weight} is outside 0-1")
        super().__init__(scorer)
        self.scorer, self.rating_model, self.weight = scorer, model, weight
        self.rated: dict[tuple[str, str], list[float]] = {}
        for r in ratings:
            self.rated.setdefault((r.candidate, r.example or r.input), []).append(r.value)

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
                                              [score_prediction(task, examples[i], results[i].prediction, candidate.label_words) for i in todo])
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
        by_key = {ex.key: ex for ex in task.dev + task.test + task.train}
        raw = {}
        for key, r in results.items():
            ex = by_key.get(key)
            if ex is not None:
                raw[key] = replace(r, score=score_prediction(task, ex, r.prediction, candidate.label_words))
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


# ---- a refine run's scorer -------------------------------------------------------------------------
def with_scores(ratings: list[Rating], task) -> list[Rating]:
    """Ratings with the metric share of their output filled in where the example is known."""
    dev = {ex.key: ex for ex in task.dev + task.train + task.test}
    out = []
    for r in ratings:
        if r.score is None and r.example in dev:
            r = replace(r, score=score_prediction(task, dev[r.example], r.output, r.label_words))
        out.append(r)
    return out


def read_meta(store: RunStore) -> dict:
    """refine.json, checked: a damaged or hand-edited file is one line naming the field, before anything runs."""
    meta = store.read_json(REFINE_FILE)
    where = store.dir / REFINE_FILE
    if not isinstance(meta.get("parent"), str) or not meta["parent"]:
        raise PromptSearchError(f"{where}: field 'parent' must name the rated run's folder")
    weight = meta.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
        raise PromptSearchError(f"{where}: field 'weight' must be a number in 0-1")
    for key in ("ratings", "edits"):
        if not isinstance(meta.get(key), list):
            raise PromptSearchError(f"{where}: field {key!r} must be a JSON list")
    for i, e in enumerate(meta["edits"], 1):
        if not (isinstance(e, dict) and isinstance(e.get("instruction"), str) and isinstance(e.get("source", ""), str)
                and isinstance(e.get("comments", []), list) and all(isinstance(c, str) for c in e.get("comments", []))):
            raise PromptSearchError(f"{where}: field 'edits' entry {i} must be an object with an 'instruction' string, "
                                    "'comments' strings and a 'source'")
    return {**meta, "ratings": [parse_rating(r, f"{where}: field 'ratings' entry {i}") for i, r in enumerate(meta["ratings"], 1)],
            "edits": [Edit(e["instruction"], list(e.get("comments", [])), e.get("source", "built-in")) for e in meta["edits"]]}


def blended_scorer(store: RunStore, task, scorer) -> BlendedScorer:
    """The runner's scorer wrapper for a run whose config has a ``feedback`` section (a refine run): the ratings of ``refine.json`` blended into every
    per-example score, with the parent run's logged outputs preloaded (rated prompts are not run again)."""
    blendable(task)
    meta = read_meta(store)
    ratings = with_scores(meta["ratings"], task)
    blended = BlendedScorer(scorer, RatingModel().fit(ratings), meta["weight"], ratings)
    from ..scoring import ExampleResult

    for rec in RunStore(meta["parent"]).read("candidates.jsonl"):
        results = {k: ExampleResult.from_json(v) for k, v in (rec.get("results") or {}).items()}
        blended.preload(task, Candidate.from_json(rec["candidate"]), results)
    return blended
