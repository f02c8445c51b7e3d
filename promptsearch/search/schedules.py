"""The sequential schedules: the strategies one after another, each a stage under its share of the budget
(``even``: an even share of what is left; ``adaptive``: all but a reserve for each later stage, ending once the
run's best stalls, see Search.stalled). The third schedule, the bandit's turns, is in bandit.py. A schedule
decides who proposes next and under which limits; the loop (loop.py) asks, races and charges."""

from __future__ import annotations

MAX_STALLS = 5  # rounds in a row of only known prompts after which a strategy is taken as done


def run_stages(search) -> None:
    """Schedules even and adaptive."""
    strategies = search.strategies
    for i, strategy in enumerate(strategies):
        left, adaptive = len(strategies) - i, search.schedule == "adaptive"
        search.limits = search.stage_limits(left, adaptive)
        search.watch_stalls(adaptive and left > 1)  # the last stage has no one to hand over to: it spends what is left
        before = search.evals_used
        run_stage(search, strategy, search.context(i))
        search.handovers.append({"strategy": strategy.name, "evals": search.evals_used - before,
                                 "stalled": search.stalled()})
        search.watch_stalls(False)


def run_stage(search, strategy, ctx) -> None:
    """One strategy proposes rounds until the stage's limits stop it or it is done."""
    strategy.start(ctx)
    stalls = 0
    while not search.exhausted() and stalls < MAX_STALLS:
        fresh = search.ask(strategy, ctx, search.batch_size)
        if fresh is None:
            break
        if not fresh:  # only prompts scored before: give it a few more chances, then move on
            stalls += 1
            continue
        stalls = 0
        search.turn(strategy, ctx, fresh)
