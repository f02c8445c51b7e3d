"""The search loop: strategies propose, racing evaluation scores (racing.py), the budget (budget.py) stops it,
the leaderboard keeps the best.

Racing (successive halving, asynchronous as in ASHA): a new candidate is scored on the first
``min_examples`` of a seeded permutation of dev; it moves to the next, ``eta`` times larger prefix
only while it ranks in the top 1/eta of all candidates scored at that size. Prefixes are nested, so
a promotion scores only the new examples. The final top-k are scored on all of dev, the winner
(and the seed prompt) on test once: test never steers the search.

What the run maximises -- rows and rungs, rung score, baselines, admitted candidates, the summary's own
fields -- is the Objective it is given (objective.py: one task by default, multitask.py for several). Who
proposes next is the schedule's (schedules.py: stages; bandit.py: turns); the summary is built in summary.py.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import replace

from .. import template
from ..candidate import Candidate, Trial
from ..errors import TooLongError
from ..plain import is_plain
from ..results import ExampleResult
from ..scoring import calibration, ensemble
from ..store import logged_row_seconds
from ..strategy import SearchContext, Strategy
from . import bandit, schedules, stopping
from .budget import Budget
from .objective import SingleTask
from .racing import Racing
from .summary import build, describe, finish

log = logging.getLogger(__name__)
TOO_LONG_NOTE = "its bias rows, with its demonstrations, do not fit the model's context"
SCHEDULES = ("even", "adaptive", "bandit")
# The adaptive schedule: a stage that has not raised the run's best over its last STALL_SHARE of the budget's
# example-evaluations (and at least STALL_MIN_CANDIDATES first rungs) hands over; every later stage keeps
# RESERVE_SHARE of what is left for itself.
STALL_SHARE = 0.25
STALL_MIN_CANDIDATES = 8  # one round of proposals: a stage is not judged on fewer new prompts
RESERVE_SHARE = 0.15
STALL_GAIN_EXAMPLES = 2  # a gain is the best's metric up by this many examples' worth of its rung, not a one-row flip
STALL_EVALS_WITHOUT_LIMIT = 25  # first-rung candidates, when only time or candidates are limited
CHUNK_BATCHES = 4  # a rung is scored in chunks of this many scorer batches, checking the clock between them


class OutOfTime(Exception):
    """The time budget ran out in the middle of a rung (internal: the rung is dropped, not logged)."""


class Search:
    """Drives strategies in order (each hands its best to the next) under one budget.

    ``schedule`` says how the budget is shared: ``even`` gives each stage an even share of what is left;
    ``adaptive`` lets a stage spend all but a reserve for the stages after it, and ends it once it stalls
    (no gain of the run's best over its last ``STALL_SHARE`` of the budget), handing what it did not
    spend to the next (schedules.py); ``bandit`` lets the strategies take turns, the one that leads the run
    going again (bandit.py). All depend only on scores and counts, so a resumed run replays them exactly.

    ``objective`` (objective.py) is what the run maximises; ``SingleTask`` unless given.
    ``ask``/``tell`` are public so a user can drive the loop by hand; ``run`` does it all."""

    def __init__(self, task, scorer, strategies: list[Strategy], budget: Budget, seed: int = 0,
                 store=None, racing: Racing | None = None, batch_size: int = 8, top_k: int = 3,
                 progress: bool = False, schedule: str = "even", objective=None, final_calibration: str | None = None,
                 final_ensemble: int = 1):
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")
        self.schedule = schedule
        self._stall: list | None = None  # adaptive, in a stage that may hand over: [best key, evals at last gain]
        self.handovers: list[dict] = []  # per stage: its strategy, evals spent, and whether it stalled
        self.objective = objective or SingleTask()
        self.objective.bind(self)
        self.task, self.strategies, self.budget = task, strategies, budget
        self.scorer = self.objective.wrap_scorer(scorer)
        self.seed, self.store, self.batch_size, self.top_k = seed, store, batch_size, top_k
        # the winner's label scores calibrated after the final check (classification; calibration.twin), or None
        self.final_calibration = final_calibration
        self.final_ensemble = final_ensemble  # with it: the final check's top prompts combined, each calibrated
        self.racing = racing or Racing()
        self.dev_order = self.objective.dev_order(task, seed)
        self.rungs = self.objective.rungs(self.racing, len(task.dev))
        self.trials: dict[str, Trial] = {}
        self.scored: dict[str, int] = {}  # candidate id -> dev prefix scored
        self.per_example: dict[str, int] = {}  # candidate id -> evaluations an example costs (ensembles: k)
        # candidate id -> [seconds, rows] its scoring took: what a row of it costs here (nearest demonstrations
        # make a prompt many times longer than its text), for what the run can still afford under a time limit
        self.row_seconds: dict[str, list[float]] = {}
        self._replayed_seconds: dict[tuple[str, int], tuple[float, int]] = {}  # (id, size) -> the log's [seconds, rows]
        self.charged = 0
        self.tokens_used = 0
        self._once_paid: set[tuple] = set()  # keys of the options' once-only rows charged (scorer.once_costs)
        self.elapsed_before = 0.0
        self.started = time.monotonic()
        # the limits the current stage (or turn) runs under; the whole budget, also for a user driving ask/tell
        self.limits = self.stage_limits(1)
        self._bar = None
        self._progress = progress
        self.rejected: set[str] = set()  # candidates dropped as too long for the model
        self._logged: set[tuple[str, int]] = set()  # (candidate id, size) already in the run log
        self._partial = 0  # examples of the rung being scored that are done (for the speed estimate)
        self.final_notes: list[str] = []  # after-search steps a limit left out, rows too long to score: for the summary to say
        self.arms_stop: str | None = None  # the limit the bandit's arms stopped at (stopping.stop_reason), if any

    # ---- accounting ---------------------------------------------------------------------------
    @property
    def evals_used(self) -> int:
        return sum(n * self.per_example.get(cid, 1) for cid, n in self.scored.items()) + self.charged

    @property
    def seconds(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def charge(self, n: int) -> None:
        self.charged += int(n)
        self._tick(n)

    def exhausted(self) -> bool:
        max_c, max_e, max_s, max_t = self.limits
        return (len(self.trials) >= max_c or self.evals_used >= max_e or self.out_of_time(max_s)
                or self.out_of_tokens(max_t) or self.stalled())

    def out_of_tokens(self, max_t: float) -> bool:
        """Past the token limit, counting what the final check (top-k on all of dev, best and seed on test) will
        still send at the tokens per evaluation measured so far: the limit holds for the whole run, as time does."""
        if max_t == math.inf:
            return False
        scored = sum(self.scored.values())
        per_eval = self.tokens_used / scored if scored else 0.0
        return self.tokens_used + self.final_check_evals() * per_eval >= max_t

    def stall_evals(self) -> float:
        """Example-evaluations without a gain after which an adaptive stage hands over."""
        if self.budget.max_evals is not None:
            return max(STALL_SHARE * self.budget.max_evals, STALL_MIN_CANDIDATES * self.rungs[0])
        return STALL_EVALS_WITHOUT_LIMIT * self.rungs[0]

    def stalled(self) -> bool:
        """Adaptive schedule: the stage has not raised the run's best over its last stall_evals() evaluations.
        A gain is the best on a larger dev prefix, or its metric up by STALL_GAIN_EXAMPLES rows' worth on the
        same one (small gains add up against the last counted best): on 48 dev rows a one-row flip is noise."""
        if self._stall is None:
            return False
        board = self.leaderboard()
        key = board[0].sort_key()[:2] if board else None
        old = self._stall[0]
        if key is not None and (old is None or key[0] > old[0]
                                or (key[0] == old[0] and key[1] >= old[1] + STALL_GAIN_EXAMPLES / key[0] - 1e-9)):
            self._stall[:] = [key, self.evals_used]
        return self.evals_used - self._stall[1] >= self.stall_evals()

    def out_of_time(self, max_s: float) -> bool:
        """Past the time limit, counting what the final check (top-k on all of dev, best and seed on
        test) will still cost at its prompts' measured speeds, so that the whole run ends near the limit."""
        if max_s == math.inf:
            return False
        return self.seconds + self.final_check_seconds() >= max_s

    def seconds_per_eval(self) -> float:
        scored = sum(self.scored.values()) + self._partial
        return self.seconds / scored if scored else 0.0

    def final_check_evals(self) -> int:
        n_dev, n_test = len(self.task.dev), len(self.task.test)
        board = self.leaderboard()[: self.top_k]
        found = self._twin(board[0].candidate) if board else None  # the winner's calibrated twin (below)
        # what a row of the best costs: one per member of the winner. The final ensemble (below) is not reserved:
        # under a time or token limit it is built only where it still fits, so that an optional last step does
        # not end the search early (with nearest demonstrations among the top 3 it cost most of a slow host's time)
        k = self.scorer.cost(board[0].candidate) if board else 1
        calibrated = n_dev * k + calibration.extra_rows(found) * max(1, k // self.scorer.cost(found)) if found else 0
        return (sum((n_dev - t.rung) * self.scorer.cost(t.candidate) for t in board) + (1 + k) * n_test
                + self.objective.final_extra_evals() + calibrated)

    def final_check_seconds(self) -> float:
        """What the final checks will still take, at each prompt's own measured seconds per row (the run's mean per
        evaluation for one not scored yet): the top-k's rows left on dev, the bias rows of the winner's calibrated
        twin (its dev rows re-read the plain twin's cached scores), the held-out rows and the test rows of the
        winner, the seed and the text alone. A mean over every evaluation so far misjudged it where the top prompts
        show nearest demonstrations: each row of those is many inputs long (docs/decisions.md, 2026-12-05)."""
        board = self.leaderboard()[: self.top_k]
        if not board:
            return self.final_check_evals() * self.seconds_per_eval()
        best, mean = board[0].candidate, self.seconds_per_eval()
        per_row = self.row_cost_seconds(best)
        found = self._twin(best)
        bias = self._bias_seconds(best, found) if found else 0.0
        dev = sum((len(self.task.dev) - t.rung) * self.row_cost_seconds(t.candidate) for t in board)
        held = self.objective.final_extra_evals() / 2 * (per_row + mean)
        alone = mean if found is not None or not is_plain(best) else 0.0  # a winner that is not its text alone
        return dev + bias + held + (per_row + mean + alone) * len(self.task.test)

    def stage_limits(self, stages_left: int, adaptive: bool = False) -> tuple[float, float, float, float]:
        b = self.budget
        # even: 1/stages_left of what is left; adaptive: all of it but a reserve for each later stage
        part = (1 - RESERVE_SHARE * (stages_left - 1)) if adaptive else 1 / stages_left
        part = max(part, 1 / stages_left)
        share = lambda limit, used: math.inf if limit is None else used + (limit - used) * part
        return (share(b.max_candidates, len(self.trials)), share(b.max_evals, self.evals_used),
                share(b.max_seconds, self.seconds), share(b.max_tokens, self.tokens_used))

    _stage_limits = stage_limits  # the name tests and older callers use

    def watch_stalls(self, on: bool) -> None:
        """Adaptive schedule: from now on (``on``) the stage ends once the run's best stalls (``stalled``)."""
        self._stall = [None, self.evals_used] if on else None

    # ---- ask / tell ---------------------------------------------------------------------------
    def leaderboard(self) -> list[Trial]:
        return sorted(self.trials.values(), key=lambda t: t.sort_key(), reverse=True)

    def ask(self, strategy: Strategy, context: SearchContext, n: int) -> list[Candidate] | None:
        """Up to n new candidates from the strategy (known ones and those the objective does not admit
        dropped); None when it is done."""
        proposals = strategy.propose(context, n)
        if not proposals:
            return None
        fresh, seen = [], set()
        for c in proposals:
            if c.id not in self.trials and c.id not in self.rejected and c.id not in seen:
                seen.add(c.id)
                fresh.append(c)
        return self.objective.admit(fresh)

    def tell(self, candidates: list[Candidate]) -> list[Trial]:
        """Race each candidate up the rungs; returns their trials (best first)."""
        self._prefetch_first_rung(candidates)
        out = []
        for c in candidates:
            if self.exhausted():
                break
            if c.id in self.trials:
                continue
            trial = self.trials[c.id] = Trial(c, order=len(self.trials))
            try:
                for size in self.rungs:
                    self._score(trial, size)
                    if size == self.rungs[-1] or not self._promote(trial, size) or self.exhausted():
                        break
            except OutOfTime:
                if not trial.rungs:  # not scored on any rung: as if never proposed
                    del self.trials[c.id]
                break
            except TooLongError as e:
                self._drop_too_long(c, e)
                continue
            out.append(trial)
        return sorted(out, key=lambda t: t.sort_key(), reverse=True)

    def _prefetch_first_rung(self, candidates: list[Candidate]) -> None:
        """With a scorer that fans out (executors.ChunkedScorer), score the first rung of every new
        candidate the budget still allows in one go; the racing below then reads them from the cache,
        so its decisions and the log are exactly those of scoring one candidate at a time."""
        prefetch = getattr(self.scorer, "prefetch", None)
        if prefetch is None or self.exhausted():
            return
        fresh = [c for c in candidates if c.id not in self.trials and c.id not in self.rejected]
        first = self.rungs[0]
        room, evals_left = self.limits[0] - len(self.trials), self.limits[1] - self.evals_used
        for i, c in enumerate(fresh):  # in order, while the budget allows each one's first rung
            evals_left -= first * self.scorer.cost(c)
            if i >= room or evals_left < 0:
                fresh = fresh[:i]
                break
        try:
            prefetch(self.task, [(c, self.dev_order[:first]) for c in fresh])
        except TooLongError:
            pass  # scored one at a time below, where a too-long candidate is dropped as usual

    def _promote(self, trial: Trial, size: int) -> bool:
        peers = sorted((t.rungs[size] + (-t.order,) for t in self.trials.values() if size in t.rungs), reverse=True)
        rank = peers.index(trial.rungs[size] + (-trial.order,))
        return rank < math.ceil(len(peers) / self.racing.eta)

    def _score(self, trial: Trial, size: int) -> None:
        c, done = trial.candidate, self.scored.get(trial.candidate.id, 0)
        examples = self.dev_order[:size]
        # With a time limit, score a long rung in chunks and check the clock between them. Without one, one
        # call: the scorer then batches the rung exactly as before (same floats, same ties).
        chunk = CHUNK_BATCHES * getattr(self.scorer, "batch_size", 16) if self.limits[2] < math.inf else size
        began, scored_rows = time.monotonic(), None
        try:
            for end in range(done + chunk, size, chunk):  # the time limit holds within a long rung too
                self.scorer.evaluate(self.task, c, examples[:end])
                self._partial = end - done
                if c.strategy != "seed" and self.out_of_time(self.limits[2]):  # the seed is always reported
                    raise OutOfTime
            results = self.scorer.evaluate(self.task, c, examples)
            scored_rows = max(0, size - done)
        finally:  # out of time mid-rung: the chunks done count
            # a rung replayed from the log (--resume) took what the log says, not the cache's near-zero seconds
            took = self._replayed_seconds.pop((c.id, size), None) or (
                time.monotonic() - began, self._partial if scored_rows is None else scored_rows)
            spent = self.row_seconds.setdefault(c.id, [0.0, 0])
            spent[0] += took[0]
            spent[1] += took[1]
            self._partial = 0
        self.scored[c.id] = max(done, size)
        for key, rows in self.scorer.once_costs(c).items():  # e.g. calibration's bias rows, once per key
            if key not in self._once_paid:
                self._once_paid.add(key)
                self.charge(rows)
        self.per_example[c.id] = self.scorer.cost(c)
        self.tokens_used += self._tokens(c, examples[done:size])
        score, tie = self.rung_score(c, results, examples)
        trial.rungs[size] = (score.score, tie)
        self._tick(max(0, size - done) * self.scorer.cost(c))
        if self.store is not None and (c.id, size) not in self._logged:
            self._logged.add((c.id, size))
            new = {ex.key: r.to_json() for ex, r in zip(examples[done:], results[done:])}
            self.store.append("candidates.jsonl", {
                "candidate": c.to_json(), "size": size, "score": score.to_json(), "tie": tie,
                "evals_used": self.evals_used, "seconds": round(self.seconds, 3),
                "row_seconds": [round(took[0], 4), took[1]], "results": new})

    def _tokens(self, c: Candidate, examples) -> int:
        """Tokens of the texts these example-evaluations send: the rendered prompt with each input (the model's
        own count in process, an estimate of ~3 characters a token for a served model), times the ensemble size."""
        model = getattr(self.scorer, "model", None)
        if model is None or not hasattr(model, "count_tokens"):
            return 0
        return self.scorer.cost(c) * sum(model.count_tokens(template.render(c.prompt, ex.input)) for ex in examples)

    def rung_score(self, c: Candidate, results, examples):
        """What racing ranks a candidate by on a dev prefix: the objective's score (anything with ``score``
        and ``to_json``) and the tie-break, the mean gold log-likelihood."""
        score = self.objective(c, results, examples)
        ties = [r.logprob for r in results if not math.isnan(r.logprob)]
        return score, (sum(ties) / len(ties) if ties else math.nan)

    # ---- the whole run ------------------------------------------------------------------------
    def resume_from_log(self) -> int:
        """Warm the scorer cache from the run log; the replayed search then rescoring nothing."""
        records = self.store.read("candidates.jsonl") if self.store else []
        for rec in records:
            cand = Candidate.from_json(rec["candidate"])
            results = {k: ExampleResult.from_json(v) for k, v in rec["results"].items()}
            self.scorer.preload(self.task, cand, results)
            self._logged.add((cand.id, rec["size"]))
            took = logged_row_seconds(rec)  # None in older logs or where damaged: that rung is timed afresh
            if took is not None:
                self._replayed_seconds[(cand.id, rec["size"])] = took
            self.elapsed_before = max(self.elapsed_before, rec.get("seconds", 0.0))
        if self.store is not None:
            self.objective.resume(self.store)
        self.started = time.monotonic()
        return len(records)

    def context(self, index: int) -> SearchContext:
        return SearchContext(task=self.task, scorer=self.scorer, rng=random.Random(self.seed * 1000 + index),
                             leaderboard=self.leaderboard, charge=self.charge,
                             remaining_evals=lambda: self.limits[1] - self.evals_used, seed=self.seed,
                             seconds_left=lambda: self.limits[2] - self.seconds, row_seconds=self.measured_row_seconds,
                             artifacts=(self.store.dir / "artifacts") if self.store is not None else None,
                             stage_best=[t.candidate for t in self.leaderboard()[: self.top_k]])

    def start_candidate(self) -> Candidate:
        """The candidate every run races first and reports as its seed (the objective's)."""
        return self.objective.start_candidate()

    def run(self) -> dict:
        self.objective.before_run()  # e.g. a multi-task run's baselines, before the progress bar counts
        self._open_bar()
        try:
            seed = self.start_candidate()
            self.limits = self.stage_limits(max(1, len(self.strategies)))
            self.tell([seed])
            warning = stopping.warn_no_room(self)  # #30: a run the limits leave no room in says so at once
            if self.schedule == "bandit":
                warning = bandit.run(self, warned=warning is not None) or warning
            else:
                schedules.run_stages(self)
            stopped = stopping.stop_fields(self, warning)  # before the final check, which runs past the limits
            self.limits = (math.inf,) * 4  # the final full-dev check always finishes
            board = self._top_k_on_all_dev()
            # not past a hard limit: tokens may be billed, and a time limit is the user's
            best = None if stopped["stop_reason"] in ("tokens", "time") else self._final_best(board)
            return {**finish(self, self.leaderboard() if best is not None else board, seed, best), **stopped}
        finally:
            if self._bar is not None:
                self._bar.close()

    def turn(self, strategy: Strategy, ctx: SearchContext, fresh: list[Candidate]) -> None:
        """Race a strategy's new candidates, tell it what came out, and show it on the progress bar."""
        if self._bar is not None:
            self._bar.set_description(strategy.name)
        strategy.observe(ctx, self.tell(fresh))
        if self._bar is not None and self.trials:
            self._bar.set_postfix(best=f"{self.leaderboard()[0].score:.3f}", refresh=False)

    def _arm_limits(self, finals: list[Strategy]) -> tuple[float, float, float, float]:
        return bandit.arm_limits(self, finals)  # kept for callers of the old name (bandit.py owns it)

    def _drop_too_long(self, c: Candidate, error: TooLongError) -> None:
        """A candidate with a dev row too long for the model's context: out of the search, as if never proposed
        (the seed, which every run reports, is an error)."""
        if c.strategy == "seed":
            raise error
        log.warning("dropped a %s candidate: %s", c.strategy, error)
        del self.trials[c.id]
        self.rejected.add(c.id)

    def _top_k_on_all_dev(self) -> list[Trial]:
        """The final check: the top-k scored on all of dev; the leaderboard after it. A prompt with a dev row its
        rungs had not reached that does not fit the model's context leaves it, as in racing (the next one is
        checked in its place); the seed, which the summary reports, stays at the rung it reached."""
        full, kept = len(self.task.dev), 0
        for trial in self.leaderboard():
            if kept == self.top_k:
                break
            if full not in trial.rungs:
                try:
                    self._score(trial, full)
                except TooLongError as e:
                    if trial.candidate.strategy == "seed":  # reported whatever happens: kept at the rung it reached
                        log.warning("the seed prompt is not checked on all of dev: %s", e)
                    else:
                        self._drop_too_long(trial.candidate, e)
                    continue
            kept += 1
        return self.leaderboard()

    def _final_best(self, board: list[Trial]) -> Candidate | None:
        """The final ensemble calibrated, else (where it would pass --max-seconds or --max-tokens) the winner's
        calibrated twin, else None."""
        group = self._final_group(board)
        if group is not board[0].candidate and not self._fits_in_time(group):
            self._skip("the final ensemble is not built: scoring it on test would pass --max-seconds")
            group = board[0].candidate
        before = len(self.final_notes)
        best = self._calibrated_winner(group)
        if best is not None or group is board[0].candidate:
            return best
        refused = self.final_notes[before:]  # a limit or the context refused the ensemble's calibration (said below)
        del self.final_notes[before:]
        if refused:  # the ensemble is only ever shipped calibrated: without it, the winner alone
            why = TOO_LONG_NOTE if any(TOO_LONG_NOTE in n for n in refused) else "calibrating its members would pass the limit"
            self._skip(f"the final ensemble is not built: {why}")
        return self._calibrated_winner(board[0].candidate)

    def _final_group(self, board: list[Trial]) -> Candidate:
        """The winner, or, when the run calibrates its winner and ``final_ensemble`` > 1, the first
        ``final_ensemble`` distinct prompts the final check scored on all of dev (an ensemble's members each), in
        the search's ranking, as one uniform ensemble. A fixed rule, not a choice on dev: on a few dozen rows the
        top prompts are seldom apart by more than luck, and their calibrated label distributions averaged gained
        on the development split (docs/decisions.md, 2026-12-03 evening)."""
        winner = board[0].candidate
        # a soft prompt is left out: an artifact carries one soft prompt's vectors, not an ensemble member's (export.py)
        if self.final_ensemble < 2 or self._twin(winner) is None or any(m.soft for m in winner.members or (winner,)):
            return winner
        full, members, seen = len(self.task.dev), [], set()
        for trial in board:
            if full not in trial.rungs or trial.candidate.strategy == "final":
                continue
            for m in trial.candidate.members or (trial.candidate,):
                if m.id not in seen and len(members) < self.final_ensemble and not m.soft:
                    seen.add(m.id)
                    members.append(m)
        if len(members) < 2 or (winner.members and {m.id for m in winner.members} == seen):
            return winner
        return ensemble.make(members, strategy="final", edit=f"the final check's top {len(members)} as one uniform ensemble")

    def row_cost_seconds(self, c: Candidate) -> float:
        """Seconds a row of ``c`` took to score in this run (the sum of its members', for an ensemble); the run's
        mean per evaluation for a prompt not scored yet."""
        return sum(self.measured_row_seconds(m, self.seconds_per_eval() * self.scorer.cost(m))
                   for m in c.members or (c,))

    def measured_row_seconds(self, c: Candidate, unmeasured: float = 0.0) -> float:
        """Seconds a row of ``c`` took in this run, ``unmeasured`` where none was scored (the context's
        ``row_seconds``, with 0.0)."""
        seconds, rows = self.row_seconds.get(c.id, (0.0, 0))
        return seconds / rows if rows else unmeasured

    def _fits_in_time(self, group: Candidate) -> bool:
        """Under a time limit: whether the final ensemble can still be scored on test, with the seed and the
        text alone beside it, at each member's own measured speed, before the limit (its dev rows are the final
        check's, already scored)."""
        if self.budget.max_seconds is None:
            return True
        left = self.budget.max_seconds - self.seconds
        return self._test_check_seconds(group) <= left

    def _test_check_seconds(self, c: Candidate) -> float:
        """The test check after the search: ``c``, the seed and the text alone on every test row, ``c`` at its
        measured speed, the other two at the run's mean."""
        return (self.row_cost_seconds(c) + 2 * self.seconds_per_eval()) * len(self.task.test)

    def _bias_seconds(self, winner: Candidate, found: Candidate) -> float:
        """The bias rows of ``found`` (the winner's calibrated twin) at the winner's measured speed per member."""
        return calibration.extra_rows(found) * self.row_cost_seconds(winner) / max(1, self.scorer.cost(winner))

    def _calibrated_winner(self, winner: Candidate) -> Candidate | None:
        """The winner's calibrated twin, scored on all of dev, when the run calibrates its winner; else None.
        A fixed rule rather than a choice on dev: on a few dozen rows the twin's dev score cannot tell the two
        apart (docs/decisions.md, batch calibration of the winner)."""
        task, found = self.task, self._twin(winner)
        if found is None:
            return None
        if winner.strategy == "final":  # the final ensemble: its lineage is its members, as raced
            found = replace(found, parents=winner.parents, edit=f"{winner.edit}, each member calibrate:{self.final_calibration}")
        if self.budget.max_seconds is not None and not self._twin_fits_in_time(winner, found):
            self._skip("the winner is not calibrated: its bias rows would pass --max-seconds")
            return None
        if self.budget.max_tokens is not None:  # tokens may be billed: only within what the run may spend
            # its dev rows and bias rows, and the test check (best and seed) that runs after it whatever it costs
            rows = list(task.dev) + calibration.bias_rows(task, found) + 2 * list(task.test)
            if self.tokens_used + self._tokens(found, rows) > self.budget.max_tokens:
                self._skip("the winner is not calibrated: that would pass --max-tokens")
                return None
        trial = self.trials.get(found.id)
        if trial is None:
            trial = self.trials[found.id] = Trial(found, order=len(self.trials))
        if len(task.dev) not in trial.rungs:
            try:
                self._score(trial, len(task.dev))
            except TooLongError as e:  # its bias rows: pool inputs shown with the winner's demonstrations
                del self.trials[found.id]
                self._skip(f"the winner is not calibrated: {TOO_LONG_NOTE} ({e})")
                return None
        return found

    def _skip(self, note: str) -> None:
        """An after-search step left out for a limit: logged, and said in the summary (``final_notes``)."""
        log.info(note)
        if note not in self.final_notes:
            self.final_notes.append(note)

    def _twin_fits_in_time(self, winner: Candidate, found: Candidate) -> bool:
        """Whether the calibrated twin's bias rows, at the winner's measured speed, and then the test check (the
        twin, the seed and the text alone) still end the run within --max-seconds. Where the winner shows nearest
        demonstrations of long inputs, its 32 bias rows can cost more than the whole search did."""
        need = self._bias_seconds(winner, found) + self._test_check_seconds(winner)
        return self.seconds + need <= self.budget.max_seconds

    def _twin(self, winner: Candidate) -> Candidate | None:
        """The candidate calibrated as the run calibrates its winner; None when it does not, or cannot here."""
        mode, task = self.final_calibration, self.task
        if not mode or task.kind != "classification" or not task.label_words or not calibration.usable(task, mode):
            return None
        return calibration.twin(winner, mode)

    def summary(self, board: list[Trial], **parts) -> dict:
        return build(self, board, **parts)

    def describe(self, c: Candidate, test: bool = False) -> dict:
        return describe(self, c, test)

    # ---- progress -----------------------------------------------------------------------------
    def _open_bar(self) -> None:
        if self._progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.budget.max_evals, unit="eval", dynamic_ncols=True)

    def _tick(self, n: int) -> None:
        if self._bar is not None and n:
            self._bar.update(n)
            self._bar_total_by_time()

    def _bar_total_by_time(self) -> None:
        """Under a time limit the bar ends where the seconds left, at the pace so far, end the evaluations: with
        --max-evals alone as its total, a one-minute run showed 6,000 evaluations and an ETA of 20 minutes."""
        max_s, spent = self.budget.max_seconds, self.seconds
        if not max_s or spent < 1 or not self.evals_used:
            return
        reachable = self._bar.n + int(self.evals_used / spent * max(0.0, max_s - spent))
        if self.budget.max_evals:  # the bar counts from this process's start; a resumed run has spent some already
            reachable = min(reachable, self._bar.n + max(0, self.budget.max_evals - self.evals_used))
        self._bar.total = max(reachable, self._bar.n)
