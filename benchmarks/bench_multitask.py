"""Universal prompts: one prompt for several tasks, then extended to a further task.

    python benchmarks/bench_multitask.py --threads 1     # sst2 + agnews + trec (1,200 evaluations), then + sentiment (1,500)

1. A universal prompt for ``--tasks`` (each a seeded, class-balanced 48-row dev sample and a seeded 200-row
   test sample: the scoreboard's "full" protocol, so the test rows are the scoreboard's), searched by the
   default strategy chain under ``--max-evals``; per task, test score against the task's own seed prompt.
   Single-task numbers come from the newest ``benchmarks/results/scoreboard-full-YYYY-MM-DD.json`` (same rows, 400 evaluations per
   task): the default chain's winner, and the best strategy's (chosen there on test, so optimistic).
2. ``--extend`` the universal prompt to ``--new-task``: old tasks before/after with CIs and whether they
   stayed within their dev CI (the constraint) and test CI, and the new task's gain over its own seed.

Both runs are kept under ``--runs-dir`` (``promptsearch show``/``report`` read them); a benchmark killed
half-way resumes them when started again. Writes ``benchmarks/results/multitask-YYYY-MM-DD.json`` (today) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__:
    from . import common
else:
    import common



def write_task_dir(task, directory: Path) -> str:
    """A loaded (sub-sampled) task as a task directory, so that runs record it by path and can resume."""
    directory.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test"):
        rows = []
        for ex in task.split(split):
            row = {"id": ex.id, "input": ex.input, "output": ex.output}
            if ex.outputs:
                row["outputs"] = list(ex.outputs)
            if ex.label is not None:
                row["label"] = ex.label
            rows.append(json.dumps(row, ensure_ascii=False))
        common.write_text(directory / f"{split}.jsonl", "\n".join(rows) + "\n")
    meta = {"name": task.name, "kind": task.kind, "metric": task.metric, "seed_prompt": task.seed_prompt,
            "description": task.description}
    if task.label_words:
        meta["label_words"] = list(task.label_words)
    common.write_json(directory / "task.json", meta)
    return str(directory.resolve())


def run_or_resume(config, run_dir: Path, model, scorer) -> dict:
    from promptsearch import runner
    from promptsearch.multitask import load_multitask

    if (run_dir / "summary.json").exists():
        return json.loads((run_dir / "summary.json").read_text())
    resume = (run_dir / "config.json").exists()
    parts = (load_multitask(runner.read_config(_store(run_dir)) if resume else config), model, scorer)
    return runner.run(None if resume else config, run_dir, resume=resume, parts=parts)


def _store(run_dir):
    from promptsearch.store import RunStore

    return RunStore.open(run_dir)


def single_source() -> Path | None:
    """The newest full scoreboard (benchmarks/results/scoreboard-full-DATE.json), None when there is none."""
    try:
        return common.latest("scoreboard-full")
    except FileNotFoundError:
        return None


def scoreboard_single(name: str) -> dict:
    """The scoreboard's single-task numbers for a task (same dev/test rows, 400 evaluations)."""
    path = single_source()
    if path is None:
        return {}
    rows = [r for r in json.loads(path.read_text())["rows"] if r["task"] == name and r.get("status") == "ok"]
    if not rows:
        return {}
    default = next((r for r in rows if r["strategy"] == "default"), None)
    top = max(rows, key=lambda r: (r["best_test"]["score"], -r["evals"]))
    return {"seed_test": rows[0]["seed_test"]["score"],
            "default_test": default["best_test"] if default else None,
            "best_strategy": top["strategy"], "best_test": top["best_test"]}


def task_rows(summary: dict) -> list[dict]:
    out = []
    for t in summary["tasks"]:
        out.append({"task": t["name"], "old": t.get("old", False), "metric": t["metric"],
                    "seed_test": t["seed"]["test"], "start_test": t["start"]["test"], "best_test": t["best"]["test"],
                    "best_dev": t["best"]["dev"], "gain_test": t["gain"]["test"], "paired_test": t["paired_test"],
                    "within_ci": t.get("within_ci"), "change_test": (t.get("change") or {}).get("test"),
                    "single": scoreboard_single(t["name"])})
    return out


def ci(s: dict | None) -> str:
    return "-" if not s else f"{s['score']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]"


def table(universal: list[dict], extended: list[dict]) -> str:
    lines = [f"universal prompt (test, n={'/'.join(str(r['best_test']['n']) for r in universal)}):",
             f"{'task':<10} {'own seed':<22} {'universal best':<22} {'gain':>7} {'p':>7}  {'single default':<22} single best (chosen on test)"]
    for r in universal:
        single = r["single"]
        best = f"{ci(single.get('best_test'))} {single.get('best_strategy') or ''}" if single else "-"
        lines.append(f"{r['task']:<10} {ci(r['seed_test']):<22} {ci(r['best_test']):<22} {r['gain_test']:>+7.3f} "
                     f"{r['paired_test']['p_value']:>7.3g}  {ci(single.get('default_test')):<22} {best}")
    lines += ["", "extended to a new task (test):",
              f"{'task':<10} {'before (start)':<22} {'after':<22} {'change':>7}  within CI dev/test  {'own seed':<22} gain over seed"]
    for r in extended:
        within = f"{'yes' if r['within_ci']['dev'] else 'NO'}/{'yes' if r['within_ci']['test'] else 'NO'}" if r["old"] else "(new)"
        change = f"{r['change_test']:>+7.3f}" if r["old"] else f"{r['best_test']['score'] - r['start_test']['score']:>+7.3f}"
        lines.append(f"{r['task']:<10} {ci(r['start_test']):<22} {ci(r['best_test']):<22} {change}  {within:<19} "
                     f"{ci(r['seed_test']):<22} {r['gain_test']:+.3f}")
    return "\n".join(lines)


