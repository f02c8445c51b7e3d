"""What a search maximises, apart from how it searches (Optuna's ask -> objective -> tell).

The loop (loop.py) proposes, races and charges; the Objective it is given says everything a kind of run
varies: the dev rows in racing order and the rungs, the start candidate, what runs before the search
(baselines) and what a resumed run reads back for it, which proposals are admitted, a candidate's score on
some rows (``__call__``; racing ranks by it), what the final check adds, and the summary's own fields.
``SingleTask`` is the default; a universal prompt's ``MultiTaskObjective`` lives in multitask.py.
"""

from __future__ import annotations

import logging

from ..candidate import Candidate
from ..metrics import summarize
from ..scoring.scorer import evaluate_fitting
from ..selection import Shown, kept
from ..stats import outcomes, paired_test
from .racing import dev_order

log = logging.getLogger(__name__)


class SingleTask:
    """One task: racing on a seeded permutation of its dev, ranked by its metric; summary with a paired test
    of the best against the seed on test."""

    headline = "score"  # the field of a score the summary's ``improvement`` subtracts

    def bind(self, search) -> None:
        """Called once by the Search it is given to (the objective reads the task, scorer and store there)."""
        self.search = search

    # ---- set-up -----------------------------------------------------------------------------------
    def wrap_scorer(self, scorer):
        return scorer

    def dev_order(self, task, seed: int) -> list:
        return dev_order(task, seed)

    def rungs(self, racing, n_dev: int) -> list[int]:
        return racing.rungs(n_dev)

    def start_candidate(self) -> Candidate:
        """The candidate every run races first and reports as its seed."""
        return Candidate(self.search.task.seed_prompt)

    def before_run(self) -> None:
        """Work before the strategies start (nothing for one task)."""

    def resume(self, store) -> None:
        """Read back from the run directory what ``before_run`` logged (nothing for one task)."""

    def admit(self, candidates: list[Candidate]) -> list[Candidate]:
        """The proposals this kind of run can score."""
        return candidates

    # ---- scores -----------------------------------------------------------------------------------
    def __call__(self, c: Candidate, results, examples):
        """A candidate's score on these rows (anything with ``score``, ``ci_low`` and ``to_json``), leaving out
        the train rows it shows (cross-fitting, selection.py: a row is never scored with its own answer shown)."""
        task = self.search.task
        if getattr(self, "_shown", None) is None or self._shown.task is not task:
            self._shown = Shown(task)  # its caches (train keys, balanced draws) live as long as the task
        rows = kept(task, c, examples, self._shown)
        if len(rows) < len(examples):
            results, examples = [results[i] for i in rows], [examples[i] for i in rows]
        return summarize(task.metric, results, examples, c.label_words or task.label_words)

    def on_test(self, c: Candidate):
        """The score on the test rows (reported, never used to choose)."""
        task = self.search.task
        return self(c, self.reported(c, task.test, "test"), task.test)

    def reported(self, c: Candidate, rows, split: str) -> list:
        """A candidate's results on rows it is reported on (test, held-out), where a row too long for the model's
        context with this prompt is scored as wrong and the summary says so (``final_notes``): it was chosen on
        dev rows that fit, and one long input must not lose the finished search."""
        search = self.search
        results, too_long = evaluate_fitting(search.scorer, search.task, c, rows)
        if too_long:
            which = {"seed": "the seed prompt", "final": "the winner"}.get(c.strategy, f"prompt {c.id} ({c.strategy})")
            note = f"{len(too_long)} of {len(rows)} {split} rows do not fit the model's context with {which}: scored as wrong"
            if note not in search.final_notes:
                log.warning(note)
                search.final_notes.append(note)
        return results

    def final_extra_evals(self) -> int:
        """Evaluations the final check spends beyond the top-k on dev and best and seed on test: best and seed
        on the held-out rows (selection.py)."""
        return 2 * len(self.search.task.holdout)

    # ---- summary ----------------------------------------------------------------------------------
    def report(self, best: Candidate, seed: Candidate) -> dict:
        """The summary's parts that name candidates (in the order they are computed and written), and the
        estimate of the winner: its score on the held-out rows when the task has them (selection.py)."""
        out = {"best": self.search.describe(best, test=True), "seed": self.search.describe(seed, test=True)}
        holdout = self.search.task.holdout
        if holdout:
            for name, c in (("best", best), ("seed", seed)):
                out[name]["holdout"] = self.on_rows(c, holdout).to_json()
            # the winner against the seed on rows no choice saw: whether the search found more than luck, before
            # anyone looks at test
            out["paired_holdout"] = paired_test(self.search.task.metric, self.outcomes_on(seed, holdout),
                                                self.outcomes_on(best, holdout)).to_json()
            out["estimate"] = {"which": "holdout", **out["best"]["holdout"],
                               "note": f"the winner on {len(holdout)} held-out labelled rows no choice ever saw; its "
                                       "dev score is biased upward by the choice among the candidates"}
        else:
            out["estimate"] = {"which": "dev", **out["best"]["dev"],
                               "note": "the winner's dev score, on the rows that chose it (biased upward by the choice; "
                                       "--selection holdout keeps rows back for an unbiased estimate)"}
        return out

    def on_rows(self, c: Candidate, rows):
        """The score on rows outside the search (held-out), counted like the final check's."""
        search = self.search
        search.tokens_used += search._tokens(c, rows)
        return self(c, self.reported(c, rows, "held-out"), rows)

    def outcomes_on(self, c: Candidate, rows) -> dict:
        """A candidate's per-example results on ``rows`` (cached where on_rows scored them: nothing is sent again)."""
        task = self.search.task
        return outcomes(self.reported(c, rows, "held-out"), rows, c.label_words or task.label_words)

    def paired_test(self, best: Candidate, seed: Candidate) -> dict | None:
        task = self.search.task
        return paired_test(task.metric, self.test_outcomes(seed), self.test_outcomes(best)).to_json()

    def test_outcomes(self, c: Candidate) -> dict:
        """A candidate's per-example test results, logged to ``test.jsonl`` so an export can carry them
        (a paired comparison needs them, not just the mean)."""
        search, task = self.search, self.search.task
        results = self.reported(c, task.test, "test")
        if search.store is not None:
            search.store.append("test.jsonl", {"candidate": c.to_json(), "keys": [ex.key for ex in task.test],
                                               "results": [r.to_json() for r in results]})
        return outcomes(results, task.test, c.label_words or task.label_words)
