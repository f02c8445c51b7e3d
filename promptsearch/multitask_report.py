"""How a multi-task run is shown: per task, its own seed, the start prompt (the prompt an extension
started from), the universal best and, where given, a single-task run's best; text and Markdown."""

from __future__ import annotations

from pathlib import Path

from .errors import PromptSearchError
from .format import RANKED_BY, budget_line, fmt, fmt_score, md_cell, one_line, options_note


def single_task_best(run_dir: str, task) -> dict:
    """The best prompt of a finished single-task run on the same task, with its dev and test scores."""
    from .store import RunStore

    store = RunStore.open(run_dir)
    summary, config = store.summary, store.config
    if config.get("task") is not None and not isinstance(config["task"], str):  # this module sits below runner
        raise PromptSearchError(f"{store.dir / 'config.json'}: field 'task' must name a task (a bundled task or a folder)")
    best = (summary or {}).get("best", {})
    if summary is not None and not (isinstance(best, dict) and isinstance(best.get("prompt"), str)
                                    and all(isinstance(best.get(s), dict) for s in ("dev", "test"))):
        raise PromptSearchError(f"{store.dir / 'summary.json'}: field 'best' must be an object with a 'prompt' and "
                                "'dev' and 'test' scores")
    if summary is None:
        raise PromptSearchError(f"--compare-run {task.name}={run_dir}: the run has not finished")
    if config.get("multitask"):
        raise PromptSearchError(f"--compare-run {task.name}={run_dir}: a multi-task run, not a single-task one")
    from .task import resolve_task_dir

    try:
        theirs = resolve_task_dir(config.get("task")).resolve()
    except PromptSearchError:
        theirs = None
    if theirs != Path(task.source).resolve():
        raise PromptSearchError(f"--compare-run {task.name}={run_dir}: that run searched {config.get('task')}, not {task.source}")
    best = summary["best"]
    return {"run_dir": str(run_dir), "prompt": best["prompt"], "label_words": best.get("label_words"),
            "dev": best["dev"], "test": best["test"]}


def render_summary(s: dict) -> str:
    mt = s["multitask"]
    head = f"universal prompt for {', '.join(mt['tasks'])} (objective: {mt['objective']} gain over each task's seed)"
    lines = [head, f"run {s.get('run_dir', '')}", "", "best prompt:"]
    lines += ["    " + line for line in s["best"]["prompt"].split("\n")]
    if s["best"].get("demos"):  # scored task by task: each row is shown rows of its own task's train
        lines += [f"  demonstrations: {s['best']['demos']}, each task's rows from its own train split"]
    lines += [f"  objective dev  {objective_text(s['best']['dev'])}", f"  objective test {objective_text(s['best']['test'])}"]
    if mt.get("old_tasks"):
        start = s["seed"].get("demos")
        lines += ["start prompt (extended from): " + one_line(s["seed"]["prompt"]) + (f"  + demos={start}" if start else "")]
    else:
        lines += ["start prompt: " + one_line(s["seed"]["prompt"])]
    lines += ["", task_table(s["tasks"])]
    if mt.get("old_tasks"):
        lines += ["", extension_lines(s["tasks"])]
    lines += ["", render_board(s["leaderboard"])]
    lines.append("\n" + budget_line(s))
    if s.get("scoring_note"):
        lines.append(f"note: {s['scoring_note']}")
    return "\n".join(lines)


def objective_text(score: dict) -> str:
    value = f"{score['objective']:+.3f} [{score['ci_low'] + (score['objective'] - score['score']):+.3f}, " \
            f"{score['ci_high'] + (score['objective'] - score['score']):+.3f}] n={score['n']}"
    return value + ("" if score.get("feasible", True) else "  (infeasible: an old task fell below its CI)")


def task_table(tasks: list[dict]) -> str:
    """One block per task: seed, start (when it differs), best and single-task best, dev and test."""
    out = []
    for t in tasks:
        role = " (old task)" if t.get("old") else ""
        out.append(f"{t['name']}{role} ({t['metric']}); gain on test {t['gain']['test']:+.3f} "
                   f"({t['paired_test']['test']} p={t['paired_test']['p_value']:.3g})")
        rows = [("own seed", t["seed"]), ("start", t["start"]), ("universal best", t["best"])]
        if t.get("single_task"):
            rows.append(("single-task best", t["single_task"]))
        for label, r in rows:
            out.append(f"    {label:<17} dev {fmt_score(r['dev']):<30} test {fmt_score(r['test'])}")
    return "\n".join(out)


def extension_lines(tasks: list[dict]) -> str:
    out = ["adding a task: old tasks before -> after (test), within the 95% CI of before on dev / test:"]
    for t in tasks:
        if t.get("old"):
            out.append(f"    {t['name']:<14} {fmt(t['start']['test'], ci=True)} -> {fmt(t['best']['test'], ci=True)} "
                       f"({t['change']['test']:+.3f}); within CI: dev {yes(t['within_ci']['dev'])}, test {yes(t['within_ci']['test'])}")
    for t in tasks:
        if not t.get("old"):
            out.append(f"    new {t['name']:<10} own seed {fmt(t['seed']['test'], ci=True)}, start {fmt(t['start']['test'], ci=True)}"
                       f" -> {fmt(t['best']['test'], ci=True)} (gain over its seed {t['gain']['test']:+.3f})")
    return "\n".join(out)


def yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def render_board(rows: list[dict]) -> str:
    out = [RANKED_BY.format(what="the objective") + "; `show --full --rank N` prints a prompt whole",
           f"{'#':>2}  {'objective (dev)':<16} {'per task (dev)':<40} {'strategy':<10} prompt"]
    for r in rows:
        dev = r["dev"]
        per = " ".join(f"{name}={d['score']['score']:.2f}" for name, d in (dev.get("tasks") or {}).items())
        flag = "" if dev.get("feasible", True) else " x"
        out.append(f"{r['rank']:>2}  {dev.get('objective', dev['score']):+.3f} n={dev['n']:<5}{flag:<2} {per:<40} "
                   f"{r.get('strategy', ''):<10} {one_line(r['prompt'], 70)}{options_note(r)}")  # demos tell ranks apart (#30)
    return "\n".join(out)


def markdown_tasks(run_name: str, s: dict) -> str:
    """The per-task table of a finished multi-task run, for report.md."""
    lines = [f"**{md_cell(run_name)}**: universal prompt `{md_cell(s['best']['prompt'], 100)}` "
             f"({s['multitask']['objective']} gain)", "",
             "| task | own seed test | start test | universal best dev | universal best test [95% CI] | gain (test) | single-task best test |",
             "|---|---|---|---|---|---|---|"]
    for t in s["tasks"]:
        single = fmt((t.get("single_task") or {}).get("test"), ci=True)
        lines.append(f"| {md_cell(t['name'])}{' (old)' if t.get('old') else ''} | {fmt(t['seed']['test'], ci=True)} | "
                     f"{fmt(t['start']['test'], ci=True)} | {fmt(t['best']['dev'], ci=True, n=True)} | "
                     f"{fmt(t['best']['test'], ci=True, n=True)} | {t['gain']['test']:+.3f} | {single} |")
    return "\n".join(lines)
