"""``promptsearch report``: plots and a table for one or more runs, finished or not."""

from __future__ import annotations

import click

from .common import emit, reporting, setup


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Where to write the PNGs and report.md (default: the run directory for one run, "
                   "./promptsearch-report for several).")
@reporting
def report(run_dirs, out, as_json, quiet):
    """Plot best-so-far dev score against example-evaluations and tabulate runs.

    One run: curve.png (a line per strategy of the run plus the overall best) and report.md. Several
    runs (e.g. different strategies on the same task): a PNG per run, compare.png (one panel per
    task, a line per run) and report.md. Works on runs that are still going or were interrupted."""
    setup(quiet)
    from ..report import report as make_report

    result = make_report(list(run_dirs), out)
    text = result["table"] + "\n\n" + "\n".join(f"wrote {p}" for p in result["figures"] + [result["markdown"]])
    emit(as_json, result, text)
