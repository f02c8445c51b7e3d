"""How a scoreboard is shown: the Markdown page, the terminal table and the figure (``scoreboard.py`` makes it)."""

from __future__ import annotations

import os
from pathlib import Path

from promptsearch.format import fmt, md_cell, one_line

if __package__:  # imported as benchmarks.scoreboard_render (python -m, the tests)
    from . import common
else:  # python benchmarks/run_all.py: benchmarks/ is first on the path
    import common


def markdown(result: dict, prompt_width: int = 70) -> str:
    lim = result["limits"]
    lines = [f"# promptsearch scoreboard ({result['mode']})", "",
             f"Command: `{result['command']}`  ",
             (f"Date: {result['date']}; machine: {result['machine']['summary']}; model: {result['model']}; "
              f"total wall time {result['wall_seconds'] / 60:.1f} min.  "),
             (f"Limits: dev = {lim['dev'] or 'all'} rows (seeded sample, class-balanced for classification), test = "
              f"{lim['test'] or 'all'} rows (seeded uniform sample) of each task; budget "
              f"{lim['max_evals']} example-evaluations per run (racing min {lim['racing']['min_examples']}, "
              f"eta {lim['racing']['eta']}; top-{lim['top_k']} final check on all of dev); seed {lim['seed']}; "
              f"no time limit. Scorer: {result['scorer']}"), "",
             "| task | strategy | seed test | best test [95% CI] | Δ test | evals | wall s | best prompt |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if r["status"] != "ok":
            what = f"{r['status']}: {r['error']}"
            lines.append(f"| {r['task']} | {r['strategy']} | - | {md_cell(what, 90)} | - | {r.get('evals', '-')} | "
                         f"{r.get('wall_seconds', '-')} | - |")
            continue
        lines.append(f"| {r['task']} | {r['strategy']} | {fmt(r['seed_test'])} | {fmt(r['best_test'], ci=True)} | "
                     f"{r['gain_test']:+.3f} | {r['evals']} | {r['wall_seconds']:.0f} | "
                     f"`{md_cell(r['best_prompt'], prompt_width)}` |")
    lines += ["", "Best strategy per task (by test score of its winner; gain over the seed prompt's test score):", ""]
    for b in result["best_per_task"]:
        if b["strategy"] is None:
            lines.append(f"- {b['task']}: no strategy finished")
        else:
            lines.append(f"- {b['task']}: **{b['strategy']}** {b['best_test']:.3f} vs seed {b['seed_test']:.3f} "
                         f"({b['gain']:+.3f})" + (f"; tied with {', '.join(b['tied_with'])}" if b["tied_with"] else ""))
    if result.get("means"):
        lines += ["", "Mean test score over tasks (winner vs the seed prompt, the zero-shot instruction, on the same tasks):",
                  ""]
        for spec, m in result["means"].items():
            ratio = f" ({m['ratio']:.2f}x)" if m.get("ratio") else ""
            lines.append(f"- {spec}: {m['best_test']:.3f} vs seed {m['seed_test']:.3f} on {m['tasks']} tasks{ratio}")
    gaps = result.get("default_vs_best")
    if gaps:
        dev = (f"; on dev (the best dev score of any single strategy), within on {gaps['dev_met']} of {gaps['dev_n']}, "
               f"mean gap {gaps['mean_dev_gap']:+.3f}" if gaps.get("dev_n") else "")
        lines += ["", f"The default run against the best single strategy ({', '.join(gaps['singles'])}; chosen on test) per task: "
                  f"within {gaps['within']:.2f} on **{gaps['met']} of {gaps['n']}** tasks, mean gap "
                  f"{gaps['mean_gap']:+.3f}" + (f"; further behind on {', '.join(gaps['behind'])}" if gaps["behind"] else "")
                  + dev + ".", "", "| task | default test | best single test | gap | dev gap |", "|---|---|---|---|---|"]
        lines += [f"| {t['task']} | {t['default']:.3f} | {t['best']:.3f} {t['best_single']} | {t['gap']:+.3f} | "
                  + (f"{t['dev_gap']:+.3f} |" if "dev_gap" in t else "- |") for t in gaps["tasks"]]
    if result.get("figure"):
        lines += ["", f"![best-so-far dev score against example-evaluations]({Path(result['figure']).name})"]
    return "\n".join(lines) + "\n"


def text_table(rows: list[dict]) -> str:
    out = [(f"{'task':<20} {'strategy':<12} {'status':<7} {'seed':>6} {'best':>6} {'95% CI':>15} {'gain':>7} "
            f"{'evals':>6} {'secs':>6}  best prompt")]
    for r in rows:
        if r["status"] != "ok":
            out.append(f"{r['task']:<20} {r['strategy']:<12} {r['status']:<7} {one_line(r['error'], 100)}")
            continue
        b = r["best_test"]
        ci = f"[{b['ci_low']:.3f},{b['ci_high']:.3f}]"
        out.append(f"{r['task']:<20} {r['strategy']:<12} {'ok':<7} {r['seed_test']['score']:>6.3f} {b['score']:>6.3f} "
                   f"{ci:>15} {r['gain_test']:>+7.3f} {r['evals']:>6} {r['wall_seconds']:>6.0f}  "
                   f"{one_line(r['best_prompt'], 70)!r}")
    return "\n".join(out)


def plot(rows: list[dict], path: Path, title: str) -> Path | None:
    """``plot_compare`` over the rows' run directories; None when no run has a curve."""
    from promptsearch import report
    from promptsearch.errors import PromptSearchError

    runs, labels = [], []
    for r in rows:
        if r.get("run_dir"):
            try:
                runs.append(report.load_run(r["run_dir"]))
                labels.append(r["strategy"])
            except PromptSearchError:  # a run that failed before scoring anything has no curve
                continue
    if not runs:
        return None
    return report.plot_compare(runs, path, labels=labels, title=title, columns=3 if len(runs) > 1 else 1)


def write_results(result: dict, prefix: Path) -> None:
    """``prefix``.json, .md and .png, each written under a temporary name first, so a kill leaves the old ones."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    fig = plot(result["rows"], prefix.with_suffix(".png.tmp"),
               f"best-so-far dev score vs example-evaluations ({result['mode']}, {result['model']}, "
               f"{result['limits']['max_evals']} evals per run)")
    if fig:
        os.replace(fig, prefix.with_suffix(".png"))
        result["figure"] = str(prefix.with_suffix(".png"))
    common.write_json(prefix.with_suffix(".json"), result)
    common.write_text(prefix.with_suffix(".md"), markdown(result))
