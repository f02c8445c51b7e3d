"""A user's own per-example metric: a Python function ``score(prediction, example) -> float in [0, 1]``.

From the API it is a callable; from the CLI (``--metric package.module:function``) and in ``config.json`` it is
that import path, so ``--resume`` imports the same function again. It replaces the task's metric for the whole
run: every per-example result the scorer returns is rescored from its prediction (the predicted label word, or
the generated answer) and the example (``input``, ``output``, ``outputs``, ``label``), so racing, the final check,
the test report and the run log all see the user's numbers. The raw results stay in the scorer's cache, so a
rescoring costs no forward pass, and a resumed run's logged scores are recomputed to the same values.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .errors import PromptSearchError

Metric = Callable[[str, object], float]


def spec_of(fn: Metric) -> str:
    """The import path a callable is recorded under (``module:qualified.name``)."""
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not name:
        raise PromptSearchError(f"metric {fn!r} has no module and name to record; pass a function")
    return f"{module}:{name}"


def importable(spec: str) -> bool:
    """Whether ``load`` can find the function again in another process (not a lambda, a local or __main__)."""
    module, _, name = spec.partition(":")
    return module != "__main__" and "<" not in name


def load(spec: str) -> Metric:
    """The function at ``package.module:function``; the working directory is searched too, as users expect
    of a file beside their data. One line when it cannot be found."""
    module_name, sep, name = str(spec).partition(":")
    if not sep or not module_name or not name:
        raise PromptSearchError(f"--metric {spec!r}: use package.module:function")
    if not importable(spec):
        raise PromptSearchError(f"metric {spec!r} cannot be imported again (a lambda, a nested function or __main__); "
                                "define it in a module, or pass the function itself from Python")
    try:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name.split(".")[0] or str(Path.cwd()) in sys.path:
                raise
            sys.path.append(str(Path.cwd()))
            module = importlib.import_module(module_name)
    except ImportError as e:
        raise PromptSearchError(f"--metric {spec!r}: cannot import {module_name} ({e})") from None
    fn = module
    for part in name.split("."):
        fn = getattr(fn, part, None)
    if not callable(fn):
        raise PromptSearchError(f"--metric {spec!r}: {module_name} has no function {name}")
    return fn


def renamed(task, spec: str):
    """The task as scored by the metric: its metric named by the spec. Reports show that name, and the scores
    are summarised as a mean with a 95% interval (metrics.summarize's default)."""
    return task if task.metric == spec else replace(task, metric=spec)


def apply(metric: str | Metric, task, scorer, fn: Metric | None = None):
    """(task, scorer) that score by the metric. ``metric`` is a spec or a callable; ``fn`` the already-imported
    function for a spec (the API passes the user's own callable, which may not be importable)."""
    spec = metric if isinstance(metric, str) else spec_of(metric)
    fn = fn or (load(metric) if isinstance(metric, str) else metric)
    if isinstance(scorer, MetricScorer):
        return renamed(task, spec), scorer
    return renamed(task, spec), MetricScorer(scorer, fn, spec)


class MetricScorer:
    """A scorer whose results carry the metric's score; everything else is the wrapped scorer's."""

    def __init__(self, scorer, fn: Metric, spec: str):
        self.scorer, self.fn, self.spec = scorer, fn, spec

    def __getattr__(self, name):
        return getattr(self.scorer, name)

    def evaluate(self, task, candidate, examples):
        results = self.scorer.evaluate(task, candidate, examples)
        return [replace(r, score=self.score(r.prediction, ex)) for r, ex in zip(results, examples)]

    def score(self, prediction: str, example) -> float:
        try:
            value = float(self.fn(prediction, example))
        except PromptSearchError:
            raise
        except Exception as e:  # noqa: BLE001 (the user's code: one line naming it and the example, never a traceback)
            raise PromptSearchError(f"metric {self.spec} failed on example {example.id or example.key}: "
                                    f"{type(e).__name__}: {e}") from None
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise PromptSearchError(f"metric {self.spec} returned {value!r} for example {example.id or example.key}; "
                                    "a per-example score must lie in [0, 1]")
        return value
