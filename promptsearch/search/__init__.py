"""The search: one loop (loop.py) drives the strategies under a budget (budget.py), racing candidates over
dev (racing.py), under a schedule (stages: schedules.py; the bandit's turns: bandit.py), for an Objective
(objective.py: what the run maximises; SingleTask unless given); summary.py builds the summary. Import the
public names from here: ``from promptsearch.search import Budget, Racing, Search``."""

from .budget import Budget
from .loop import SCHEDULES, OutOfTime, Search
from .objective import SingleTask
from .racing import Racing, dev_order
from .schedules import MAX_STALLS

__all__ = ["MAX_STALLS", "SCHEDULES", "Budget", "OutOfTime", "Racing", "Search", "SingleTask", "dev_order"]
