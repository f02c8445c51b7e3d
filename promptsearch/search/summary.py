"""The run's summary: one builder for single- and multi-task runs alike, so both carry the budget, racing,
schedule and stages; the objective (objective.py) adds what its kind of run reports."""

from __future__ import annotations

import logging
from dataclasses import asdict

from ..candidate import Candidate

log = logging.getLogger(__name__)


def describe(search, c: Candidate, test: bool = False) -> dict:
    """A candidate with its score on the dev rows it reached (all of dev when not raced), and on test."""
    size = search.trials[c.id].rung if c.id in search.trials else len(search.task.dev)
    examples = search.dev_order[:size]
    out = c.to_json()
    out["dev"] = search.objective(c, search.scorer.evaluate(search.task, c, examples), examples).to_json()
    if test:
        out["test"] = search.objective.on_test(c).to_json()
        search.tokens_used += search._tokens(c, search.task.test)  # sent too: counted against --max-tokens
    return out


def build(search, board: list, **parts) -> dict:
    """What every run's summary holds: the task, ``parts`` (best, seed, per-task rows...), the leaderboard,
    the budget and what was used of it, racing, the schedule and its stages."""
    return {
        "task": search.task.name, "metric": search.task.metric, **parts,
        "leaderboard": [dict(rank=i + 1, **search.describe(t.candidate)) for i, t in enumerate(board[:10])],
        "budget": asdict(search.budget),
        "budget_used": {"candidates": len(search.trials), "evals": search.evals_used, "charged": search.charged,
                        "seconds": round(search.seconds, 2), "tokens": search.tokens_used},
        "racing": asdict(search.racing), "schedule": search.schedule, "stages": search.handovers,
    }


def finish(search, board: list, seed: Candidate, best: Candidate | None = None) -> dict:
    """The summary after the final check (``board``: the leaderboard with the top-k on all of dev; ``best``: the
    winner when it is not the board's first, i.e. the first's calibrated twin)."""
    objective, best = search.objective, best or board[0].candidate
    summary = build(search, board, **objective.report(best, seed))
    key = objective.headline
    summary["improvement"] = {s: summary["best"][s][key] - summary["seed"][s][key] for s in ("dev", "test")}
    budget = search.budget
    for used, limit, what in ((search.tokens_used, budget.max_tokens, "tokens"),
                              (search.evals_used, budget.max_evals, "example-evaluations")):
        if limit is not None and used > limit:  # the seed on all of dev and best and seed on test always run
            # tokens may be billed: a warning. Evaluations past a small limit are expected (the final checks always
            # run, and the stop line says so); a warning there read as an error in the middle of the progress bar.
            (log.warning if what == "tokens" else log.info)("the run used %d %s, over its limit of %d: the seed prompt on all of dev and the final check "
                        "on test always run; raise the limit or use a smaller dev/test split", used, what, limit)
    summary["paired_test"] = objective.paired_test(best, seed)
    if search.final_notes:
        summary["final_notes"] = list(search.final_notes)
    return summary
