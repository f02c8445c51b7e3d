"""Soft-prompt tuning vs searched hard prompts on SST-2, 16 shots per class (RLPrompt protocol).

Kind: method study (benchmarks/studies/): run once to choose a default or an option; its numbers describe
the code of the day it ran (benchmarks/RESULTS.md names the commit), and it is not rerun as the code changes.

For each of the 5 few-shot seeds: train and dev come from ``sst2/fewshot16/seed<S>/``, test is the
full SST-2 test set (1821 rows). Two searches per seed, on one shared scorer and model:

1. ``soft-prompt`` alone: trains the vectors (template = the task's seed prompt), then the search
   scores the soft prompt and its nearest-token reading on dev like any candidate.
2. ``templates`` + ``clarify`` with an evaluation budget equal to what run 1 used in total
   (training charged at 3 evaluations per train example, dev checks, dev scoring).

Both are evaluated on test with the same scorer and metric: the soft prompt, its text reading, the
hard search's winner and the seed prompt. Prints a table; writes JSON to
``benchmarks/results/soft_prompt-YYYY-MM-DD.json`` (today) (``--out`` to change).

    python benchmarks/studies/bench_soft_prompt.py                # all 5 seeds, full test set
    python benchmarks/studies/bench_soft_prompt.py --seeds 13 --test-sample 200   # a quick look
    # split over processes, then merge their JSON files:
    python benchmarks/studies/bench_soft_prompt.py --seeds 13 21 42 --out a.json &
    python benchmarks/studies/bench_soft_prompt.py --seeds 87 100 --out b.json
    python benchmarks/studies/bench_soft_prompt.py --merge a.json b.json
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

if __package__:  # benchmarks.studies.bench_soft_prompt: the tests, python -m
    from .. import common
else:  # python benchmarks/studies/bench_soft_prompt.py
    import _benchmarks  # noqa: F401  (puts benchmarks/ on the path)
    import common

SEEDS = (13, 21, 42, 87, 100)


def make_task(seed: int, test_sample: int | None, data: Path):
    """SST-2 16-shot (``data``: the shared data folder)."""
    from promptsearch.task import Task, default_seed_prompt, read_jsonl

    sst2 = data / "sst2"
    words = tuple(json.loads((sst2 / "labels.json").read_text()))
    split = sst2 / "fewshot16" / f"seed{seed}"
    test = read_jsonl(sst2 / "test.jsonl", words)
    if test_sample and test_sample < len(test):  # the same seeded sample for every seed and method
        import random

        test = tuple(test[i] for i in sorted(random.Random(0).sample(range(len(test)), test_sample)))
    return Task(name=f"sst2-16shot-seed{seed}", kind="classification", train=read_jsonl(split / "train.jsonl", words),
                dev=read_jsonl(split / "dev.jsonl", words), test=test, metric="accuracy",
                seed_prompt=default_seed_prompt("classification", ""), label_words=words, source=str(split))


def run_seed(seed: int, scorer, args) -> dict:
    from promptsearch.search import Budget, Racing, Search
    from promptsearch.strategy import make

    task = make_task(seed, args.test_sample, common.data_root(args.data))
    racing = Racing(min_examples=16, eta=3)
    options = {"n_virtual_tokens": args.n_virtual_tokens, "init": args.init, "lr": args.lr, "epochs": args.epochs,
               "batch_size": args.batch_size, "patience": args.patience}

    t0 = time.monotonic()
    soft_search = Search(task, scorer, [make("soft-prompt", options)], Budget(max_evals=args.max_evals), seed=seed,
                         racing=racing)
    soft_summary = soft_search.run()
    soft_seconds = time.monotonic() - t0
    board = soft_search.leaderboard()
    soft = next(t.candidate for t in board if t.candidate.soft)
    text = next(t.candidate for t in board if t.candidate.strategy == "soft-prompt" and not t.candidate.soft)
    soft_eval = soft_search.describe(soft, test=True)
    text_eval = soft_search.describe(text, test=True) if args.text_on_test else soft_search.describe(text)
    evals = soft_search.evals_used

    t0 = time.monotonic()
    hard_search = Search(task, scorer, [make("templates"), make("clarify")], Budget(max_evals=evals), seed=seed,
                         racing=racing)
    hard_summary = hard_search.run()
    hard_seconds = time.monotonic() - t0

    row = {
        "seed": seed, "n_train": len(task.train), "n_dev": len(task.dev), "n_test": len(task.test),
        "seed_prompt": {"prompt": task.seed_prompt, "test": soft_summary["seed"]["test"]["score"]},
        "soft": {"test": soft_eval["test"]["score"], "dev": soft_eval["dev"]["score"], "soft_id": soft.soft,
                 "edit": soft.edit, "evals_used": evals, "charged": soft_search.charged,
                 "seconds": round(soft_seconds, 1)},
        "soft_text": {"prompt": text.prompt, "dev": text_eval["dev"]["score"],
                      "test": text_eval["test"]["score"] if "test" in text_eval else None},
        "hard": {"prompt": hard_summary["best"]["prompt"], "label_words": hard_summary["best"]["label_words"],
                 "strategy": hard_summary["best"]["strategy"], "dev": hard_summary["best"]["dev"]["score"],
                 "test": hard_summary["best"]["test"]["score"], "evals_used": hard_search.evals_used,
                 "budget": evals, "candidates": len(hard_search.trials), "seconds": round(hard_seconds, 1)},
    }
    return row


def spread(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--test-sample", type=int, default=None,
                   help="score a seeded random sample of N test rows (same rows for all seeds); default all 1821")
    p.add_argument("--max-evals", type=int, default=6000, help="evaluation budget of the soft-prompt run")
    p.add_argument("--n-virtual-tokens", type=int, default=8)
    p.add_argument("--init", default="text")
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--patience", type=int, default=4)
    p.add_argument("--no-text-on-test", dest="text_on_test", action="store_false",
                   help="score the nearest-token reading on dev only")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is faster on a busy machine)")
    p.add_argument("--out", default=str(common.result_path("soft_prompt")))
    common.add_data_argument(p)
    p.add_argument("--merge", nargs="+", metavar="JSON", help="merge result files of earlier runs and exit")
    args = p.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    import torch

    from promptsearch.models.local import FrozenModel
    from promptsearch.scoring import Scorer

    if args.threads:
        torch.set_num_threads(args.threads)
    machine = common.machine()  # the load average before the benchmark adds its own
    model = FrozenModel.load()
    scorer = Scorer(model, batch_size=16)
    started = time.monotonic()
    rows = []
    for seed in args.seeds:
        row = run_seed(seed, scorer, args)
        rows.append(row)
        print(f"seed {seed:>3}: soft {row['soft']['test']:.3f}  text {_fmt(row['soft_text']['test'])}  "
              f"hard {row['hard']['test']:.3f}  seed prompt {row['seed_prompt']['test']:.3f}  "
              f"(evals soft {row['soft']['evals_used']}, hard {row['hard']['evals_used']}; "
              f"{row['soft']['seconds']:.0f}s / {row['hard']['seconds']:.0f}s)", flush=True)
        write(args, argv, model, machine, rows, started)
    return 0


def write(args, argv, model, machine: dict, rows: list[dict], started: float) -> None:
    """Write the results so far (after every seed, so a cut run keeps what it finished)."""
    result = {
        "benchmark": "soft-prompt vs templates+clarify, SST-2 16-shot (RLPrompt splits)",
        "command": "python benchmarks/studies/bench_soft_prompt.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": model.name, "settings": {k: v for k, v in vars(args).items() if k not in ("out", "merge", "data")},
        "budget_rule": "hard-prompt search budget (example-evaluations) = total evals used by the soft-prompt run "
                       "(3 per train example per epoch for forward+backward, dev checks, dev scoring)",
        "seeds": rows, "seconds": round(time.monotonic() - started, 1),
        "machine": machine,
        "device": model.device_name,
    }
    result["summary"] = report(rows)
    common.write_json(args.out, result, indent=1)
    print(f"wrote {args.out}")


def report(rows: list[dict]) -> dict:
    """Mean and spread over seeds of each method's test accuracy; printed as a table."""
    summary = {
        "soft_prompt": spread([r["soft"]["test"] for r in rows]),
        "soft_prompt_text": spread([r["soft_text"]["test"] for r in rows]),
        "hard_templates_clarify": spread([r["hard"]["test"] for r in rows]),
        "seed_prompt": spread([r["seed_prompt"]["test"] for r in rows]),
    }
    print()
    print(f"SST-2 16-shot, test n={rows[0]['n_test']}, seeds {[r['seed'] for r in rows]}: "
          "accuracy mean ± std [min, max]")
    for name, s in summary.items():
        if s["mean"] is not None:
            print(f"  {name:<24} {s['mean']:.3f} ± {s['std']:.3f}  [{s['min']:.3f}, {s['max']:.3f}]")
    return summary


def merge(paths: list[str], out: str) -> int:
    """Combine result files of runs over disjoint seeds (same settings) into one."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    settings = [{k: v for k, v in part["settings"].items() if k != "seeds"} for part in parts]
    if any(s != settings[0] for s in settings):
        raise SystemExit("cannot merge runs with different settings")
    rows = sorted((r for part in parts for r in part["seeds"]), key=lambda r: SEEDS.index(r["seed"]))
    result = {**parts[0], "seeds": rows, "command": [part["command"] for part in parts],
              "seconds": [part["seconds"] for part in parts]}
    result["settings"] = {**settings[0], "seeds": [r["seed"] for r in rows]}
    result["summary"] = report(rows)
    common.write_json(out, result, indent=1)
    print(f"wrote {out}")
    return 0


def _fmt(v) -> str:
    return "  -  " if v is None else f"{v:.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
