"""The search: one loop (loop.py) drives the strategies under a budget (budget.py), racing candidates over
dev (racing.py), under a schedule (even, adaptive, or the bandit's turns: bandit.py). Import the public
names from here: ``from promptsearch.search import Budget, Racing, Search``."""

from .budget import Budget
from .loop import MAX_STALLS, SCHEDULES, OutOfTime, Search
from .racing import Racing, dev_order

__all__ = ["MAX_STALLS", "SCHEDULES", "Budget", "OutOfTime", "Racing", "Search", "dev_order"]
