"""A finished run whose winner is an ensemble: its best single prompt on test, paired with the winner.

Kind: method study (benchmarks/studies/): run once to choose a default or an option; its numbers describe
the code of the day it ran (benchmarks/RESULTS.md names the commit), and it is not rerun as the code changes.

    python benchmarks/studies/ensemble_vs_single.py RUN_DIR [RUN_DIR ...] --threads 1

The run's dev split and test rows are the ones it ran on (read back from its config, whose seed also drew a
scoreboard run's test sample; the sample's size is given with ``--test-cap``). The best single prompt is the
leaderboard's first non-ensemble entry (dev ranked it); it is scored on test here, once, for the report only. The winner's per-example test outcomes
come from the run's ``test.jsonl`` (read as ``export`` reads it); the two are paired on the same rows (exact McNemar for accuracy).
Prints a table and writes ``benchmarks/results/ensemble_vs_single-YYYY-MM-DD.json`` (today).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__:  # benchmarks.studies.ensemble_vs_single: the tests, python -m
    from .. import common
else:  # python benchmarks/studies/ensemble_vs_single.py
    import _benchmarks  # noqa: F401  (puts benchmarks/ on the path)
    import common


def compare(run_dir: Path, model, test_cap: int | None) -> dict:
    from promptsearch.candidate import Candidate
    from promptsearch.errors import PromptSearchError
    from promptsearch.export import _logged_test_results
    from promptsearch.metrics import summarize
    from promptsearch.runner import read_config
    from promptsearch.scoring import Scorer
    from promptsearch.stats import paired_test
    from promptsearch.store import RunStore

    store = RunStore.open(run_dir)
    winner = (store.summary or {}).get("best")
    if not winner or not winner.get("members"):
        raise PromptSearchError(f"{run_dir}: not a finished run whose winner is an ensemble")
    single = Candidate.from_json(next(r for r in store.leaderboard() if not r.get("members")))
    config = read_config(store)
    task = common.load_bench_task(config["task"], None, test_cap, seed=config["seed"])
    try:  # the same check as export's: the logged outcomes must be for exactly these test rows
        logged = _logged_test_results(store, task)[winner["id"]]
    except PromptSearchError as e:
        raise PromptSearchError(f"{e} (is --test-cap the run's?)") from None
    results = Scorer(model).evaluate(task, single, task.test)
    score = summarize(task.metric, results, task.test, single.label_words or task.label_words)
    test = paired_test(task.metric, {"scores": [r.score for r in results]}, {"scores": [r.score for r in logged]})
    return {"run": str(run_dir), "task": task.name, "n": len(task.test), "members": len(winner["members"]),
            "ensemble_test": round(winner["test"]["score"], 4), "single": single.edit or single.prompt[:60],
            "single_test": round(score.score, 4), "single_ci": [round(score.ci_low, 4), round(score.ci_high, 4)],
            "difference": round(test.difference, 4), "p_value": test.p_value, "test": test.test, "detail": test.detail}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--test-cap", type=int, default=None, help="Test rows the run used (a seeded sample), if capped.")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=str(common.result_path("ensemble_vs_single")))
    args = parser.parse_args(argv)
    from promptsearch.errors import PromptSearchError

    model = common.load_model(args.threads)
    try:
        rows = [compare(run, model, args.test_cap) for run in args.runs]
    except PromptSearchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{'task':<8} {'n':>5} {'ensemble':>9} {'single':>7}  {'diff':>7} {'p':>9}  single prompt")
    for r in rows:
        print(f"{r['task']:<8} {r['n']:>5} {r['ensemble_test']:>9.3f} {r['single_test']:>7.3f}  {r['difference']:>+7.3f} "
              f"{r['p_value']:>9.2g}  {r['single']}")
    common.write_json(args.out, {"command": "python benchmarks/studies/ensemble_vs_single.py " + " ".join(sys.argv[1:] if argv is None else argv),
                                 "machine": common.machine(args.threads), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
