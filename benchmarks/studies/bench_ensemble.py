"""Prompt ensembles vs the best single prompt, on the scoreboard's protocol.

Kind: method study (benchmarks/studies/): run once to choose a default or an option; its numbers describe
the code of the day it ran (benchmarks/RESULTS.md names the commit), and it is not rerun as the code changes.

    python benchmarks/studies/bench_ensemble.py --threads 1            # sst2, agnews, trec

Per task: dev = 48 seeded class-balanced rows, test = 200 seeded rows, seed 0 (as benchmarks/scoreboard.py).
One run chains ``templates`` (or ``--chain``) then ``ensemble`` (option weights, default "fit": it proposes
the uniform ensemble and, if different, one with weights fitted on dev). The budget is set so that the
single-prompt stages get the scoreboard's 400 example-evaluations (the seed's 48 included; the search splits
what is left evenly between stages: 752 in all for ``templates``, 576 for ``templates,clarify``) and the
ensemble stage one more share: completing the pool on all of dev and racing the ensemble, k evaluations
per example. Reported on test (never used by the search): the best
single prompt (the top prompt without members on the final leaderboard, all of dev), every ensemble the
stage built, and the run's own pick, each ensemble with an exact McNemar test paired with the best single
prompt on the same 200 examples. Prints a table; writes JSON (default benchmarks/results/ensemble-YYYY-MM-DD.json, dated today).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

if __package__:  # benchmarks.studies.bench_ensemble: the tests, python -m
    from .. import common
else:  # python benchmarks/studies/bench_ensemble.py
    import _benchmarks  # noqa: F401  (puts benchmarks/ on the path)
    import common


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default="sst2,agnews,trec")
    ap.add_argument("--chain", default="templates", help="Strategies before the ensemble stage (comma-separated).")
    ap.add_argument("--max-evals", type=int, default=400, help="The single-prompt stages' budget (the scoreboard's).")
    ap.add_argument("--dev", type=int, default=48)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool", type=int, default=8)
    ap.add_argument("--weights", default="fit", choices=["uniform", "fit"])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the benchmark machine is shared).")
    ap.add_argument("--runs-dir", default="runs/bench-ensemble")
    ap.add_argument("--out", default=str(common.result_path("ensemble")))
    common.add_data_argument(ap)
    ap.add_argument("--table", metavar="JSON", default=None, help="Only print (and write as .md) the table of a result file.")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.table:
        import json

        result = json.loads(Path(args.table).read_text())
        write_markdown(result, Path(args.table).with_suffix(".md"))
        print(table(result["rows"]))
        return

    import torch

    from promptsearch import runner
    from promptsearch.models.local import FrozenModel
    from promptsearch.scoring import Scorer

    torch.set_num_threads(args.threads)
    model = FrozenModel.load()
    chain = [s for s in args.chain.split(",") if s] + ["ensemble"]
    started = time.time()
    result = {"command": "python benchmarks/studies/bench_ensemble.py " + " ".join(_given(args)),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": common.machine(args.threads),
              "model": model.name, "limits": {"dev": args.dev, "test": args.test, "seed": args.seed, "chain": chain,
                                              "single_stage_evals": args.max_evals, "pool": args.pool, "weights": args.weights},
              "rows": []}
    for name in args.tasks.split(","):
        task = common.load_bench_task(name, args.dev, args.test, common.data_root(args.data), seed=args.seed)
        # The search gives each stage an even share of what is left after the seed (dev rows): with s single-prompt
        # stages, B = dev + (max_evals - dev) * (s + 1) / s gives them max_evals together, as on the scoreboard.
        singles = len(chain) - 1
        total = len(task.dev) + (args.max_evals - len(task.dev)) * (singles + 1) // singles
        budget = {"max_evals": total, "max_seconds": None, "max_candidates": None}
        config = runner.make_config(task=task.source, strategies=chain, seed=args.seed, budget=budget,
                                    options={"ensemble": {"pool": args.pool, "weights": args.weights}})
        scorer = Scorer(model)
        t0 = time.monotonic()
        run_dir = Path(args.runs_dir) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
        summary = runner.run(config, run_dir, parts=(task, model, scorer))
        result["rows"].append(compare(task, scorer, summary, round(time.monotonic() - t0, 1)))
        result["wall_seconds"] = round(time.time() - started, 1)
        common.write_json(args.out, result)
        write_markdown(result, Path(args.out).with_suffix(".md"))
        print(table(result["rows"]), flush=True)
    print(f"\nwrote {args.out}")


def _given(args) -> list[str]:
    out = []
    for key, value in vars(args).items():
        if key not in ("out", "data") and value is not None:
            out.append(f"--{key.replace('_', '-')} {value}")
    return out


def compare(task, scorer, summary: dict, seconds: float) -> dict:
    """Best single prompt vs each ensemble built, on test, paired.

    The best single prompt is the best on all of dev among every single prompt of the run scored on all of
    dev, the ensemble stage's pool included (it completes its members' dev scores, which the leaderboard
    does not record as rungs). Each ensemble's best member alone is reported too: a gain that comes from
    that member is not the ensemble's."""
    from promptsearch.candidate import Candidate
    from promptsearch.metrics import summarize
    from promptsearch.stats import outcomes, paired_test
    from promptsearch.store import RunStore

    def on(c: Candidate, examples):
        results = scorer.evaluate(task, c, examples)
        words = c.label_words or task.label_words
        return summarize(task.metric, results, examples, words).to_json(), outcomes(results, examples, words)

    def dev_value(c: Candidate):
        results = scorer.evaluate(task, c, task.dev)
        ties = [r.logprob for r in results if r.logprob == r.logprob]
        return (on(c, task.dev)[0]["score"], sum(ties) / len(ties) if ties else float("-inf"))

    board = RunStore.open(summary["run_dir"]).leaderboard()
    complete = []
    for r in board:  # best first; a single prompt counts when all its dev results are in the cache
        c = Candidate.from_json(r)
        if not c.members and all(k in scorer.cache for k in scorer.keys(task, c, [ex.key for ex in task.dev])):
            complete.append(c)
    single = max(complete, key=dev_value)  # max keeps the first of equals: the leaderboard's order
    single_test, single_rows = on(single, task.test)
    row = {"task": task.name, "metric": task.metric, "seed_test": summary["seed"]["test"],
           "single": {"prompt": single.prompt, "label_words": single.label_words, "strategy": single.strategy,
                      "dev": on(single, task.dev)[0], "test": single_test},
           "pick": {"id": summary["best"]["id"], "is_ensemble": bool(summary["best"].get("members")),
                    "test": summary["best"]["test"]},
           "evals": summary["budget_used"]["evals"], "charged": summary["budget_used"]["charged"],
           "seconds": seconds, "ensembles": []}
    for r in board:
        if not r.get("members"):
            continue
        c = Candidate.from_json(r)
        test, rows = on(c, task.test)
        first_test, first_rows = on(c.members[0], task.test)
        row["ensembles"].append({"id": c.id, "edit": c.edit, "k": len(c.members), "weights": list(c.weights),
                                 "members": [m.prompt for m in c.members], "dev": r["dev"], "test": test,
                                 "vs_single": paired_test(task.metric, single_rows, rows).to_json(),
                                 "first_member": {"dev": on(c.members[0], task.dev)[0], "test": first_test},
                                 "vs_first_member": paired_test(task.metric, first_rows, rows).to_json()})
    return row


