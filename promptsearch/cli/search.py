"""The search commands: strategies, eval, run, show (tasks: tasks.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ..errors import PromptSearchError, RunInterrupted
from ..format import fmt_score, members_lines, one_line, options_note
from .common import emit, model_options, reporting, setup, stop_on_sigterm, unescape


@click.command()
@reporting
def strategies(as_json, quiet):
    """List installed search strategies (entry-point group promptsearch.strategies)."""
    from ..strategy import available

    found = available()
    rows = [{"name": n, "description": cls.description, "class": f"{cls.__module__}:{cls.__qualname__}"} for n, cls in found.items()]
    emit(as_json, {"strategies": rows}, "\n".join(f"{r['name']:<12} {r['description']}" for r in rows))


@click.command("eval")
@click.option("--prompt", default=None, help="Prompt text with an {input} slot.")
@click.option("--prompt-file", type=click.Path(dir_okay=False), default=None, help="Read the prompt from a file.")
@click.option("--task", default=None, help="Bundled task name or a task directory (default: sst2-mini).")
@click.option("--split", default=None, type=click.Choice(["train", "dev", "test"]), help="[default: dev; test with --artifact]")
@click.option("--limit", default=None, type=click.IntRange(1), help="Score only the first N examples.")
@click.option("--label-words", default=None, help="Comma-separated label words overriding the task's.")
@click.option("--calibrate", type=click.Choice(["contextual", "domain"]), default=None,
              help="Correct the label scores for the prompt's own bias (classification).")
@click.option("--demos", default=None, help="Demonstrations chosen from train: similar:K (per input) or balanced:K (per class).")
@click.option("--artifact", "artifact_file", type=click.Path(dir_okay=False), default=None,
              help="Score an exported prompt artifact as recorded (its prompt, label words, chat mode, model).")
@click.option("--metric", "metric", default=None, help="Your own per-example metric, package.module:function "
              "(prediction, example) -> [0, 1], replacing the task's.")
@click.option("--check", is_flag=True, help="With --artifact: exit 1 unless the recorded score reproduces (same data) "
                                           "or shows no significant drop (new data).")
@click.option("--allow-other-model", is_flag=True, help="With --artifact: score on a model whose weights differ from the recorded ones.")
@model_options
@reporting
def eval_(prompt, prompt_file, task, split, limit, label_words, calibrate, demos, metric, artifact_file, check, allow_other_model, model, model_name,
          concurrency, scoring, timeout, device, dtype, chat, batch_size, as_json, quiet):
    """Score one prompt on a task split: metric, n and 95% CI."""
    setup(quiet)
    if artifact_file:
        if prompt or prompt_file or label_words or limit or chat or calibrate or demos or metric:
            raise PromptSearchError("--artifact scores the prompt, label words, options and chat mode it records, on the whole "
                                    "split; drop --prompt/--prompt-file/--label-words/--calibrate/--demos/--limit/--chat/--metric")
        from .prompts import eval_artifact

        served = {"model_name": model_name, "concurrency": concurrency, "scoring": scoring, "timeout": timeout}
        return eval_artifact(artifact_file, task, split or "test", check, allow_other_model, model, device, batch_size,
                             as_json, quiet, served)
    if check or allow_other_model:
        raise PromptSearchError("--check and --allow-other-model go with --artifact FILE")
    split = split or "dev"
    from ..candidate import Candidate
    from ..metrics import summarize
    from ..models import load_model
    from ..scorer import Scorer
    from ..task import load_task
    from ..template import validate

    if prompt_file:
        from ..files import read_text

        prompt = read_text(prompt_file).rstrip("\n")
    t = load_task(task)
    prompt = validate(unescape(prompt) if prompt is not None else t.seed_prompt)
    words = tuple(w.strip() for w in label_words.split(",")) if label_words else None
    if words and (t.kind != "classification" or len(words) != len(t.label_words)):
        raise PromptSearchError(f"--label-words needs {len(t.label_words)} comma-separated words for task {t.name}")
    examples = t.split(split)[:limit]
    started = time.monotonic()
    loaded_model = load_model(model, device=device, dtype=dtype, model_name=model_name, concurrency=concurrency,
                              scoring=scoring, timeout=timeout)
    scorer = Scorer(loaded_model, batch_size=batch_size, chat=chat)
    loaded = time.monotonic()
    cand = Candidate(prompt, label_words=words, calibrate=calibrate, demos=demos)
    if demos:
        from ..demos import parse

        parse(demos)
    if calibrate:
        from ..calibration import check as check_calibration

        check_calibration(t, cand)
    if metric:  # the user's per-example metric (custom_metric.py)
        from ..custom_metric import apply

        t, scorer = apply(metric, t, scorer)
    results = []
    from tqdm.auto import tqdm

    with tqdm(total=len(examples), disable=quiet or as_json, unit="ex", leave=False) as bar:
        for i in range(0, len(examples), 64):
            chunk = examples[i : i + 64]
            results += scorer.evaluate(t, cand, chunk)
            bar.update(len(chunk))
    score = summarize(t.metric, results, examples, words or t.label_words)
    seconds = time.monotonic() - loaded
    out = {**score.to_json(), "task": t.name, "split": split, "prompt": prompt, "label_words": list(words or t.label_words),
           **cand.options(),
           "model": scorer.model.name, "seconds": round(seconds, 3), "load_seconds": round(loaded - started, 3),
           "examples_per_second": round(len(examples) / seconds, 2) if seconds else None,
           "scoring": loaded_model.capabilities.describe(),
           "results": [{"id": ex.id, "prediction": r.prediction, "label_logprobs": list(r.label_logprobs)}
                       for ex, r in zip(examples, results)] if t.kind == "classification" else None}
    if getattr(loaded_model, "stats", None) is not None:
        out["served"] = dict(loaded_model.stats)
    text = f"{t.name} {split}: {score.metric} {score}\nprompt: {one_line(prompt)}{options_note(out)}"
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
@click.option("--max-candidates", type=click.IntRange(1), default=None, help="Budget: candidates scored.")
@click.option("--max-evals", type=click.IntRange(1), default=None, help="Budget: example-evaluations (forward passes).")
@click.option("--max-seconds", type=click.FloatRange(1), default=None, help="Budget: wall time.")
@click.option("--max-tokens", type=click.IntRange(1), default=None,
              help="Budget: tokens of the texts scored (rendered prompt + input per evaluation), what a served model bills.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-racing", is_flag=True, help="Score every candidate on all of dev (for comparison).")
@click.option("--top-k", type=click.IntRange(1), default=3, show_default=True, help="Candidates checked on all of dev at the end.")
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
@click.option("--metric", "metric", default=None, help="Your own per-example metric, package.module:function taking "
              "(prediction, example) and returning a score in [0, 1]; recorded, so --resume imports it again.")
@model_options
@reporting
def run(task, objective, extend, compare, strategy_names, schedule, options, seed_prompt, max_candidates, max_evals, max_seconds, max_tokens, seed, no_racing, top_k,
        out, resume, executor, workers, worker_threads, ray_address, proposer, plain, metric, model, model_name, concurrency, scoring,
        timeout, device, dtype, chat, batch_size, as_json, quiet):
    """Search prompts for a task and print the best ones with dev and test scores."""
    setup(quiet)
    stop_on_sigterm()
    from .. import runner
    from ..store import default_run_dir
    from ..strategy import parse_options
    from ..task import load_task
    from ..template import validate

    if resume:
        if task or objective or extend or compare or plain or metric:
            raise PromptSearchError("--resume continues the run as it was set up; drop --task/--objective/--extend/"
                                    "--compare-run/--plain/--metric")
        run_dir = Path(resume)
        config = None
    else:
        from ..multitask import multitask_config

        multi = multitask_config(list(task), objective, extend, list(compare), seed_prompt,
                                 list(strategy_names) or runner.DEFAULT_STRATEGIES)
        task = multi["tasks"][0] if multi else (task[0] if task else None)
        if seed_prompt is not None:
            seed_prompt = validate(unescape(seed_prompt))
        budget = {k: v for k, v in dict(max_candidates=max_candidates, max_evals=max_evals, max_seconds=max_seconds,
                                                   max_tokens=max_tokens).items() if v}
        racing = {"min_examples": 10**9} if no_racing else None
        config = runner.make_config(task=task, model=model, device=device, dtype=dtype, chat=chat, batch_size=batch_size,
                                    strategies=list(strategy_names) or None,  # None: the default chain (runner)
                                    options=parse_options(options), seed=seed, schedule=schedule, plain=plain,
                                    metric=metric,
                                    seed_prompt=seed_prompt, top_k=top_k, budget=budget or None, racing=racing,
                                    executor=executor_config(executor or "local", workers, worker_threads, ray_address),
                                    proposer=proposer, served=dict(model_name=model_name, concurrency=concurrency,
                                                                   scoring=scoring, timeout=timeout),
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
        summary = runner.run(config, run_dir, resume=bool(resume), progress=not (quiet or as_json), executor=chosen)
    except KeyboardInterrupt:
        click.echo(f"interrupted; nothing scored is lost. Continue with: promptsearch run --resume {run_dir}", err=True)
        sys.exit(130)
    except RunInterrupted as e:
        raise PromptSearchError(f"{e}. Continue with: promptsearch run --resume {run_dir}") from None
    emit(as_json, summary, render_summary(summary))


def executor_config(kind: str, workers: int, threads: int, address: str | None) -> dict:
    if kind != "ray":
        return {"kind": kind}
    return {"kind": "ray", "workers": workers, "threads": threads, "address": address}


def render_summary(s: dict) -> str:
    if s.get("multitask"):
        from ..multitask_report import render_summary as render_multitask

        return render_multitask(s)
    best, seed = s["best"], s["seed"]
    lines = [f"task {s['task']} ({s['metric']}), run {s.get('run_dir', '')}", "", "best prompt:"]
    lines += members_lines(best) or ["    " + line for line in best["prompt"].split("\n")]
    if best.get("label_words") and not best.get("members"):
        lines.append(f"    label words: {', '.join(best['label_words'])}")
    if best.get("soft"):
        lines.append("    (soft prompt: trained vectors prepended; the text above is its nearest-token reading)")
    if options_note(best):
        lines.append(f"    scored with: {options_note(best).strip()}")
    if best.get("text_alone"):  # what pasting the text without its options would score (plain.py)
        lines.append(f"    the text alone: test {fmt_score(best['text_alone']['test'])}")
    lines += [f"  dev  {fmt_score(best['dev'])}", f"  test {fmt_score(best['test'])}",
              f"seed prompt: {one_line(seed['prompt'])}",
              f"  dev  {fmt_score(seed['dev'])}", f"  test {fmt_score(seed['test'])}",
              f"improvement on test: {s['improvement']['test']:+.3f}{paired_note(s.get('paired_test'))}", "",
              render_board(s["leaderboard"])]
    used = s["budget_used"]
    lines.append(f"\nbudget used: {used['candidates']} candidates, {used['evals']} example-evaluations, {used['seconds']:.0f} s")
    return "\n".join(lines)


def paired_note(test: dict | None) -> str:
    """The paired test of best vs seed on the same test examples (summaries from before it: nothing)."""
    from ..stats import format_p

    return f" ({test['test']} p={format_p(test['p_value'])}, {test['detail']})" if test else ""


def render_board(rows: list[dict]) -> str:
    out = [f"{'#':>2}  {'dev':<32} {'strategy':<11} prompt"]
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
@reporting
def show(run_dir, show_lineage, top, as_json, quiet):
    """Print the leaderboard of a finished or interrupted run."""
    from ..store import RunStore

    store = RunStore.open(run_dir)
    summary = store.summary
    board = store.leaderboard()[:top]
    if not board:
        raise PromptSearchError(f"{run_dir}: no candidate has been scored yet")
    out = {"run_dir": str(run_dir), "finished": summary is not None, "leaderboard": board}
    if summary:
        out.update(best=summary["best"], seed=summary["seed"], budget_used=summary["budget_used"])
        if summary.get("multitask"):  # every task's scores beside its own seed (and a single-task best)
            out.update(multitask=summary["multitask"], tasks=summary["tasks"])
    board_text = render_board
    if store.config.get("multitask"):
        from ..multitask_report import render_board as board_text
    text = render_summary({**summary, "leaderboard": board}) if summary else "(unfinished run)\n" + board_text(board)
    if show_lineage:
        chain = store.lineage((summary or {}).get("best", board[0])["id"])
        out["lineage"] = chain
        text += "\n\nlineage of the best prompt (newest first):\n" + "\n".join(
            f"  {c['strategy']:<11} {one_line(c.get('edit') or '-', 28):<28} {one_line(c['prompt'], 70)}{options_note(c)}"
            + "".join(f"\n  {'':<11} {'  with':<28} {one_line(m, 70)}" for m in c.get("mates", ())) for c in chain)
    emit(as_json, out, text)
