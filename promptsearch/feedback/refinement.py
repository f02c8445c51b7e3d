"""``promptsearch refine``: continue a rated run's search with the ratings folded into the objective.

A refine run is an ordinary run of the one runner (:func:`promptsearch.runner.run`) whose config has a
``feedback`` section: the runner wraps the scorer in a :class:`BlendedScorer` built from ``refine.json``
(the ratings and edits as they were when the refine started), so budget, logging and ``--resume`` are the
runner's own. This module writes that run directory and explains, at the end, how the ranking moved.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..candidate import Candidate
from ..errors import PromptSearchError
from ..metrics import score_prediction
from ..store import RunStore
from .blend import REFINE_FILE, BlendedScorer, blendable, blended_scorer, read_meta, with_scores
from .edits import comment_edits, load_edit_map, model_proposer
from .predictor import RatingModel
from .ratings import RATINGS, Feedback, Rating
from .session import board_of, logged_results

log = logging.getLogger(__name__)

class NoRatingsError(PromptSearchError):
    """The run to refine holds no ratings (the CLI adds how to give some)."""


def next_refine_dir(parent: Path) -> Path:
    """``RUN-refine-N`` beside the run, N the first free number (a refine of a refine counts on)."""
    root = re.sub(r"-refine-\d+$", "", parent.name)
    n = 1
    while (parent.parent / f"{root}-refine-{n}").exists():
        n += 1
    return parent.parent / f"{root}-refine-{n}"


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
                                  [score_prediction(task, ex, v[1], cand.label_words) for ex, v in pairs]) if pairs else []
            rating, source = (sum(preds) / len(preds) if preds else model.mean_rating_), "predicted"
        dev = (row.get("dev") or {}).get("score", 0.0)
        rows.append({**row, "rating": rating, "rating_source": source, "comments": [r.comment for r in mine if r.comment],
                     "blended": (1 - weight) * dev + weight * rating})
    return rows


def refine(parent_dir, out=None, weight: float = 0.5, edit_map=None, model_edits: bool = False,
           strategies=("clarify",), budget: dict | None = None, bases: int = 3, seed: int | None = None,
           parts=None, progress: bool = False, resume: bool = False, named=()) -> dict:
    """Continue a run's search with its ratings folded in; writes ``RUN-refine-N`` (or ``out``) and returns
    its summary with a ``refine`` section: edits, predictor, and how each prompt's rank moved and why.
    With ``resume``, ``out`` is the interrupted refine run and the other arguments are ignored. ``named``: the
    server URLs given on the command line; the run's own server is connected to only when named there."""
    from .. import runner

    if resume:
        from ..files import present

        if not present(Path(out) / REFINE_FILE):
            RunStore.open(out)  # not a run at all: say so first
            raise PromptSearchError(f"{out} is not a refine run (no {REFINE_FILE})")
        store = RunStore.open(out)
        runner.read_config(store)
        read_meta(store)  # a damaged refine.json: one line before the lock is taken (its pid rewritten) or a model loaded
        return _run_and_explain(store, parts, progress, named)
    if not 0.0 <= weight <= 1.0:
        raise PromptSearchError(f"rating weight {weight} is outside 0-1")
    parent = RunStore.open(parent_dir)
    ratings, problems = Feedback(parent).load()
    for p in problems:
        log.warning("%s", p)
    if not ratings:
        raise NoRatingsError(f"{parent.dir / RATINGS} holds no ratings")
    pconfig = runner.read_config(parent)
    parts = parts or runner.load_parts(pconfig, named=list(named))
    task, _, inner = parts
    task = runner.prepare_task(task, pconfig)  # the rows the parent run scored on (selection.py)
    blendable(task)
    ratings = with_scores(ratings, task)
    mapping = load_edit_map(edit_map) if edit_map else None
    edits = comment_edits(ratings, mapping, propose=model_proposer(inner) if model_edits else None)
    estimates = parent_estimates(parent, task, board_of(parent)[:10], RatingModel().fit(ratings), ratings, weight)
    ranked = sorted(estimates, key=lambda r: -r["blended"])
    options = {"refine": {"prompts": [{"prompt": r["prompt"], "label_words": r.get("label_words")} for r in ranked
                                      if not r.get("soft")],
                          "edits": [e.instruction for e in edits], "bases": bases, "blended": True}}
    for name in strategies:
        if name in pconfig.get("options", {}):
            options[name] = pconfig["options"][name]
    kept = {k: v for k, v in pconfig.items() if k not in ("strategies", "options", "budget", "seed", "feedback")}
    config = runner.make_config(**kept, strategies=["refine", *strategies], options=options,
                                seed=pconfig["seed"] if seed is None else seed, budget=budget or pconfig.get("budget"),
                                feedback={"parent": str(parent.dir), "weight": weight})
    runner.make_strategies(config)  # bad strategy names or options fail before anything is written
    store = RunStore.create(Path(out) if out else next_refine_dir(parent.dir), config)
    with store.locked():
        # The run's ratings travel with it, so rate/refine can go on from here. Written whole and before
        # refine.json, whose presence marks a complete set-up: a kill in between leaves a run that
        # `refine --resume` refuses and a new `refine --out` rewrites, never half the ratings.
        store.write_jsonl(RATINGS, [{**r.to_json(), "source": f"{r.source} via {parent.dir.name}"} for r in ratings])
        store.write_json(REFINE_FILE, {"parent": str(parent.dir), "weight": weight, "ratings": [r.to_json() for r in ratings],
                                       "edits": [e.to_json() for e in edits], "edit_map": str(edit_map) if edit_map else None,
                                       "model_edits": model_edits})
        return _run_and_explain(store, parts, progress, named)


