"""The strategy protocol, and discovery of strategies through entry points.

A strategy proposes candidates; the search loop scores them (racing on dev) and tells the strategy
what came out. Built-in strategies register in the ``promptsearch.strategies`` entry-point group
exactly as a third-party package would::

    [project.entry-points."promptsearch.strategies"]
    my-strategy = "my_package.module:MyStrategy"
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from .errors import PromptSearchError

if TYPE_CHECKING:
    from .candidate import Candidate, Trial
    from .scoring import Scorer
    from .task import Task

log = logging.getLogger(__name__)
GROUP = "promptsearch.strategies"


@dataclass
class SearchContext:
    """What a strategy may look at: the task, the scorer, the scored trials so far (best first),
    a seeded random generator, a way to account for forward passes it runs itself, and what is left of the budget."""

    task: Task
    scorer: Scorer
    rng: random.Random
    leaderboard: Callable[[], list[Trial]]
    charge: Callable[[int], None]  # count forward passes the strategy ran outside the scorer
    remaining_evals: Callable[[], float]
    seed: int = 0
    artifacts: Path | None = None  # a folder of the run where a strategy may save files (soft prompts)
    stage_best: list[Candidate] = field(default_factory=list)  # best of earlier strategies in the run
    # The seconds the stage has left (inf: no time limit) and what a row of a scored candidate took in this run (0.0
    # where none was scored), so that a strategy can leave out what time would not let it finish
    seconds_left: Callable[[], float] = lambda: math.inf
    row_seconds: Callable[[Candidate], float] = lambda candidate: 0.0

    def best(self, k: int = 1) -> list[Candidate]:
        return [t.candidate for t in self.leaderboard()[:k]]


class Strategy(ABC):
    """Propose hard (or soft) prompts. Subclasses take explicit keyword parameters (no **kwargs),
    do no work in ``__init__``, and keep all randomness on ``context.rng``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # A final strategy works on what the others found (an ensemble of their prompts): the bandit schedule runs
    # it once, after them, in the example-evaluations ``reserve`` keeps for it.
    final: ClassVar[bool] = False

    def reserve(self, task: Task) -> int:
        """Final strategies: the example-evaluations to keep for this one. Not used otherwise."""
        return 0

    def start(self, context: SearchContext) -> None:
        """Called once before the first ``propose`` of this strategy's stage. Does nothing by default."""

    @abstractmethod
    def propose(self, context: SearchContext, n: int) -> list[Candidate]:
        """Return up to ``n`` new candidates to score, or ``[]`` when this strategy has nothing more."""

    def observe(self, context: SearchContext, trials: list[Trial]) -> None:
        """Called after the candidates of the last ``propose`` were scored. Does nothing by default."""


def available() -> dict[str, type[Strategy]]:
    """Installed strategies by name; a plugin that fails to import is skipped with a warning."""
    found = {}
    for ep in entry_points(group=GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception as e:  # a broken plugin must not break the tool
            log.warning("strategy plugin %s failed to load: %s", ep.name, e)
    return dict(sorted(found.items()))


def parse_options(pairs: list[str]) -> dict[str, dict]:
    """``["evolution.population=8", "autoprompt.n_triggers=5"]`` -> per-strategy keyword options."""
    options: dict[str, dict] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        strategy, dot, param = key.partition(".")
        if not sep or not dot or not strategy or not param:
            raise PromptSearchError(f"option {pair!r} must look like STRATEGY.PARAM=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        except RecursionError:
            raise PromptSearchError(f"option {key}: value nested too deeply") from None
        param = param.replace("-", "_")
        if param in options.get(strategy, {}):  # the later one silently winning hides a typo in a long command
            raise PromptSearchError(f"option {strategy}.{param} is given twice; give it once")
        options.setdefault(strategy, {})[param] = value
    return options


def options_of(cls: type[Strategy]) -> list[dict]:
    """A strategy's options: its constructor's keyword parameters with their defaults (``None`` where required)."""
    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    return [{"name": p.name, "default": None if p.default is inspect.Parameter.empty else
             (list(p.default) if isinstance(p.default, tuple) else p.default)} for p in params]


def make(name: str, options: dict | None = None) -> Strategy:
    """Instantiate an installed strategy by name, rejecting options its constructor does not take."""
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise PromptSearchError(f"unknown strategy {name!r}; installed: {', '.join(available())}")
    try:
        cls = matches[0].load()
    except Exception as e:
        raise PromptSearchError(f"strategy {name!r} failed to load: {e}") from None
    from .limits import check_option

    options = {} if options is None else options
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise PromptSearchError(f"options of strategy {name!r} must be an object of OPTION: VALUE, not {options!r:.60}")
    params = {p.name: p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"}
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise PromptSearchError(f"strategy {name!r} has no option {unknown[0]!r}; it takes: {', '.join(params) or 'none'}")
    for key, value in options.items():  # a switch given "maybe" or 1 would silently count as on
        if isinstance(params[key].default, bool) and not isinstance(value, bool):
            raise PromptSearchError(f"strategy {name!r}: option {key} takes true or false, not {value!r}")
    # every value against its type and range (limits.py): 2.5 proposals, NaN or 1e30 iterations are one line here,
    # not a traceback or a search that never ends later
    options = {key: check_option(name, key, value, params[key].annotation,
                                 None if params[key].default is inspect.Parameter.empty else params[key].default)
               for key, value in options.items()}
    try:
        return cls(**options)
    except (TypeError, ValueError, ArithmeticError) as e:
        raise PromptSearchError(f"strategy {name!r}: {e}") from None
