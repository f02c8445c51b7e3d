"""promptsearch: find the hard prompt that makes a frozen language model do a task best.

The public Python API (api.py) is re-exported here: ``load_task``, ``load_model``, ``evaluate``, ``search``,
``load_prompt``, and the types ``Task``, ``Example``, ``Budget``, ``Prompt``, ``Prediction``, ``EvalResult`` and
``SearchResult``. Importing it loads no model and no torch.

The built-in strategies live in the repository's top-level ``strategies/`` folder and install as
``promptsearch.strategies`` (pyproject.toml maps the folder); nothing installs a top-level ``strategies``.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

try:
    __version__ = metadata.version("promptsearch")
except metadata.PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0+unknown"


def _strategies_from_checkout() -> None:
    """In a source checkout (a git worktree, PYTHONPATH=.) there is no promptsearch/strategies folder:
    register the checkout's strategies/ under the installed name, so imports and entry points resolve
    to the code beside this file and never to a ``strategies`` folder in the user's working directory."""
    here = Path(__file__).resolve().parent
    folder = here.parent / "strategies"
    name = __name__ + ".strategies"
    if (here / "strategies").exists() or name in sys.modules or not (folder / "__init__.py").exists():
        return
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py", submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_strategies_from_checkout()

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