def _run_and_explain(store: RunStore, parts, progress: bool, named=()) -> dict:
    """Run (or resume) the refine run with the one runner, then add how the ranking moved."""
    from .. import runner

    with store.locked():  # held from the run through the summary with the explanation
        task, _, inner = parts = parts or runner.load_parts(runner.read_config(store), named=list(named))
        summary = runner.run(None, store.dir, resume=True, progress=progress, parts=parts)
        task = runner.prepare_task(task, runner.read_config(store))  # as the run saw it (selection.py)
        summary["refine"] = explanation(store, task, blended_scorer(store, task, inner))
        store.write_summary(summary)
        return summary


def explanation(store: RunStore, task, scorer: BlendedScorer) -> dict:
    """The ``refine`` section of a finished refine run's summary, from its log (see :func:`explain`)."""
    from ..search import dev_order
    from ..store import best_records

    meta = read_meta(store)
    ratings = with_scores(meta["ratings"], task)
    model = RatingModel().fit(ratings)
    parent = RunStore(meta["parent"])
    estimates = parent_estimates(parent, task, board_of(parent)[:10], model, ratings, meta["weight"])
    board = [(Candidate.from_json(r["candidate"]), r["size"], r["score"]["score"])
             for r in best_records(store.read("candidates.jsonl"))]
    return explain(board, dev_order(task, store.config["seed"]), scorer, task, estimates, meta["edits"], model,
                   ratings, meta["weight"], parent.dir)


def tried(board, instruction: str) -> int:
    """How many scored candidates carry this comment edit: an announced edit shows whether it was tried."""
    return sum(any(part.split(":", 1)[-1] == instruction for part in c.edit.split("+") if part.startswith("feedback"))
               for c, _, _ in board)


def explain(board, order, scorer: BlendedScorer, task, estimates, edits, model, ratings, weight, parent_dir) -> dict:
    """How the ranking moved: each prompt's old and new rank, raw dev metric, rating, blend, and why.
    ``board``: (candidate, dev examples scored, blended score), ranked; ``order``: the racing dev order."""
    new_rank = {c.id: i + 1 for i, (c, _, _) in enumerate(board)}
    old = {r["id"]: r for r in estimates}
    shown = board[:10] + [row for row in board[10:] if row[0].id in old]
    moves = []
    from ..selection import kept

    for c, rung, blended in shown:
        rows = order[:rung]
        d = scorer.details(task, c, [rows[i] for i in kept(task, c, rows)])  # as the search scored it (cross-fitted)
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
                      "dev": d["dev"], "rating": 1 + 4 * d["rating"], "rated": d["rated"], "blended": blended,
                      "ratings_given": sum(1 for r in ratings if r.candidate == c.id),
                      "old_dev": (o.get("dev") or {}).get("score") if o else None,
                      "old_rating": 1 + 4 * o["rating"] if o else None, "why": why})
    best = board[0][0]
    full = scorer.details(task, best, list(task.dev))
    test = scorer.details(task, best, list(task.test))
    old_best = min(estimates, key=lambda r: r["rank"])
    return {"parent": str(parent_dir), "weight": weight, "ratings": len(ratings), "predictor": model.describe(),
            "edits": [{**e.to_json(), "tried": tried(board, e.instruction)} for e in edits], "moves": moves,
            "best": {"prompt": best.prompt, "dev": full["dev"], "test": test["dev"], "rating": 1 + 4 * full["rating"],
                     "blended": board[0][2]},
            "parent_best": {"prompt": old_best["prompt"], "dev": (old_best.get("dev") or {}).get("score"),
                            "rating": 1 + 4 * old_best["rating"], "rating_source": old_best["rating_source"]}}
