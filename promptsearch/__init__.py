"""promptsearch: find the hard prompt that makes a frozen language model do a task best.

The public Python API (api.py) is re-exported here: ``load_task``, ``load_model``, ``evaluate``, ``search``,
``load_prompt``, and the types ``Task``, ``Example``, ``Budget``, ``Prompt``, ``Prediction``, ``EvalResult`` and
``SearchResult``. Importing it loads no model and no torch.

The built-in strategies live in the repository's top-level ``strategies/`` folder and install as
``promptsearch.strategies`` (pyproject.toml maps the folder); nothing installs a top-level ``strategies``.
Run it installed (``pip install -e .`` for a checkout): an un-installed checkout has no
``promptsearch.strategies``.
"""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("promptsearch")
except metadata.PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0+unknown"

from .api import (
    Budget,
    EvalResult,
    Example,
    Prediction,
    Prompt,
    SearchResult,
    Task,
    evaluate,
    load_model,
    load_prompt,
    load_task,
    search,
)

__all__ = [
    "Budget",
    "EvalResult",
    "Example",
    "Prediction",
    "Prompt",
    "SearchResult",
    "Task",
    "__version__",
    "evaluate",
    "load_model",
    "load_prompt",
    "load_task",
    "search",
]
