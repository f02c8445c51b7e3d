"""promptsearch cache info|clear: the on-disk cache of served models' answers."""

from __future__ import annotations

import click

from .common import emit, reporting


@click.group()
def cache():
    """The on-disk cache of served models' answers (a rerun or resume never sends a request twice)."""


@cache.command()
@reporting
def info(as_json, quiet):
    """Where the cache is, how many answers it holds, per model."""
    from ..models.response_cache import ResponseCache

    found = ResponseCache().info()
    lines = [f"{found['path']}: {found['entries']} answers, {found['bytes'] / 1e6:.1f} MB"]
    lines += [f"  {n:>8}  {fingerprint}" for fingerprint, n in sorted(found["models"].items())]
    emit(as_json, found, "\n".join(lines))


@cache.command()
@click.option("--model", "fingerprint", default=None, help="Only this model fingerprint (as `cache info` lists it).")
@reporting
def clear(fingerprint, as_json, quiet):
    """Delete cached answers (all, or one model's)."""
    from ..models.response_cache import ResponseCache

    removed = ResponseCache().clear(fingerprint)
    emit(as_json, {"removed": removed}, f"removed {removed} cached answers")