def rule(summary: dict) -> str:
    """The best candidate's demonstration rule, if any (each task's rows shown its own task's train rows)."""
    demos = summary["best"].get("demos")
    return f" + demos={demos} (per task)" if demos else ""


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default="sst2,agnews,trec")
    p.add_argument("--new-task", default="sentiment")
    p.add_argument("--dev", type=int, default=48)
    p.add_argument("--test", type=int, default=200)
    p.add_argument("--max-evals", type=int, default=1200, help="The universal search's budget (example-evaluations).")
    p.add_argument("--extend-evals", type=int, default=1500, help="The extension's budget.")
    p.add_argument("--strategy", action="append", default=None, help="Strategies (default: the runner's chain).")
    p.add_argument("--objective", default="mean", choices=["mean", "min"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--runs-dir", default="runs/bench-multitask")
    p.add_argument("--extend-run", default="extended", help="The extension's run folder under --runs-dir (another name "
                   "with another --extend-evals extends the same universal run again).")
    p.add_argument("--out", default=str(common.result_path("multitask")))
    common.add_data_argument(p)
    args = p.parse_args(argv)

    import torch

    from promptsearch import runner
    from promptsearch.models.local import FrozenModel
    from promptsearch.multitask import multitask_config
    from promptsearch.scoring import Scorer

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.monotonic()
    runs = Path(args.runs_dir)
    data = common.data_root(args.data)
    names = args.tasks.split(",")
    dirs = [write_task_dir(common.load_bench_task(n, args.dev, args.test, data, args.seed), runs / "tasks" / n)
            for n in names + [args.new_task]]
    strategies = args.strategy or list(runner.DEFAULT_STRATEGIES)
    model = FrozenModel.load()
    scorer = Scorer(model)  # shared by both runs: the extension finds the start prompt's old scores cached

    section = multitask_config(dirs[:-1], args.objective, None, [], None, strategies)
    config = runner.make_config(task=dirs[0], strategies=strategies, multitask=section, seed=args.seed,
                                budget={"max_evals": args.max_evals, "max_seconds": None})
    t0 = time.monotonic()
    universal = run_or_resume(config, runs / "universal", model, scorer)
    t1 = time.monotonic()
    section = multitask_config([dirs[-1]], args.objective, str(runs / "universal"), [], None, strategies)
    config = runner.make_config(task=section["tasks"][0], strategies=strategies, multitask=section, seed=args.seed,
                                budget={"max_evals": args.extend_evals, "max_seconds": None})
    extended = run_or_resume(config, runs / args.extend_run, model, scorer)
    t2 = time.monotonic()
    out = {"command": "python benchmarks/bench_multitask.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "machine": common.machine(args.threads),
           "model": model.name, "tasks": names, "new_task": args.new_task, "dev": args.dev, "test": args.test,
           "strategies": strategies, "objective": args.objective,
           "universal": {"run_dir": str(runs / "universal"), "max_evals": args.max_evals, "prompt": universal["best"]["prompt"],
                         "demos": universal["best"].get("demos"),
                         "start_prompt": universal["seed"]["prompt"], "objective_dev": universal["best"]["dev"],
                         "objective_test": universal["best"]["test"], "budget_used": universal["budget_used"],
                         "wall_seconds": round(t1 - t0, 1), "tasks": task_rows(universal)},
           "extended": {"run_dir": str(runs / args.extend_run), "max_evals": args.extend_evals, "prompt": extended["best"]["prompt"],
                        "demos": extended["best"].get("demos"),
                        "objective_dev": extended["best"]["dev"], "objective_test": extended["best"]["test"],
                        "budget_used": extended["budget_used"], "wall_seconds": round(t2 - t1, 1),
                        "tasks": task_rows(extended)},
           "single_task_source": f"{single_source()} (same dev/test rows; 400 evaluations per task)",
           "wall_seconds": round(time.monotonic() - started, 1)}
    text = table(out["universal"]["tasks"], out["extended"]["tasks"])
    text += (f"\n\nuniversal prompt: {universal['best']['prompt']!r}{rule(universal)}\n"
             f"extended prompt: {extended['best']['prompt']!r}{rule(extended)}\n"
             f"evaluations: universal {universal['budget_used']['evals']}, extension {extended['budget_used']['evals']}; "
             f"search seconds: universal {universal['budget_used']['seconds']:.0f}, "
             f"extension {extended['budget_used']['seconds']:.0f}")
    out["table"] = text
    common.write_json(args.out, out)
    print(text)
    return out


if __name__ == "__main__":
    main()
