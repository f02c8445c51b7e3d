"""The search commands: strategies, eval, run, show (tasks: tasks.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ..defaults import BUDGET, FINAL_CHECK
from ..errors import PromptSearchError, RunInterrupted
from ..format import (
    CHOSE,
    RANKED_BY,
    budget_line,
    estimate_kind,
    fmt_score,
    members_lines,
    one_line,
    options_note,
    score_lines,
)
from ..outputs import example_rows, pick, render
from ..scoring.calibration import MODES as CALIBRATIONS
from .common import Limited, emit, examples_options, model_options, reporting, setup, stop_on_sigterm, unescape


@click.command()
@click.argument("name", required=False)
@reporting
def strategies(name, as_json, quiet):
    """List installed search strategies (entry-point group promptsearch.strategies), or one strategy's
    options and their defaults (set them with run -o NAME.OPTION=VALUE)."""
    from ..strategy import available, options_of

    found = available()
    if name:
        if name not in found:
            raise PromptSearchError(f"unknown strategy {name!r}; installed: {', '.join(found)}")
        cls = found[name]
        opts = options_of(cls)
        lines = [f"{name}: {cls.description}", f"options (run -o {name}.OPTION=VALUE):" if opts else "options: none"]
        lines += [f"  {o['name']:<22} default {o['default']!r}" for o in opts]
        return emit(as_json, {"name": name, "description": cls.description, "options": opts}, "\n".join(lines))
    rows = [{"name": n, "description": cls.description, "class": f"{cls.__module__}:{cls.__qualname__}"} for n, cls in found.items()]
    emit(as_json, {"strategies": rows}, "\n".join(f"{r['name']:<12} {r['description']}" for r in rows)
         + ("" if as_json else "\n\noptions of one: promptsearch strategies NAME"))


@click.command("eval")
@click.option("--prompt", default=None, help="Prompt text with an {input} slot.")
@click.option("--prompt-file", type=click.Path(dir_okay=False), default=None, help="Read the prompt from a file.")
@click.option("--task", default=None, help="Bundled task name or a task directory (default: sst2-mini).")
@click.option("--split", default=None, type=click.Choice(["train", "dev", "test"]), help="[default: dev; test with --artifact]")
@click.option("--limit", default=None, type=Limited("limit"), help="Score only the first N examples.")
@click.option("--label-words", default=None, help="Comma-separated label words overriding the task's.")
@click.option("--calibrate", type=click.Choice(list(CALIBRATIONS)), default=None,
              help="Correct the label scores for the prompt's own bias (classification): content-free inputs, "
                   "the answer cue alone, or the mean over the task's train inputs (batch).")
@click.option("--demos", default=None, help="Demonstrations chosen from train: similar:K (per input), similar-per-class:K (per input, K of each class) or balanced:K (per class).")
@click.option("--artifact", "artifact_file", type=click.Path(dir_okay=False), default=None,
              help="Score an exported prompt artifact as recorded (its prompt, label words, chat mode, model).")
@click.option("--metric", "metric", default=None, help="Your own per-example metric, package.module:function "
              "(prediction, example) -> [0, 1], replacing the task's.")
@click.option("--check", is_flag=True, help="With --artifact: exit 1 unless the recorded score reproduces (same data) "
                                           "or shows no significant drop (new data).")
@click.option("--allow-other-model", is_flag=True, help="With --artifact: score on a model whose weights differ from the recorded ones.")
@click.option("--cached", is_flag=True, help="With --artifact --check on a served model: take answers from the response "
              "cache (default: ask the live server, so the check measures the model as deployed now).")
@examples_options
@model_options
@reporting
def eval_(prompt, prompt_file, task, split, limit, label_words, calibrate, demos, metric, artifact_file, check,
          allow_other_model, cached, n_examples, errors, model, model_name, concurrency, scoring, timeout, device, dtype,
          chat, batch_size, as_json, quiet):
    """Score one prompt on a task split: metric, n and 95% CI."""
    setup(quiet)
    if artifact_file:
        if n_examples is not None or errors:
            raise PromptSearchError("--examples/--errors show a prompt's outputs with --prompt or --prompt-file, not --artifact")
        if prompt or prompt_file or label_words or limit or chat or calibrate or demos or metric:
            raise PromptSearchError("--artifact scores the prompt, label words, options and chat mode it records, on the whole "
                                    "split; drop --prompt/--prompt-file/--label-words/--calibrate/--demos/--limit/--chat/--metric")
        from .prompts import eval_artifact

        served = {"model_name": model_name, "concurrency": concurrency, "scoring": scoring, "timeout": timeout,
                  "cache": cached or not check}
        return eval_artifact(artifact_file, task, split or "test", check, allow_other_model, model, device, batch_size,
                             as_json, quiet, served)
    if check or allow_other_model or cached:
        raise PromptSearchError("--check, --allow-other-model and --cached go with --artifact FILE")
    split = split or "dev"
    from ..api import score_on_split
    from ..models import load_model, scoring_note
    from ..task import load_task
    from ..template import validate

    if prompt_file:
        from ..files import read_text

        # a file saved on Windows ends its lines in CR LF: the prompt is the same text
        prompt = read_text(prompt_file).replace("\r\n", "\n").rstrip("\n")
    t = load_task(task)
    prompt = validate(unescape(prompt) if prompt is not None else t.seed_prompt)
    if label_words is not None:
        from ..task import check_label_words

        label_words = check_label_words([w.strip() for w in label_words.split(",")], "--label-words")
    words = label_words or None
    if words and (t.kind != "classification" or len(words) != len(t.label_words)):
        raise PromptSearchError(f"--label-words needs {len(t.label_words)} comma-separated words for task {t.name}")
    started = time.monotonic()
    loaded_model = load_model(model, device=device, dtype=dtype, model_name=model_name, concurrency=concurrency,
                              scoring=scoring, timeout=timeout)
    loaded = time.monotonic()
    # the API's evaluate does the rest (the checks of --chat, --demos and --calibrate, the custom metric, the rows)
    done = score_on_split(t, loaded_model, prompt, split, words, calibrate, demos, chat, batch_size, limit, metric,
                          progress=not (quiet or as_json))
    t, examples, results, too_long, score = done.task, done.examples, done.results, done.too_long, done.score
    seconds = time.monotonic() - loaded
    out = {**score.to_json(), "task": t.name, "split": split, "prompt": prompt, "label_words": list(words or t.label_words),
           **done.candidate.options(),
           "model": done.scorer.model.name, "dtype": getattr(loaded_model, "dtype_name", None), "seconds": round(seconds, 3), "load_seconds": round(loaded - started, 3),
           "examples_per_second": round(len(examples) / seconds, 2) if seconds else None,
           "scoring": scoring_note.describe(loaded_model),
           "too_long": too_long, "results": example_rows(t, examples, results, words or t.label_words)}  # every task kind (#30)
    if getattr(loaded_model, "stats", None) is not None:
        out["served"] = dict(loaded_model.stats)
    if scoring_note.note(loaded_model):
        out["scoring_note"] = scoring_note.note(loaded_model)
    text = f"{t.name} {split}: {score.metric} {score}\nprompt: {one_line(prompt)}{options_note(out)}"
    if out.get("scoring_note"):
        text += f"\nnote: {out['scoring_note']}"
    if too_long:
        text += f"\nnote: {too_long} of {len(examples)} rows do not fit the model's context with this prompt: scored as wrong"
    if n_examples is not None or errors:
        text += "\n\n" + render(out["results"], pick(out["results"], n_examples, errors), f"{split} outputs")
    emit(as_json, out, text)


@click.command()
@click.option("--task", "task", multiple=True, help="Bundled task name or a task directory (default: sst2-mini). "
              "Repeat for one universal prompt shared by several tasks (each keeps its own label words).")
@click.option("--objective", type=click.Choice(["mean", "min"]), default=None,
              help="Several tasks: maximise the mean of the tasks' gains over their own seed prompts (default) or the worst one.")
@click.option("--extend", default=None, help="Start from the universal prompt of RUN_DIR or an exported artifact and adapt it "
              "to its tasks plus --task NEW, keeping every old task within its 95% CI.")
@click.option("--compare-run", "compare", multiple=True, help="Several tasks: TASK=RUN_DIR, a single-task run whose best "
              "is reported beside that task (repeatable).")
@click.option("--strategy", "strategy_names", multiple=True,
              help="Strategy to run; repeat to chain (default: templates and clarify under the bandit schedule, "
                   "templates, ape and clarify with --proposer; then ensemble when 3 x the dev rows fit in a third "
                   "of --max-evals).")
@click.option("--schedule", type=click.Choice(["even", "adaptive", "bandit"]), default=None,
              help="How strategies share the budget: stages in order with even shares, adaptive stages (one that "
                   "stops improving hands over), or bandit (they take turns; the one that leads goes again; a final "
                   "strategy such as ensemble runs last, in its reserve). "
                   "Default: bandit for the default chain, even when --strategy is given.")
@click.option("--option", "-o", "options", multiple=True, help="Strategy option STRATEGY.PARAM=VALUE (repeatable).")
@click.option("--seed-prompt", default=None, help="Starting prompt (default: the task's).")
@click.option("--max-candidates", type=Limited("budget.max_candidates"), default=None,
              help=f"Budget: candidates scored [default: {BUDGET['max_candidates']}].")
@click.option("--max-evals", type=Limited("budget.max_evals"), default=None,
              help=f"Budget: example-evaluations (forward passes) for the search [default: {BUDGET['max_evals']}]. The final "
                   "check (the --final-check best on all of dev) always finishes, so the total can go past it.")
@click.option("--max-seconds", type=Limited("budget.max_seconds"), default=None,
              help=f"Budget: wall time [default: {BUDGET['max_seconds']}]. The search stops early enough for the final "
                   "check and the test scores at the top prompts' measured speed; the winner's calibration and the "
                   "final ensemble are left out where they would pass it (the summary says so).")
@click.option("--max-tokens", type=Limited("budget.max_tokens"), default=None,
              help="Budget: tokens of the texts scored (rendered prompt + input per evaluation), what a served model bills.")
@click.option("--seed", type=Limited("seed"), default=0, show_default=True)
@click.option("--no-racing", is_flag=True, help="Score every candidate on all of dev (for comparison).")
@click.option("--final-check", "top_k", type=Limited("top_k"), default=None,
              help=f"How many of the best candidates are checked on all of dev at the end [default: {FINAL_CHECK}].")
# the old spelling, easily read as served "top-k" scoring (#30): still accepted, hidden, with a note
@click.option("--top-k", "top_k_old", type=Limited("top_k"), default=None, hidden=True)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Run directory (default: runs/TASK-TIME).")
@click.option("--resume", type=click.Path(file_okay=False), default=None, help="Continue an interrupted run.")
@click.option("--executor", type=click.Choice(["local", "in-process", "ray", "http"]), default=None,
              help="Where scoring runs: this process (default); this process in chunks (the reference for ray); "
                   "Ray workers; concurrent requests to served replicas (--model URL,URL,...). "
                   "With --resume: the run's own unless given.")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True, help="Ray: model replicas (actors).")
@click.option("--worker-threads", type=click.IntRange(1), default=1, show_default=True, help="Ray: torch threads per worker.")
@click.option("--ray", "ray_address", default=None, help="Ray: 'auto' or ADDRESS of a running cluster (default: start a local one).")
@click.option("--proposer", default=None, help="Model that writes candidates for the search (paraphrases, edits): "
              "a path or http(s) URL (default: the scored model).")
@click.option("--plain", is_flag=True, help="Only prompts whose text alone is the whole prompt (no calibration, no "
              "demonstration rule, no ensemble): for pasting the result into a generation API.")
@click.option("--selection", type=click.Choice(["auto", "holdout", "holdout-dev", "labelled", "dev"]), default="auto", show_default=True,
              help="Which labelled rows choose and which estimate: with a small dev split, auto holds a quarter of the "
              "labelled rows out to estimate the winner honestly and lets dev choose (holdout-dev; holdout when fewer than 16 "
              "dev rows are left); holdout also lets train rows score; labelled: train rows score, nothing held out; dev: dev alone, nothing held out.")
@click.option("--final-calibration", type=click.Choice([*CALIBRATIONS, "none"]), default=None,
              help="Calibrate the winner's label scores after the search (classification) [default: batch: the mean "
              "over the task's own train inputs]; none keeps the winner as found. Not with --plain.")
@click.option("--final-ensemble", type=int, default=None, help="With the final calibration, combine the final check's "
              "top N prompts into one uniform ensemble, each calibrated [default: 3]; 1 keeps the winner alone. Each "
              "member is one more forward pass per input.")
@click.option("--metric", "metric", default=None, help="Your own per-example metric, package.module:function taking "
              "(prediction, example) and returning a score in [0, 1]; recorded, so --resume imports it again.")
@model_options
@reporting
def run(task, objective, extend, compare, strategy_names, schedule, options, seed_prompt, max_candidates, max_evals, max_seconds, max_tokens, seed, no_racing, top_k,
        top_k_old, out, resume, executor, workers, worker_threads, ray_address, proposer, plain, selection, final_calibration,
        final_ensemble, metric, model, model_name,
        concurrency, scoring,
        timeout, device, dtype, chat, batch_size, as_json, quiet):
    """Search prompts for a task and print the best ones with dev and test scores."""
    setup(quiet)
    stop_on_sigterm()
    if top_k_old is not None:
        if top_k is not None:
            raise PromptSearchError("--top-k is the old name of --final-check; give one of them")
        click.echo("note: --top-k is deprecated (not served top-k scoring): use --final-check", err=True)
        top_k = top_k_old
    from .. import runner
    from ..store import default_run_dir
    from ..strategy import parse_options
    from ..task import load_task
    from ..template import validate

    if resume:
        refuse_changes_on_resume(click.get_current_context())
        run_dir = Path(resume)
        config = None
    else:
        from ..multitask import multitask_config

        multi = multitask_config(list(task), objective, extend, list(compare), seed_prompt,
                                 list(strategy_names) or runner.DEFAULT_STRATEGIES)
        task = multi["tasks"][0] if multi else (task[0] if task else None)
        if seed_prompt is not None:
            seed_prompt = validate(unescape(seed_prompt))
        budget = {k: v for k, v in {"max_candidates": max_candidates, "max_evals": max_evals,
                                    "max_seconds": max_seconds, "max_tokens": max_tokens}.items() if v}
        racing = {"min_examples": 10**9} if no_racing else None
        config = runner.make_config(task=task, model=model, device=device, dtype=dtype, chat=chat, batch_size=batch_size,
                                    strategies=list(strategy_names) or None,  # None: the default chain (runner)
                                    options=parse_options(options), seed=seed, schedule=schedule, plain=plain,
                                    metric=metric, selection=selection, final_calibration=final_calibration,
                                    final_ensemble=final_ensemble,
                                    seed_prompt=seed_prompt, top_k=top_k, budget=budget or None, racing=racing,
                                    executor=executor_config(executor or "local", workers, worker_threads, ray_address),
                                    proposer=proposer, served={"model_name": model_name, "concurrency": concurrency,
                                                               "scoring": scoring, "timeout": timeout},
                                    multitask=multi)
        if metric:
            from ..custom_metric import load as load_metric

            load_metric(metric)  # a bad path is one line now, not after the model has loaded
        if multi and (plain or metric):
            raise PromptSearchError("--plain and --metric are for a single task's search")
        name = "+".join(load_task(t).name for t in multi["tasks"]) if multi else load_task(task).name
        run_dir = Path(out) if out else default_run_dir(name)
    try:
        chosen = executor_config(executor, workers, worker_threads, ray_address) if executor else None
        summary = runner.run(config, run_dir, resume=bool(resume), progress=not (quiet or as_json), executor=chosen,
                             named=[model, proposer] if resume else None)
    except KeyboardInterrupt:
        click.echo(f"interrupted; nothing scored is lost. Continue with: promptsearch run --resume {run_dir}", err=True)
        sys.exit(130)
    except RunInterrupted as e:
        raise PromptSearchError(f"{e}. Continue with: promptsearch run --resume {run_dir}") from None
    emit(as_json, summary, render_summary(summary))


# What --resume accepts besides the run directory: where scoring runs, how it reports, and the run's own server
# URLs named again (a URL read from config.json is never connected to otherwise; runner.require_named).
RESUME_FLAGS = {"resume", "executor", "workers", "worker_threads", "ray_address", "model", "proposer", "quiet", "as_json"}


def refuse_changes_on_resume(ctx) -> None:
    """A resumed run is the run as it was set up: a flag that would change it is refused in one line, not
    silently dropped (applying it would mix two set-ups in one log)."""
    from click.core import ParameterSource

    given = [p for p in ctx.command.params if p.name not in RESUME_FLAGS
             and ctx.get_parameter_source(p.name) not in (ParameterSource.DEFAULT, None)]
    if given:
        flags = "/".join(p.opts[0] for p in given)
        raise PromptSearchError(f"--resume continues the run as it was set up; drop {flags} (it would change the run and "
                                "is not applied), or start a new run with it")


def executor_config(kind: str, workers: int, threads: int, address: str | None) -> dict:
    if kind != "ray":
        return {"kind": kind}
    return {"kind": "ray", "workers": workers, "threads": threads, "address": address}


def render_summary(s: dict) -> str:
    """A finished run as text; it ends with why the search stopped (#30)."""
    from ..search.stopping import stop_line

    if s.get("multitask"):
        from ..multitask_report import render_summary as render_multitask

        text = render_multitask(s)
    else:
        text = render_single(s)
    return text + (f"\n{stop_line(s)}" if stop_line(s) else "")


def render_single(s: dict) -> str:
    best, seed = s["best"], s["seed"]
    lines = [f"task {s['task']} ({s['metric']}), run {s.get('run_dir', '')}", "", "best prompt:"]
    lines += members_lines(best) or ["    " + line for line in best["prompt"].split("\n")]
    if best.get("label_words") and not best.get("members"):
        lines.append(f"    label words: {', '.join(best['label_words'])}")
    if best.get("soft"):
        lines.append("    (soft prompt: trained vectors prepended; the text above is its nearest-token reading)")
    if options_note(best):
        lines.append(f"    scored with: {options_note(best).strip()}")
    if best.get("strategy") == "final" and best.get("edit", "").startswith("the final check's"):  # search/loop.py
        lines.append(f"    after the search: {best['edit']} (--final-ensemble 1 keeps the winner alone, "
                     "--final-calibration none as found)")
    elif best.get("strategy") == "final":  # the winner calibrated after the search (search/loop.py)
        lines.append(f"    the search's winner with its label scores calibrated ({best.get('edit', '')}) after the search "
                     "(--final-calibration none keeps the winner as found)")
    for note in s.get("final_notes") or ():  # an after-search step a limit left out, rows too long (search/loop.py)
        limited = "--max-" in note or "the limit" in note
        lines.append(f"    after the search: {note}" + (" (raise the limit to have it)" if limited else ""))
    if best.get("text_alone"):  # what pasting the text without its options would score (plain.py)
        too_long = best["text_alone"].get("too_long")
        lines.append(f"    the text alone: test {fmt_score(best['text_alone']['test'])}"
                     + (f"; {too_long} rows too long for the model's context, scored as wrong" if too_long else ""))
    # Say which estimate the dev line is: with nothing held out it is the score on the rows that chose the winner
    # (summaries from before the estimate say nothing either way).
    chose = CHOSE if best.get("holdout") else (
        "  (chose it: biased upward; no rows held out)" if estimate_kind(s) == "dev" else "")
    # the winner against the seed on the held-out rows: a gain there is one no choice made (summaries before it: none)
    paired_held = s.get("paired_holdout")
    held_gain = [f"improvement on held-out: {paired_held['difference']:+.3f}{paired_note(paired_held)}"] if paired_held else []
    lines += [*score_lines(best["dev"], best["test"], best.get("holdout"), chose, estimate=True),
              f"seed prompt: {one_line(seed['prompt'])}",
              *score_lines(seed["dev"], seed["test"], seed.get("holdout")), *held_gain,
              f"improvement on test: {s['improvement']['test']:+.3f}{paired_note(s.get('paired_test'))}", "",
              render_board(s["leaderboard"], "the blend of dev score and ratings" if s.get("refine") else "the dev score")]
    lines.append("\n" + budget_line(s))
    if s.get("dtype"):  # what the model computed in (--dtype auto decides per host; #33)
        lines.append(f"model: {s.get('model', '?')} in {s['dtype']}")
    if s.get("scoring_note"):
        lines.append(f"note: {s['scoring_note']}")
    for line in s.get("data_warnings", ()):  # task.label_gaps: said as the run started, and again under its result
        lines.append(f"warning: {line}")
    return "\n".join(lines)


def paired_note(test: dict | None) -> str:
    """The paired test of best vs seed on the same test examples (summaries from before it: nothing)."""
    from ..stats import format_p

    return f" ({test['test']} p={format_p(test['p_value'])}, {test['detail']})" if test else ""


def render_board(rows: list[dict], what: str = "the dev score") -> str:
    out = [RANKED_BY.format(what=what) + "; `show --full --rank N` prints a prompt whole",
           f"{'#':>2}  {'dev':<32} {'strategy':<11} prompt"]
    for r in rows:
        words = f"  [{'/'.join(r['label_words'])}]" if r.get("label_words") else ""
        soft = " (soft)" if r.get("soft") else ""
        out.append(f"{r['rank']:>2}  {fmt_score(r['dev']):<32} {r['strategy']:<11} {one_line(r['prompt'])}{words}{soft}{options_note(r)}")
        if r.get("members"):
            out += members_lines(r, indent="      ")
    return "\n".join(out)


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--lineage", "show_lineage", is_flag=True, help="Show how the best prompt was derived.")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True)
@click.option("--rank", type=click.IntRange(1), default=None, help="With --full or --examples: the prompt at this rank (default: the best).")
@click.option("--full", is_flag=True, help="Print one prompt whole (not cut to a line), with its label words and scoring options.")
@click.option("--split", type=click.Choice(["dev", "test"]), default="dev", show_default=True,
              help="With --examples/--errors: whose outputs (test: only the best and the seed were scored there).")
@examples_options
@reporting
def show(run_dir, show_lineage, top, rank, full, split, n_examples, errors, as_json, quiet):
    """Print the leaderboard of a finished or interrupted run (--full, --examples: one prompt in detail)."""
    from ..store import RunStore

    store = RunStore.open(run_dir)
    summary = store.checked_summary()
    board = store.leaderboard()[:top]
    if not board:
        raise PromptSearchError(f"{run_dir}: no candidate has been scored yet")
    out = {"run_dir": str(run_dir), "finished": summary is not None, "leaderboard": board}
    if summary:
        out.update(best=summary["best"], seed=summary["seed"], budget_used=summary["budget_used"])  # checked by RunStore
        if summary.get("estimate"):  # which score estimates the winner (held-out rows, or dev that chose it)
            out["estimate"] = summary["estimate"]
        if summary.get("multitask"):  # every task's scores beside its own seed (and a single-task best)
            out.update(multitask=summary["multitask"], tasks=summary["tasks"])
    board_text = render_board
    from ..runner import read_config

    if read_config(store).get("multitask"):
        from ..multitask_report import render_board as board_text
    text = render_summary({**summary, "leaderboard": board}) if summary else "(unfinished run)\n" + board_text(board)
    if show_lineage:
        chain = store.lineage((summary or {}).get("best", board[0])["id"])
        out["lineage"] = chain
        text += "\n\nlineage of the best prompt (newest first):\n" + "\n".join(
            f"  {c['strategy']:<11} {one_line(c.get('edit') or '-', 28):<28} {one_line(c['prompt'], 70)}{options_note(c)}"
            + "".join(f"\n  {'':<11} {'  with':<28} {one_line(m, 70)}" for m in c.get("mates", ())) for c in chain)
    if full or rank or n_examples is not None or errors:
        text = show_one(store, summary, store.leaderboard(), rank, full, split, n_examples, errors, out, text)
    emit(as_json, out, text)


def show_one(store, summary, board, rank, full, split, n_examples, errors, out: dict, text: str) -> str:
    """`show --rank/--full/--examples`: one prompt of the run whole, and its per-example outputs (#30).
    Adds ``prompt`` (and ``examples``) to the JSON ``out``; returns the text to print instead of ``text``."""
    from .. import runner
    from ..format import full_prompt_lines
    from ..outputs import pick, render
    from ..run_outputs import candidate_outputs

    if rank and rank > len(board):
        raise PromptSearchError(f"--rank {rank}: the run has {len(board)} scored prompts")
    cand = board[rank - 1] if rank else ((summary or {}).get("best") or board[0])
    cand = next((row for row in board if row["id"] == cand["id"]), cand)
    where = f"rank {board.index(cand) + 1}" if cand in board else "best"
    out["prompt"] = cand
    lines = [f"prompt at {where} of {store.dir} (id {cand['id']}, {cand.get('strategy', 'seed')}):"]
    lines += full_prompt_lines(cand) if full else ["    " + one_line(cand["prompt"]) + options_note(cand)]
    if not full and (n_examples is None and not errors):
        return text + "\n\n" + "\n".join(lines)
    if n_examples is not None or errors:
        task = runner.load_task_of(runner.read_config(store))
        rows = out["examples"] = candidate_outputs(store, task, cand, split)
        lines += ["", render(rows, pick(rows, n_examples, errors), f"{split} outputs")]
    return "\n".join(lines)
