"""The bandit schedule: the chain's strategies take turns in small pulls, and the one whose prompt leads the run
gets the next turn.

Sequential stages must guess beforehand how much of the budget each strategy deserves. The adaptive one (hand
over when a stage stalls) guessed wrong where a later strategy is far better: on first_word_letter templates kept
nudging the best up and spent 304 of 400 evaluations, leaving clarify 48; clarify alone reaches 0.96 there,
the default 0.54 (test scores, benchmarks/results/scoreboard-induction-2026-11-30.json). Here every strategy gets a
first turn early, in chain order, of ``FIRST_TURN`` proposals (a strategy puts its most promising first), and then
turns of ``PULL`` proposals:

- the strategy that proposed the run's leader pulls again (it is the one that is working);
- a strategy not pulled for ``PATIENCE`` pulls gets the next one anyway (it may build on the new leader, and
  one lucky pull must not lock the others out);
- when the leader is the seed (no strategy has helped yet), they take turns.

A strategy that has nothing more to propose is started again if the leader changed since it started (templates
and clarify build on the best prompts they see at their start), else retired. Every decision depends on scores
and counts only, so a resumed run (which replays the search on its cached scores) takes the same turns.

The first turn was a whole round (8) until 2026-12-02, decided on the scoreboard's test rows; re-decided on the
few-label protocol's development split, a first turn of 4 chose better (FIRST_TURN; docs/decisions.md).

The whole turn logic is here: ``choose`` picks the arm, ``run`` drives a Search through the turns and then its
final strategies (the loop asks, races and charges; schedules.py has the sequential stages).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from . import stopping
from .schedules import MAX_STALLS, run_stage

log = logging.getLogger(__name__)
# Proposals in a strategy's first turn (None: a whole round, the search's batch_size). 4, as every later turn: on the
# few-label protocol's development split (benchmarks/fewshot.py, 2026-12-02) a first turn of 4 chose better than a
# whole round of 8 (+0.024 on average over 15 task-draws, better in 5, worse in 1); the 8 had been decided on test rows.
FIRST_TURN = 4
PULL = 4  # proposals per turn after the first: small, so that the run follows the strategy that leads closely
PATIENCE = 3  # a strategy waits at most this many turns
FINAL_MAX_SHARE = 1 / 3  # a final strategy's reserve is kept only up to this share of max_evals


@dataclass
class Arm:
    """One strategy's record in the bandit schedule."""

    name: str
    started_on: str | None = None  # the leader's id when the strategy last started (None: not started)
    pulls: int = 0
    evals: int = 0
    leads: int = 0  # turns after which one of its proposals led the run
    last: int = -1  # the turn it last pulled
    empty: int = 0  # turns in a row it proposed only known prompts
    retired: bool = False

    def to_json(self) -> dict:
        return {"strategy": self.name, "evals": self.evals, "pulls": self.pulls, "leads": self.leads}


def choose(arms: list[Arm], leader_arm: int | None, turn: int) -> int | None:
    """The arm that pulls at this turn (None: all retired)."""
    live = [i for i, a in enumerate(arms) if not a.retired]
    if not live:
        return None
    fresh = [i for i in live if arms[i].pulls == 0]
    if fresh:
        return fresh[0]
    waited = [i for i in live if turn - arms[i].last > PATIENCE]
    if waited:
        return min(waited, key=lambda i: (arms[i].last, i))
    if leader_arm in live:
        return leader_arm
    return min(live, key=lambda i: (arms[i].last, i))  # no strategy leads: round robin


def run(search, warned: bool = False) -> str | None:
    """The bandit schedule on a Search: strategies take turns (``choose`` says who goes), a first turn of
    ``FIRST_TURN`` proposals (None: a whole round, ``batch_size``), then turns of ``PULL``. Final strategies
    (ensemble) are not arms: they run last, as stages, on what the others found, in the budget they reserve.
    Returns the warning when the arms' limits leave them no room from the start (unless one was given:
    ``warned``); ``search.arms_stop`` says which limit, if any, ended the arms' turns."""
    strategies = search.strategies
    finals = affordable_finals(search)
    arm_ids = [i for i, s in enumerate(strategies) if not s.final]
    search.limits = arm_limits(search, [strategies[i] for i in finals])
    # the run-wide limits may leave room where the arms' share (the rest kept for the finals) does not
    warning = None if warned else stopping.warn_no_room(search, search.limits)
    arms = [Arm(strategies[i].name) for i in arm_ids]
    contexts = [search.context(i) for i in arm_ids]
    owner: dict[str, int] = {}  # candidate id -> the arm that proposed it
    turn = 0
    while not search.exhausted():
        leader = search.leaderboard()[0].candidate.id
        i = choose(arms, owner.get(leader), turn)
        if i is None:
            break
        arm, strategy, ctx = arms[i], strategies[arm_ids[i]], contexts[i]
        if arm.started_on is None:
            strategy.start(ctx)
            arm.started_on = leader
        size = (FIRST_TURN or search.batch_size) if arm.pulls == 0 else PULL
        fresh = search.ask(strategy, ctx, size)
        if fresh is None and arm.started_on != leader:  # done, but the leader moved on: begin again from it
            strategy.start(ctx)
            arm.started_on = leader
            fresh = search.ask(strategy, ctx, size)
        if fresh is None:
            arm.retired = True
            continue
        arm.empty = 0 if fresh else arm.empty + 1
        arm.retired = arm.empty >= MAX_STALLS
        if not fresh:
            continue
        before = search.evals_used
        owner.update((c.id, i) for c in fresh)
        search.turn(strategy, ctx, fresh)
        arm.pulls, arm.last, arm.evals = arm.pulls + 1, turn, arm.evals + search.evals_used - before
        turn += 1
        now = search.leaderboard()[0].candidate.id
        arm.leads += now != leader and owner.get(now) == i
    search.arms_stop = stopping.budget_stop(search, search.limits)  # None: the arms had nothing left to propose
    search.handovers = [a.to_json() for a in arms] + [
        {"strategy": s.name, "evals": 0, "final": True, "skipped": "budget"}
        for i, s in enumerate(strategies) if s.final and i not in finals]
    for k, i in enumerate(finals):
        search.limits = search.stage_limits(len(finals) - k)
        before = search.evals_used
        run_stage(search, strategies[i], search.context(i))
        search.handovers.append({"strategy": strategies[i].name, "evals": search.evals_used - before, "final": True})
    return warning


def affordable_finals(search) -> list[int]:
    """The final strategies whose reserve fits: at most FINAL_MAX_SHARE of the evaluation budget (a reserve
    above that would starve the strategies that find the prompts a final one combines)."""
    out, room = [], math.inf if search.budget.max_evals is None else FINAL_MAX_SHARE * search.budget.max_evals
    for i, strategy in enumerate(search.strategies):
        if not strategy.final:
            continue
        need = strategy.reserve(search.task)
        if need > room:
            log.info("%s: skipped; it needs %d example-evaluations, more than %.0f%% of the budget",
                     strategy.name, need, 100 * FINAL_MAX_SHARE)
            continue
        out.append(i)
        room -= need
    return out


def arm_limits(search, finals: list) -> tuple[float, float, float, float]:
    """The arms' limits: all of the budget but the finals' reserve -- the evaluations they ask for, and of the
    other limits what an adaptive stage leaves each later stage (loop.RESERVE_SHARE)."""
    limits = search.stage_limits(1 + len(finals), adaptive=True)
    if search.budget.max_evals is None:
        return limits
    return (limits[0], search.budget.max_evals - sum(f.reserve(search.task) for f in finals), *limits[2:])
