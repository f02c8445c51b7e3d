"""Ensemble selection: combine the best prompts found so far into one ensemble candidate.

Caruana et al. (2004) style forward selection on dev, without replacement: the pool is the top prompts
of the leaderboard, each scored on all of dev; the ensemble starts from the best one and adds, one at a
time, the prompt that raises the ensemble's dev score most, stopping when none raises it. Without
replacement because the weights are a separate, explicit option (``weights="fit"``) and each member
costs one evaluation per example: repeating a member would spend budget to express a weight, and on a
few dozen dev rows the repeats Caruana uses against overfitting buy little. A vote of two follows its
best member on every split (ties go to it), so when no single prompt helps, two are tried together.

It proposes the ensemble (and, with ``weights="fit"``, the same members with weights fitted on dev);
the search races them like any other candidate. Member selection and weight fitting use the same dev
examples the racing uses, so an ensemble's dev score is optimistic; test says what holds.
"""

from __future__ import annotations

import itertools
import logging
import math

from promptsearch.candidate import Candidate
from promptsearch.metrics import summarize
from promptsearch.scoring import ensemble
from promptsearch.strategy import SearchContext, Strategy

log = logging.getLogger(__name__)
WEIGHT_STEPS = 6  # fitted weights are multiples of 1/6 (a grid: deterministic, and coarse on purpose)
RESERVE_MEMBERS = 3  # under the bandit schedule: keep room to race a three-member ensemble on all of dev


class EnsembleSelection(Strategy):
    name = "ensemble"
    description = "Combine the top prompts into an ensemble, members chosen greedily by dev gain (Caruana-style)."
    final = True  # it combines what the other strategies found

    def __init__(self, pool: int = 8, max_members: int = 5, weights: str = "uniform"):
        if pool < 2 or max_members < 2:
            raise ValueError("pool and max_members must be at least 2")
        if weights not in ("uniform", "fit"):
            raise ValueError(f"weights must be 'uniform' or 'fit', not {weights!r}")
        self.pool, self.max_members, self.weights = pool, max_members, weights

    def reserve(self, task) -> int:
        # three, not max_members: a generation vote of two always follows its best member (ties go to it), so
        # three is the smallest that can change an answer; five on SST-2's 872 dev rows would take more than a
        # third of an 8,000-evaluation budget
        return RESERVE_MEMBERS * len(task.dev)

    def start(self, context: SearchContext) -> None:
        self._proposed = False

    def propose(self, context: SearchContext, n: int) -> list[Candidate]:
        if self._proposed:
            return []
        self._proposed = True
        task, dev = context.task, list(context.task.dev)
        pool = self.choose_pool(context)
        if len(pool) < 2:
            log.info("ensemble: fewer than two prompts fit the budget; nothing to combine")
            return []
        results = {c.id: context.scorer.evaluate(task, c, dev) for c in pool}
        room = int((context.remaining_evals() // max(1, len(dev))) if math.isfinite(context.remaining_evals()) else 10**9)
        members = self.select(task, pool, results, dev, min(self.max_members, room))
        if len(members) < 2:
            log.info("ensemble: no prompt improves the best one's dev score; no ensemble proposed")
            return []
        out = [ensemble.make(members)]
        if self.weights == "fit":
            fitted = self.fit_weights(task, members, results, dev)
            kept = [(m, w) for m, w in zip(members, fitted) if w > 0]
            if len(kept) >= 2 and len({w for _, w in kept}) > 1:
                out.append(ensemble.make([m for m, _ in kept], [w for _, w in kept], edit=f"ensemble of {len(kept)}, fitted weights"))
        return out[:max(1, n)]

    def choose_pool(self, ctx: SearchContext) -> list[Candidate]:
        """The top single prompts, best first, while completing their dev scores (charged: the examples
        racing had not scored) leaves room to race a two-member ensemble on all of dev."""
        n_dev = len(ctx.task.dev)
        left = ctx.remaining_evals() - 2 * n_dev
        pool, charge = [], 0
        for trial in ctx.leaderboard():
            if len(pool) >= self.pool:
                break
            if trial.candidate.members or trial.candidate.soft or not trial.rungs:  # soft: not exportable in an ensemble
                continue
            extra = n_dev - trial.rung
            if extra and charge + extra > left:
                continue
            pool.append(trial.candidate)
            charge += extra
        ctx.charge(charge)
        return pool

    def select(self, task, pool, results, dev, max_members: int) -> list[Candidate]:
        """Forward selection by dev metric: the best prompt, then whatever raises the ensemble's score
        most (one member, else two together), never a member that does not raise it."""
        singles = sorted(pool, key=lambda c: self._value(task, [c], results, dev), reverse=True)  # stable: board order breaks ties
        members = [singles[0]]
        current = self._value(task, members, results, dev)
        while len(members) < max_members:
            rest = [c for c in singles if c not in members]
            steps = [[c] for c in rest]
            if len(members) + 2 <= max_members:
                steps_two = [list(p) for p in itertools.combinations(rest, 2)]
            else:
                steps_two = []
            best_step, best_value = None, current
            for group in (steps, steps_two):
                for step in group:
                    value = self._value(task, members + step, results, dev)
                    if value[0] > best_value[0] or (best_step is not None and value > best_value):
                        best_step, best_value = step, value
                if best_step is not None:
                    break  # a single member helped: no need to look at pairs
            if best_step is None:
                break
            members += best_step
            current = best_value
        return members

    def fit_weights(self, task, members, results, dev) -> list[float]:
        """Weights on a grid of the simplex (multiples of 1/WEIGHT_STEPS) maximising the dev metric, then
        the mean gold log-probability; the uniform weights win ties (fewest assumptions)."""
        k = len(members)
        uniform = [1.0 / k] * k
        best_w, best_value = uniform, self._value(task, members, results, dev, uniform)
        for cut in itertools.combinations(range(WEIGHT_STEPS + k - 1), k - 1):  # stars and bars
            parts = [b - a - 1 for a, b in zip((-1,) + cut, cut + (WEIGHT_STEPS + k - 1,))]
            w = [p / WEIGHT_STEPS for p in parts]
            value = self._value(task, members, results, dev, w)
            if value > best_value:
                best_w, best_value = w, value
        return best_w

    @staticmethod
    def _value(task, members, results, dev, weights=None) -> tuple[float, float]:
        """(dev metric, mean gold log-probability or -inf) of members combined (one member: itself)."""
        if len(members) == 1:
            rs = results[members[0].id]
        else:
            rs = ensemble.combine(task, ensemble.make(members), [results[m.id] for m in members], dev, weights)
        words = members[0].label_words or task.label_words
        metric = summarize(task.metric, rs, dev, words).score
        golds = [r.logprob for r in rs if not math.isnan(r.logprob)]
        return (metric, sum(golds) / len(golds) if golds else -math.inf)
