"""The search loop on real data: what racing saves, and what templates + clarify find on SST-2.

    python benchmarks/bench_search.py [--quick]

1. Racing vs full dev: the same strategies and seed, once with racing (successive halving on dev)
   and once scoring every candidate on all of dev; forward passes (example-evaluations) used and
   the test score of each winner. Target: >= 4x fewer passes for <= 1 point lower test accuracy.
2. SST-2 with ``--strategy templates --strategy clarify`` against the task's seed prompt, full
   dev for selection and the full test set reported once.
Prints tables and writes benchmarks/results/search-YYYY-MM-DD.json (today).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

if __package__:  # python -m benchmarks.bench_search
    from . import common
else:  # python benchmarks/bench_search.py: benchmarks/ is first on the path
    import common


def run_one(task, parts, **config):
    from promptsearch import runner

    cfg = runner.make_config(task=task.source, **config)
    with tempfile.TemporaryDirectory() as d:
        started = time.monotonic()
        s = runner.run(cfg, Path(d) / "run", parts=(task, *parts))
        s["wall_seconds"] = round(time.monotonic() - started, 1)
    return s


def row(name, s):
    return {"setting": name, "seed_test": s["seed"]["test"]["score"], "best_test": s["best"]["test"]["score"],
            "best_test_ci": [s["best"]["test"]["ci_low"], s["best"]["test"]["ci_high"]], "test_n": s["best"]["test"]["n"],
            "best_dev": s["best"]["dev"]["score"], "evals": s["budget_used"]["evals"],
            "candidates": s["budget_used"]["candidates"], "seconds": s["wall_seconds"], "best_prompt": s["best"]["prompt"],
            "label_words": s["best"]["label_words"]}


def print_table(title, rows):
    print(f"\n{title}")
    print(f"{'setting':<22} {'cands':>5} {'evals':>7} {'secs':>6} {'seed test':>9} {'best test':>9} {'95% CI':>15}  best prompt")
    for r in rows:
        ci = f"[{r['best_test_ci'][0]:.3f},{r['best_test_ci'][1]:.3f}]"
        print(f"{r['setting']:<22} {r['candidates']:>5} {r['evals']:>7} {r['seconds']:>6.0f} {r['seed_test']:>9.3f} "
              f"{r['best_test']:>9.3f} {ci:>15}  {r['best_prompt'][:60]!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="Smaller dev/test and budgets (a few minutes).")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    ap.add_argument("--dev", type=int, default=0, help="dev rows of the racing comparison (0: all 872; --quick: 120)")
    ap.add_argument("--out", default=str(common.result_path("search")))
    common.add_data_argument(ap)
    args = ap.parse_args()

    import torch

    from promptsearch.models.local import FrozenModel
    from promptsearch.scoring import Scorer
    from promptsearch.task import load_task

    if args.threads:
        torch.set_num_threads(args.threads)
    machine = common.machine()  # the load average before the benchmark adds its own
    model = FrozenModel.load()
    sst2 = load_task(str(common.data_root(args.data) / "sst2"))
    dev_n, test_n = (120, 300) if args.quick else (args.dev or len(sst2.dev), len(sst2.test))
    strategies = ["templates"]

    # 1. racing vs full dev: same candidates (templates proposes a fixed set), different evaluation
    racing_task = replace(sst2, dev=sst2.dev[:dev_n], test=sst2.test[:test_n])
    budget = {"max_evals": None, "max_seconds": None, "max_candidates": 400}
    with_racing = run_one(racing_task, (model, Scorer(model)), strategies=strategies, budget=budget)
    without = run_one(racing_task, (model, Scorer(model)), strategies=strategies, budget=budget,
                      racing={"min_examples": 10**9})
    racing_rows = [row("racing", with_racing), row("full dev", without)]
    saving = without["budget_used"]["evals"] / with_racing["budget_used"]["evals"]
    print_table(f"1. racing vs scoring every candidate on all {dev_n} dev rows (SST-2, templates)", racing_rows)
    print(f"racing used {saving:.2f}x fewer example-evaluations; test accuracy difference "
          f"{with_racing['best']['test']['score'] - without['best']['test']['score']:+.3f}")

    # 2. templates + clarify on SST-2 against the seed prompt
    task = sst2 if not args.quick else replace(sst2, dev=sst2.dev[:200], test=sst2.test[:test_n])
    chained = run_one(task, (model, Scorer(model)), strategies=["templates", "clarify"],
                      budget={"max_evals": 3000 if args.quick else 8000, "max_seconds": None})
    chain_rows = [row("templates+clarify", chained)]
    print_table(f"2. SST-2: templates + clarify vs the seed prompt (dev {len(task.dev)}, test {len(task.test)})", chain_rows)

    out = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine,
           "model": model.name, "quick": args.quick,
           "device": model.device_name,
           "racing": {"dev_n": dev_n, "rows": racing_rows, "evals_saving": saving},
           "sst2_templates_clarify": {"dev_n": len(task.dev), "rows": chain_rows}}
    common.write_json(args.out, out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
