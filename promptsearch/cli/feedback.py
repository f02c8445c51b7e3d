"""``promptsearch rate`` and ``promptsearch refine``: the feedback loop on the command line. What is
shown and saved is decided in :mod:`promptsearch.feedback`; here we only prompt and print."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import PromptSearchError, RunInterrupted
from ..format import one_line
from ..limits import OPTION_RULES
from .common import Limited, emit, reporting, setup, stop_on_sigterm

RATE_HELP = "rating 1-5 (s skip, q quit)"


def _ask_rating(echo_err: bool) -> int | str:
    """A rating 1-5, 's' or 'q'; anything else asks again. End of input counts as quit."""
    from ..feedback import check_rating

    while True:
        try:
            raw = click.prompt(RATE_HELP, default="", show_default=False, err=echo_err).strip()
        except click.Abort:
            return "q"
        low = raw.lower()
        if low in ("q", "quit"):
            return "q"
        if low in ("s", "skip"):
            return "s"
        head, _, rest = raw.partition(" ")
        try:
            value = check_rating(head)
        except PromptSearchError as e:
            click.echo(f"  {e}; type 1-5, s to skip or q to quit", err=echo_err)
            continue
        return (value, rest.strip()) if rest.strip() else value


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--top", type=click.IntRange(1), default=3, show_default=True, help="Rate the outputs of this many best prompts.")
@click.option("--inputs", "n_inputs", type=click.IntRange(1), default=3, show_default=True, help="Sample dev inputs per prompt.")
@click.option("--seed", type=Limited("seed"), default=0, show_default=True, help="Which dev inputs are drawn.")
@click.option("--again", is_flag=True, help="Also show pairs rated before (default: continue where you stopped).")
@click.option("--from-file", "from_file", type=click.Path(dir_okay=False), default=None,
              help="Take ratings from a JSONL file (fields: prompt or candidate, input, rating, optional output, comment).")
@click.option("--export", "export", type=click.Path(dir_okay=False), default=None,
              help="Write the pairs to rate to a JSONL file (rating null) instead of asking; fill it in, then --from-file.")
@click.option("--model", default=None, help="A run on a served model: its server URL again, when outputs must be "
              "generated (a URL read from the run's files is never connected to).")
@reporting
def rate(run_dir, top, n_inputs, seed, again, from_file, export, model, as_json, quiet):
    """Rate what a run's best prompts produce (1-5 and a comment), one output at a time.

    Each rating is appended to RUN_DIR/ratings.jsonl the moment it is given: quitting (q, Ctrl-D,
    Ctrl-C) loses nothing already rated, and rating again continues with the pairs not yet rated."""
    setup(quiet)
    stop_on_sigterm()
    from ..feedback import RatingSession

    session = RatingSession(run_dir, top=top, n_inputs=n_inputs, seed=seed, again=again, named=[model])
    click.get_current_context().with_resource(session.store.locked())  # one writer per run, till the command ends
    existing, ratings_file, task = session.existing, session.feedback.path, session.task
    for p in session.problems:
        click.echo(f"note: {p}", err=True)

    if from_file:
        records = session.import_file(from_file)
        out = {"run_dir": str(run_dir), "added": len(records), "total": len(existing) + len(records),
               "ratings_file": str(ratings_file), "mean_rating": sum(r.rating for r in records) / len(records)}
        emit(as_json, out, f"{len(records)} ratings added to {ratings_file} ({out['total']} in all)")
        return

    items = session.items()
    if any(it.output is None for it in items) and not quiet:
        click.echo("running the model for outputs the run did not log...", err=True)
    session.fill(items)

    if export:
        session.export(items, export)
        emit(as_json, {"run_dir": str(run_dir), "exported": len(items), "file": str(export)},
             f"{len(items)} outputs to rate written to {export}; fill in 'rating' (1-5) and 'comment', then:\n"
             f"  promptsearch rate {run_dir} --from-file {export}")
        return

    err = as_json  # keep stdout for the one JSON object
    added, skipped, quit_early = [], 0, False
    if not items:
        emit(as_json, {"run_dir": str(run_dir), "added": 0, "skipped": 0, "quit": False, "total": len(existing),
                       "ratings_file": str(ratings_file)},
             f"nothing left to rate ({len(existing)} ratings in {ratings_file}); --again shows rated pairs too")
        return
    last_prompt = None
    for i, it in enumerate(items, 1):
        if it.candidate.id != last_prompt:
            dev = f"dev {it.dev['score']:.3f}" if it.dev else "dev -"
            click.echo(f"\n=== prompt #{it.rank} ({dev}, {it.candidate.strategy}) ===", err=err)
            for line in it.candidate.prompt.split("\n"):
                click.echo(f"  | {line}", err=err)
            last_prompt = it.candidate.id
        click.echo(f"\n[{i}/{len(items)}] prompt #{it.rank}", err=err)
        click.echo(f"  input:    {one_line(it.example.input, 200)}", err=err)
        click.echo(f"  output:   {it.output if it.output else '(empty)'}", err=err)
        click.echo(f"  expected: {one_line(it.reference(task), 200)}", err=err)
        try:
            answer = _ask_rating(err)
            if answer == "q":
                quit_early = True
                break
            if answer == "s":
                skipped += 1
                continue
            value, comment = answer if isinstance(answer, tuple) else (answer, None)
            if comment is None:
                try:
                    comment = click.prompt("comment (Enter for none)", default="", show_default=False, err=err).strip()
                except click.Abort:
                    comment, quit_early = "", True
        except KeyboardInterrupt:
            quit_early = True
            break
        session.record(it, value, comment)
        added.append({"candidate": it.candidate.id, "input": it.example.input, "output": it.output,
                      "rating": value, "comment": comment})
        if quit_early:
            break
    total = len(existing) + len(added)
    out = {"run_dir": str(run_dir), "added": len(added), "skipped": skipped, "quit": quit_early, "total": total,
           "ratings_file": str(ratings_file), "ratings": added}
    text = f"\n{len(added)} rating(s) saved to {ratings_file} ({total} in all, {skipped} skipped)"
    if quit_early:
        text += f"\nquit: nothing rated is lost; `promptsearch rate {run_dir}` continues with the rest"
    text += f"\nnext: promptsearch refine {run_dir}"
    emit(as_json, out, text)


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@click.option("--rating-weight", "weight", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Objective = (1-w) * dev metric + w * rating (ratings 1-5 mapped to 0-1).")
@click.option("--edits", "edit_map", type=click.Path(dir_okay=False), default=None,
              help='JSON file {"comment regex": "instruction"} extending the built-in comment -> edit mapping.')
@click.option("--model-edits", is_flag=True, help="Let the model propose an edit for comments no pattern matches.")
@click.option("--strategy", "strategy_names", multiple=True, help="Strategies after the refine stage (default: clarify).")
@click.option("--bases", type=click.IntRange(*OPTION_RULES["refine.bases"][1:]), default=3, show_default=True, help="Rated prompts the edits are applied to.")
@click.option("--max-candidates", type=Limited("budget.max_candidates"), default=None, help="Budget: candidates scored (default: the run's).")
@click.option("--max-evals", type=Limited("budget.max_evals"), default=None, help="Budget: example-evaluations for the search (the final check on all of dev can go past it).")
@click.option("--max-seconds", type=Limited("budget.max_seconds"), default=None, help="Budget: wall time.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="New run directory (default: RUN_DIR-refine-N).")
@click.option("--resume", type=click.Path(file_okay=False), default=None, help="Continue an interrupted refine run.")
@click.option("--model", default=None, help="A run on a served model: its server URL again, when outputs must be "
              "generated (a URL read from the run's files is never connected to).")
@reporting
def refine(run_dir, weight, edit_map, model_edits, strategy_names, bases, max_candidates, max_evals, max_seconds,
           out, resume, model, as_json, quiet):
    """Search on from a rated run with the ratings folded into the objective.

    Writes a new run directory (RUN_DIR-refine-N; the rated run is left as it was) and shows how the
    ranking moved and why: old rank -> new rank, dev metric, rating (yours or predicted), edits applied."""
    setup(quiet)
    stop_on_sigterm()
    from .. import feedback

    if not run_dir and not resume:
        raise PromptSearchError("give the rated RUN_DIR (or --resume REFINE_DIR)")
    budget = {k: v for k, v in {"max_candidates": max_candidates, "max_evals": max_evals, "max_seconds": max_seconds}.items() if v}
    target = Path(resume) if resume else (Path(out) if out else None)
    try:
        summary = feedback.refine(run_dir, out=target, weight=weight, edit_map=edit_map, model_edits=model_edits,
                                  strategies=tuple(strategy_names) or ("clarify",), budget=budget or None, bases=bases,
                                  progress=not (quiet or as_json), resume=bool(resume), named=[model])
    except feedback.NoRatingsError as e:
        raise PromptSearchError(f"{e}; rate first: promptsearch rate {run_dir}") from None
    except KeyboardInterrupt:
        where = resume or "the new RUN_DIR-refine-N directory"
        click.echo(f"interrupted; nothing scored is lost. Continue with: promptsearch refine --resume {where}", err=True)
        sys.exit(130)
    except RunInterrupted as e:
        where = resume or "the new RUN_DIR-refine-N directory"
        raise PromptSearchError(f"{e}. Continue with: promptsearch refine --resume {where}") from None
    emit(as_json, summary, render_refine(summary))


def render_refine(s: dict) -> str:
    r = s["refine"]
    w = r["weight"]
    lines = [f"refined {r['parent']} -> {s['run_dir']}",
             f"objective: {1 - w:.2f} x dev {s['metric']} + {w:.2f} x rating   ({r['ratings']} ratings; predictor: {r['predictor']})"]
    if r["edits"]:
        lines.append("edits from comments:")
        for e in r["edits"]:
            said = "; ".join(sorted(set(e["comments"]))[:3])
            done = "" if "tried" not in e else (f"; scored in {e['tried']} candidate(s)" if e["tried"]
                                                else "; NOT tried: the budget ran out first")
            lines.append(f"  {e['instruction']:<34} <- {len(e['comments'])} comment(s) ({e['source']}): {said}{done}")
    else:
        lines.append("edits from comments: none (no comment on a rating of 3 or less matched)")
    lines += ["", "how the ranking moved (rating: yours where rated, else predicted; n = dev examples scored);",
              "  new ranks as the search ranks: most dev examples (n) first, then the blend:",
              f"{'old':>4} -> {'new':<4} {'dev':>6} {'rating':>7} {'blend':>6} {'n':>4}  prompt / why"]
    for m in r["moves"]:
        old = str(m["old_rank"]) if m["old_rank"] else "new"
        rating = f"{m['rating']:.2f}" + ("*" if m["rated"] else " ")
        lines.append(f"{old:>4} -> {m['new_rank']:<4} {m['dev']:>6.3f} {rating:>7} {m['blended']:>6.3f} {m['n']:>4}  "
                     f"{one_line(m['prompt'], 70)}")
        if m["why"]:
            lines.append(f"{'':>29}{'; '.join(m['why'])}")
    b, p = r["best"], r["parent_best"]
    lines += ["", "(* = includes your ratings)", "best prompt now:"]
    lines += ["    " + line for line in b["prompt"].split("\n")]
    lines += [f"  dev {b['dev']:.3f}  test {b['test']:.3f}  rating {b['rating']:.2f}/5 (predicted where unrated)",
              f"before: dev {p['dev']:.3f}  rating {p['rating']:.2f}/5 ({p['rating_source']})  {one_line(p['prompt'], 60)}",
              f"\nrate the new outputs: promptsearch rate {s['run_dir']}"]
    return "\n".join(lines)
