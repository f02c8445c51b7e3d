"""``promptsearch ui``: serve the web app over run folders (promptsearch.ui); here we only parse and print."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click

from ..errors import PromptSearchError
from .common import emit, reporting, setup


@click.command("ui")
@click.argument("run_dirs", nargs=-1, type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Any other than loopback needs the token printed at start.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--registry", type=click.Path(dir_okay=False), default=None,
              help="Registry file to show (default: $PROMPTSEARCH_REGISTRY or ~/.local/share/promptsearch/registry.db).")
@reporting
def ui(run_dirs, host, port, registry, as_json, quiet):
    """See, compare and rate runs in the browser: every run under RUN_DIRS (default: ./runs).

    Read-only over the runs except ratings, which go to each run's ratings.jsonl as `rate` writes them.
    Prints the address (and, off loopback, the token it needs) and opens nothing itself; Ctrl-C stops it."""
    setup(quiet)
    missing = [m for m in ("starlette", "jinja2", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise PromptSearchError(f"promptsearch ui needs {', '.join(missing)}: pip install 'promptsearch[ui]'")
    from ..ui.server import serve

    def announce(where):
        token_note = "" if not where.token else "  (the token in it is needed on every request; keep it private)"
        emit(as_json, {"url": where.url, "host": where.host, "port": where.port, "token_required": bool(where.token),
                       "runs": [str(Path(d)) for d in run_dirs] or ["runs"]},
             f"promptsearch ui: {where.url}{token_note}\nCtrl-C stops it")

    try:
        serve(list(run_dirs) or ["runs"], host=host, port=port, registry=Path(registry) if registry else None,
              announce=announce)
    except KeyboardInterrupt:
        pass
