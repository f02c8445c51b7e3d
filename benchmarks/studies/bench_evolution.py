"""Evolution vs template enumeration vs clarify, each alone from the seed prompt, same budget.

Kind: method study (benchmarks/studies/): run once to choose a default or an option; its numbers describe
the code of the day it ran (benchmarks/RESULTS.md names the commit), and it is not rerun as the code changes.

    python benchmarks/studies/bench_evolution.py --tasks sst2,antonyms,singular_to_plural,first_word_letter,letters_list \
        --max-evals 1500 --dev-limit 200 --test-limit 500

Every strategy starts from the task's seed prompt (instruction-induction tasks: the first human
annotation) with the same budget of example-evaluations on dev (racing included); the winner and the
seed are then scored on test. One scorer per task is shared by the runs, so a prompt two runs both
try is computed once (budgets are counted per run, so this changes wall time only). Prints a table
and writes JSON (default benchmarks/results/evolution-YYYY-MM-DD.json, dated today).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

if __package__:  # benchmarks.studies.bench_evolution: the tests, python -m
    from .. import common
else:  # python benchmarks/studies/bench_evolution.py
    import _benchmarks  # noqa: F401  (puts benchmarks/ on the path)
    import common


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default="sst2,antonyms,singular_to_plural,first_word_letter,letters_list")
    ap.add_argument("--strategies", default="evolution,templates,clarify")
    ap.add_argument("--max-evals", type=int, default=1500)
    ap.add_argument("--dev-limit", type=int, default=200, help="Use the first N dev rows (SST-2 dev has 872).")
    ap.add_argument("--test-limit", type=int, default=500, help="Score on the first N test rows (SST-2 test has 1821).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the benchmark machine is shared).")
    ap.add_argument("--options", default='{"evolution": {"library_seeds": 4, "patience": 3}}',
                    help="JSON: per-strategy options, as -o STRATEGY.PARAM=VALUE would give.")
    ap.add_argument("--out", default=str(common.result_path("evolution")))
    common.add_data_argument(ap)
    ap.add_argument("--table", nargs="+", default=None, metavar="JSON",
                    help="Only print the side-by-side table of earlier result files (no runs).")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.table:
        rows = [r for f in args.table for r in json.loads(Path(f).read_text())["rows"]]
        print(table(rows))
        return

    import torch

    from promptsearch import runner
    from promptsearch.models.local import FrozenModel
    from promptsearch.scoring import Scorer
    from promptsearch.store import RunStore
    from promptsearch.task import load_task

    torch.set_num_threads(args.threads)
    model = FrozenModel.load()
    rows = []
    tasks, scorers = {}, {}
    for name in args.tasks.split(","):
        path = common.task_dir(name, common.data_root(args.data))
        task = load_task(str(path), seed=args.seed)
        tasks[name] = (path, replace(task, dev=task.dev[: args.dev_limit], test=task.test[: args.test_limit]))
        scorers[name] = Scorer(model, batch_size=16)
    options = json.loads(args.options)
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in args.strategies.split(","):  # strategies outer: a cut-short run still compares tasks
            for name, (path, task) in tasks.items():
                rows.append(one_run(args, runner, RunStore, model, scorers[name], name, path, task, strategy,
                                    options.get(strategy, {}), Path(tmp)))
                r = rows[-1]
                print(f"{name:<20} {strategy:<10} seed {r['seed_test']:.3f} -> best {r['best_test']:.3f} "
                      f"({r['test_gain']:+.3f}) dev {r['best_dev']:.3f}  evals {r['evals_used']:>5} "
                      f"{r['seconds']:>6.0f}s  {r['best_prompt']!r}", flush=True)
                write(args, model, rows)
    print()
    print(table(rows))
    print(f"\nwrote {args.out}")


def table(rows: list[dict]) -> str:
    """Test score of each strategy's best prompt per task, seed first; budget used in brackets."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    lines = [f"{'task':<20} {'seed':>6} " + " ".join(f"{s:>18}" for s in strategies)]
    for name in tasks:
        mine = {r["strategy"]: r for r in rows if r["task"] == name}
        seed = next(iter(mine.values()))["seed_test"]
        cells = [f"{mine[s]['best_test']:.3f} ({mine[s]['evals_used']:>4} ev)" if s in mine else "-" for s in strategies]
        lines.append(f"{name:<20} {seed:>6.3f} " + " ".join(f"{c:>18}" for c in cells))
    lines.append("test score of the best prompt found (example-evaluations used on dev, racing and model calls included)")
    return "\n".join(lines)


def one_run(args, runner, RunStore, model, scorer, name, path, task, strategy, options, tmp: Path) -> dict:
    config = runner.make_config(task=str(path), strategies=[strategy], seed=args.seed,
                                options={strategy: options} if options else {},
                                budget={"max_evals": args.max_evals, "max_seconds": None, "max_candidates": None})
    run_dir = tmp / f"{name}-{strategy}"
    started = time.monotonic()
    holder, original = {}, runner.build_search

    def capture(*a, **k):
        holder["search"] = original(*a, **k)
        return holder["search"]

    runner.build_search = capture  # to read the strategy's counters after the run
    try:
        s = runner.run(config, run_dir, parts=(task, model, scorer))
    finally:
        runner.build_search = original
    strat = holder["search"].strategies[0]
    chain = RunStore.open(run_dir).lineage(s["best"]["id"])
    row = {
        "task": name, "strategy": strategy, "options": options, "metric": s["metric"],
        "n_dev": len(task.dev), "n_test": len(task.test),
        "seed_test": s["seed"]["test"]["score"], "best_test": s["best"]["test"]["score"],
        "test_gain": s["improvement"]["test"], "seed_dev": s["seed"]["dev"]["score"],
        "best_dev": s["best"]["dev"]["score"], "best_test_ci": [s["best"]["test"]["ci_low"], s["best"]["test"]["ci_high"]],
        "evals_used": s["budget_used"]["evals"], "charged": s["budget_used"]["charged"],
        "candidates": s["budget_used"]["candidates"], "seconds": round(time.monotonic() - started, 1),
        "best_prompt": s["best"]["prompt"], "best_label_words": s["best"]["label_words"],
        "seed_prompt": s["seed"]["prompt"],
        "lineage": [{"strategy": c["strategy"], "edit": c["edit"], "prompt": c["prompt"]} for c in chain],
    }
    if strategy == "evolution":
        row["generations"] = strat.generation
        row["model_proposals"] = dict(strat.meta_stats)
    return row


def write(args, model, rows) -> None:
    out = {"model": model.name, "max_evals": args.max_evals, "dev_limit": args.dev_limit,
           "test_limit": args.test_limit, "seed": args.seed, "options": json.loads(args.options), "rows": rows}
    common.write_json(args.out, out)


if __name__ == "__main__":
    main()
