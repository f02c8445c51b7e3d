"""Design study: should the final pick keep plain in-context learning unless the winner beats it on the choosing rows?

On a dozen choosing rows the search's winner is the luckiest of some thirty candidates; on translation it lost to
the seed prompt with 8 random demonstrations (benchmarks/RESULTS.md, five induction draws). The guard: after the
final check, the reference R (the seed prompt with a ``balanced`` demonstrations draw: 8 rows on generation, 4 per
class on classification) is scored on the rows that chose, and the winner W is kept only when its mean paired
difference over the rows both are scored on (cross-fitted: neither shows them) is above ``c`` standard errors.

Kind: design study (benchmarks/studies/). Run on 2026-12-03 over the five induction draws (72 task-draws): no rule
reached the bar (+0.010 on the development split and better in more than worse), so the engine has no such guard
(docs/decisions.md, 2026-12-03 afternoon; benchmarks/results/reference_guard-2026-12-03.json).

This study replays the guard on the winners recorded by fewshot.py (rebuilt from their prompt and options; an
ensemble is skipped, its members are not recorded), on the same prepared rows the run chose on, for several ``c``;
R is scored on the development split's first ``--split-rows`` rows (W's recorded outcomes on the same rows) only
where some rule picks it. Test is not scored: no rule was adopted, so there was no change to report.

    python benchmarks/studies/reference_guard.py RESULTS.json [--tasks a,b] [--out FILE] [--threads 1]
    python benchmarks/studies/reference_guard.py --merge PART.json ... [--out FILE]   # parts run side by side
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import protocol
from common import load_model, machine, result_path, write_json
from fewshot import score_rows

RULES = {"ties-to-R": 0.0, "c=0.5": 0.5, "c=1": 1.0, "c=1.645": 1.645}


def reference(task):
    from promptsearch.candidate import Candidate

    return Candidate(task.seed_prompt, demos="balanced:4" if task.kind == "classification" else "balanced:8")


def paired(scorer, prepared, w, r) -> dict:
    """W and R on the choosing rows neither shows: each row's outcome, the mean difference and its standard error."""
    from promptsearch.selection import kept

    rows = list(prepared.dev)
    both = sorted(set(kept(prepared, w, rows)) & set(kept(prepared, r, rows)))
    picked = [rows[i] for i in both]
    ow = [x.score for x in scorer.evaluate(prepared, w, picked)]
    orr = [x.score for x in scorer.evaluate(prepared, r, picked)]
    d = [a - b for a, b in zip(ow, orr)]
    se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else math.inf
    return {"n": len(d), "w": sum(ow) / len(ow), "r": sum(orr) / len(orr), "diff": sum(d) / len(d), "se": se}


def keeps_winner(p: dict, c: float) -> bool:
    return p["diff"] > c * p["se"] if p["se"] > 0 else p["diff"] > 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="?")
    ap.add_argument("--merge", nargs="*", default=None, help="this study's outputs: one summary over their rows")
    ap.add_argument("--method", default="default/auto")
    ap.add_argument("--tasks", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--split-rows", type=int, default=150, help="development-split rows R is scored on (the first)")
    args = ap.parse_args(argv)
    if args.merge:
        parts = [json.loads(Path(f).read_text()) for f in args.merge]
        rows = [r for part in parts for r in part["rows"]]
        summary = summarize(rows)
        print(json.dumps(summary, indent=1))
        write_json(Path(args.out or result_path("reference_guard")),
                   {"results": parts[0]["results"], "merged_from": args.merge,
                    "machines": [part["machine"] for part in parts], "rules": RULES, "rows": rows, "summary": summary})
        return 0
    if not args.results:
        ap.error("give the fewshot.py results file (or --merge)")
    from dataclasses import replace

    from promptsearch import runner
    from promptsearch.candidate import Candidate
    from promptsearch.scoring import Scorer

    model = load_model(args.threads)
    scorer = Scorer(model)
    record = json.loads(Path(args.results).read_text())
    wanted = set(args.tasks.split(",")) if args.tasks else None
    out = Path(args.out or result_path("reference_guard"))
    rows = []
    for res in record["results"]:
        m = res["methods"].get(args.method)
        if m is None or (wanted and res["task"] not in wanted):
            continue
        task, extra = protocol.draw(res["task"], res["draw"])
        task = replace(task, test=task.test[: res["test_rows"]])
        prepared = runner.prepare_task(task, {"selection": "auto", "seed": res["draw"]})
        split = list(extra["devsplit"])[: args.split_rows]  # W's recorded outcomes on the same rows
        row = {"task": res["task"], "draw": res["draw"],
               "w_devsplit": sum(m["devsplit"]["outcomes"][: len(split)]) / len(split)}
        if m["members"]:
            row["skipped"] = "ensemble"
        else:
            w = Candidate(m["prompt"], demos=m["options"].get("demos"), calibrate=m["options"].get("calibrate"))
            r = reference(task)
            row["pair"] = paired(scorer, prepared, w, r)
            row["keeps"] = {name: keeps_winner(row["pair"], c) for name, c in RULES.items()}
            if not all(row["keeps"].values()):
                row["r_devsplit"] = score_rows(scorer, prepared, r, split)["score"]  # as fewshot.py scored W there
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "keeps"}), flush=True)
        record = {"results": args.results, "machine": machine(args.threads), "rules": RULES, "rows": rows}
        write_json(out, record)  # after every task-draw: a killed run keeps what it finished
    record["summary"] = summarize(rows)
    print(json.dumps(record["summary"], indent=1))
    write_json(out, record)
    return 0


def summarize(rows: list[dict]) -> dict:
    """Per rule, over the task-draws replayed: the mean development-split difference against the winner as found,
    how often the rule picks R, better and worse counts, and per task."""
    out = {}
    done = [r for r in rows if "pair" in r]
    for name in RULES:
        diffs, per_task = [], {}
        for r in done:
            d = 0.0 if r["keeps"][name] else r["r_devsplit"] - r["w_devsplit"]
            diffs.append(d)
            per_task.setdefault(r["task"], []).append(d)
        out[name] = {"task_draws": len(diffs), "picks_reference": sum(not r["keeps"][name] for r in done),
                     "devsplit_mean_difference": sum(diffs) / len(diffs) if diffs else None,
                     "better_in": sum(d > 0 for d in diffs), "worse_in": sum(d < 0 for d in diffs),
                     "per_task": {t: round(sum(v) / len(v), 4) for t, v in per_task.items()}}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
