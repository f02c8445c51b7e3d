"""A rating session: which (prompt, input) pairs to show a rater, their outputs (from the run log where
possible, else the model), and completing hand-written rating files. The CLI only prompts and prints."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from pathlib import Path

from ..candidate import Candidate
from ..errors import PromptSearchError
from ..metrics import score_prediction
from ..store import RunStore
from ..template import validate
from .ratings import Feedback, Rating, read_ratings


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
    summary = store.checked_summary()
    board = (summary or {}).get("leaderboard") or store.leaderboard()
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
            r = replace(r, score=score_prediction(task, ex, r.output, cand.label_words))
        if not r.reference and ex is not None:
            r = replace(r, reference=Item(0, cand, None, ex).reference(task))
        out.append(r)
    if missing:
        _, _, scorer = parts_loader()
        from ..task import Example

        for i, cand, ex in missing:
            ex = ex or Example(out[i].input, "", id="rated")
            res = scorer.evaluate(task, cand, [ex])[0]
            out[i] = replace(out[i], output=res.prediction, score=res.score if ex.id != "rated" else None)
    return out


class RatingSession:
    """One sitting of ``promptsearch rate``: the pairs still to rate (or all with ``again``), their outputs,
    and where each rating goes. Every rating is appended (fsynced) the moment it is given, so quitting at
    any point loses nothing and the next session continues with the pairs not yet rated."""

    def __init__(self, run_dir, top: int = 3, n_inputs: int = 3, seed: int = 0, again: bool = False, named=()):
        from ..runner import load_task_of, read_config

        self.store = RunStore.open(run_dir)
        self.config = read_config(self.store)
        self.feedback = Feedback(self.store)
        self.existing, self.problems = self.feedback.load()
        self.task = load_task_of(self.config)
        self.top, self.n_inputs, self.seed, self.again = top, n_inputs, seed, again
        self._parts = None
        self.named = list(named)  # server URLs given on the command line (runner.require_named)

    def parts(self):
        """Task, model and scorer of the run, loaded once on first need (most outputs come from the log)."""
        if self._parts is None:
            from ..runner import load_parts

            self._parts = load_parts(self.config, named=self.named)
        return self._parts

    def items(self) -> list[Item]:
        rated = None if self.again else {(r.candidate, r.example or r.input) for r in self.existing}
        return rating_items(self.store, self.task, top=self.top, n_inputs=self.n_inputs, seed=self.seed, rated=rated)

    def fill(self, items: list[Item]) -> None:
        """Run the model for the outputs the run did not log (only when some are missing)."""
        if any(it.output is None for it in items):
            fill_outputs(items, self.task, self.parts()[2])

    def record(self, item: Item, value: int, comment: str = "") -> Rating:
        rating = item.rating(self.task, value, comment)
        self.feedback.add(rating)
        return rating

    def import_file(self, path) -> list[Rating]:
        """Add every rating of a hand-filled JSONL file, or none: a bad line stops before anything is added."""
        given, _ = read_ratings(Path(path), strict=True)
        if not given:
            raise PromptSearchError(f"{path}: no ratings in the file")
        records = complete_records(given, self.store, self.task, self.parts)
        for r in records:
            self.feedback.add(r)
        return records

    def export(self, items: list[Item], path) -> None:
        """The pairs to rate as JSONL with ``rating`` null, to fill in and hand back with ``import_file``."""
        try:
            with open(path, "w", encoding="utf-8") as f:
                for it in items:
                    rec = it.rating(self.task, 1, source="export").to_json()
                    rec.update(rating=None, time=None)
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        except OSError as e:
            raise PromptSearchError(f"cannot write {path}: {e.strerror or e}") from None
