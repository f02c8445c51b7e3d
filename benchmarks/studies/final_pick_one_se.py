"""Offline check of a final-pick rule: a one-standard-error rule instead of the best dev score.

Kind: method study (benchmarks/studies/): run once to choose a default or an option; its numbers describe
the code of the day it ran (benchmarks/RESULTS.md names the commit), and it is not rerun as the code changes.

The search picks its winner as the best of its top 3 on all of dev. The rule checked here (Breiman's one-SE
rule) picks, among the top 3 within one standard error of the best dev score, the cheapest prompt: fewest
demonstrations, then shortest text. The search itself is unchanged by a final-pick rule, so finished runs answer
the question exactly: for each default run of the given scoreboards, the rule's pick is scored on the run's own
test rows (checked against the run's log) and set beside the winner's test score.

With ``--paired`` the standard error is that of the paired difference between the best prompt and each other
one on the same dev rows (sd of the per-row differences / sqrt(n)), read from the run's log. It was meant to keep
a child that wins on many rows and drop one that wins on one; measured, prompts that share a format still
disagree on many rows, so it changed more picks than the plain rule and lost more (DESIGN.md).

    python benchmarks/studies/final_pick_one_se.py SCOREBOARD.json [...] [--paired] [--threads 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from pathlib import Path

if __package__:  # benchmarks.studies.final_pick_one_se: the tests, python -m
    from .. import common
else:  # python benchmarks/studies/final_pick_one_se.py
    import _benchmarks  # noqa: F401  (puts benchmarks/ on the path)
    import common


def demonstrations(entry: dict) -> int:
    """How many demonstrations a leaderboard entry shows each input (drawn into the text or by a rule)."""
    drawn = [int(k) for k in re.findall(r"demos:(\d+)#", entry.get("edit", ""))]
    rule = [int(entry["demos"].split(":")[1])] if entry.get("demos") else []
    return max(drawn + rule + [0])


def cheapest(entries) -> dict:
    """Fewest demonstrations, then shortest text, then the better dev score."""
    return min(entries, key=lambda e: (demonstrations(e), len(e["prompt"]), -e["dev"]["score"]))


def one_se_pick(top: list[dict]) -> dict:
    best = top[0]["dev"]
    se = math.sqrt(max(best["score"] * (1 - best["score"]), 1e-9) / best["n"])
    return cheapest(e for e in top if e["dev"]["score"] >= best["score"] - se - 1e-12)


def paired_se_pick(top: list[dict], rows: dict[str, dict[str, float]]) -> dict:
    """The cheapest of ``top`` whose mean paired shortfall to the best is within one SE of that shortfall.

    ``rows`` maps a candidate id to its per-example dev scores (example key -> score) on the same dev rows."""
    best = rows[top[0]["id"]]

    def near(entry: dict) -> bool:
        diffs = [best[k] - rows[entry["id"]][k] for k in best]
        var = statistics.variance(diffs) if len(diffs) > 1 else 0.0
        return statistics.fmean(diffs) <= math.sqrt(var / len(diffs)) + 1e-12

    return cheapest(e for e in top if near(e))


def dev_rows(store, top: list[dict]) -> dict[str, dict[str, float]]:
    """Per-example dev scores of the ``top`` entries, from the run's log (the record on all of dev)."""
    found: dict[str, dict[str, float]] = {}
    for record in store.read("candidates.jsonl"):
        cid = record["candidate"]["id"]
        entry = next((e for e in top if e["id"] == cid), None)
        if entry and record["score"]["n"] == entry["dev"]["n"]:
            found[cid] = {k: float(v[0]) for k, v in record["results"].items()}
    if len(found) != len(top) or len({frozenset(r) for r in found.values()}) != 1:
        raise ValueError(f"{store.dir}: the log lacks the top prompts' scores on the same dev rows")
    return found


def check(row: dict, limits: dict, model, paired: bool = False) -> dict:
    """The one-SE pick (``paired``: with the paired SE) of one default run (a scoreboard row run under
    ``limits``) and its test score."""
    from promptsearch.candidate import Candidate
    from promptsearch.export import _logged_test_results
    from promptsearch.metrics import summarize
    from promptsearch.runner import read_config
    from promptsearch.scoring import Scorer
    from promptsearch.store import RunStore

    store = RunStore.open(row["run_dir"])
    top = [e for e in store.summary["leaderboard"] if e.get("dev")][:3]
    pick = paired_se_pick(top, dev_rows(store, top)) if paired else one_se_pick(top)
    config = read_config(store)
    item = {"task": row["task"], "seed": config["seed"], "winner": top[0]["edit"], "winner_test": row["best_test"]["score"],
            "pick": pick["edit"], "changed": pick["id"] != store.summary["best"]["id"]}
    if not item["changed"]:
        item["pick_test"] = item["winner_test"]
        return item
    task = common.load_bench_task(config["task"], limits["dev"], limits["test"], seed=config["seed"])
    _logged_test_results(store, task)  # raises unless these are the run's test rows
    cand = Candidate.from_json(pick)
    results = Scorer(model).evaluate(task, cand, task.test)
    item["pick_test"] = summarize(task.metric, results, task.test, cand.label_words or task.label_words).score
    return item


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scoreboards", nargs="+")
    ap.add_argument("--paired", action="store_true", help="SE of the paired difference on the same dev rows")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    args.out = args.out or str(common.result_path("final_pick_paired_se" if args.paired else "final_pick_one_se"))
    model = common.load_model(args.threads)
    from promptsearch.errors import PromptSearchError

    items = []
    try:
        for path in args.scoreboards:
            board = json.loads(Path(path).read_text())
            for row in board["rows"]:
                if row["strategy"] == "default" and row["status"] == "ok":
                    items.append(check(row, board["limits"], model, args.paired))
                    i = items[-1]
                    print(f"{i['task']:<24} seed {i['seed']}  winner {i['winner_test']:.3f}  pick {i['pick_test']:.3f}"
                          f"  {'(' + i['pick'][:40] + ')' if i['changed'] else '(same)'}", flush=True)
    except (OSError, ValueError, KeyError, TypeError, PromptSearchError) as e:  # a file that is not what it should be
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if not items:
        print("error: no finished default run in these scoreboards", file=sys.stderr)
        return 2
    diffs = [i["pick_test"] - i["winner_test"] for i in items]
    summary = {"runs": len(items), "changed": sum(i["changed"] for i in items), "mean_difference": sum(diffs) / len(diffs),
               "better": sum(d > 0 for d in diffs), "worse": sum(d < 0 for d in diffs)}
    print(json.dumps(summary))
    common.write_json(args.out, {"command": "python benchmarks/studies/final_pick_one_se.py " + " ".join(sys.argv[1:] if argv is None else argv),
                                 "machine": common.machine(args.threads), "summary": summary, "runs": items})
    return 0


if __name__ == "__main__":
    sys.exit(main())