def write_markdown(result: dict, path: Path) -> None:
    lim = result["limits"]
    common.write_text(path, f"# Ensembles vs the best single prompt\n\nCommand: `{result['command']}`  \n"
                      f"Date: {result['date']}; {result['machine']['summary']}; model {result['model']}.  \n"
                      f"Chain: {', '.join(lim['chain'])}; dev {lim['dev']} rows, test {lim['test']} rows, seed {lim['seed']}; "
                      f"single-prompt stages {lim['single_stage_evals']} evaluations; pool {lim['pool']}, weights {lim['weights']}.\n\n"
                      f"```\n{table(result['rows'])}\n```\n")


def table(rows: list[dict]) -> str:
    from promptsearch.format import fmt

    header = (f"{'task':<7} {'seed':>5} {'best single dev / test':<32} {'ensemble':<25} {'dev / test':<29} "
              f"{'Δ test':>6} {'p':>7}  {'1st member test':>15} {'p':>6} {'picked':>6} {'evals':>5}")
    lines = [header]
    for r in rows:
        single = f"{fmt(r['single']['dev'])} / {fmt(r['single']['test'], ci=True)}"
        head = f"{r['task']:<7} {fmt(r['seed_test']):>5} {single:<32}"
        if not r["ensembles"]:
            lines.append(f"{head} {'(none: nothing helped on dev)':<25}" + " " * 72 + f"{'single':>6} {r['evals']:>5}")
        for e in r["ensembles"]:
            name = f"k={e['k']} " + ("uniform" if len(set(e["weights"])) == 1 else "w=" + "/".join(f"{w:.2f}" for w in e["weights"]))
            short = "*" if e["dev"]["n"] < r["single"]["dev"]["n"] else ""  # racing stopped it on a first rung
            both = f"{fmt(e['dev'])}{short} / {fmt(e['test'], ci=True)}"
            picked = "yes" if r["pick"]["id"] == e["id"] else "no"
            first = e.get("first_member")
            first_cols = (f"{fmt(first['test']):>15} {e['vs_first_member']['p_value']:>6.2g}" if first else f"{'-':>15} {'-':>6}")
            lines.append(f"{head} {name:<25} {both:<29} {e['vs_single']['difference']:>+6.3f} "
                         f"{e['vs_single']['p_value']:>7.2g}  {first_cols} {picked:>6} {r['evals']:>5}")
    if any(e["dev"]["n"] < r["single"]["dev"]["n"] for r in rows for e in r["ensembles"]):
        lines.append("* dev score on the first racing rung only (the budget stopped it there)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
