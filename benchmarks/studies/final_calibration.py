"""Design study: kept few-label runs' winners as found against their batch-calibrated twins (each uncalibrated
member of an ensemble; calibration.twin), on the protocol's development split, paired per task-draw. The run's
own search is unchanged by the rule (it calibrates the winner after the final check), so the winners of runs made
with ``final_calibration`` none tell what the rule does.

Kind: design study (benchmarks/studies/): it decided the default ``final_calibration`` on the development split.

    python benchmarks/fewshot.py --no-baselines --test-rows 20 --keep-runs RUNS   # with final_calibration none
    python benchmarks/studies/final_calibration.py RUNS/*/

Prints a row per task-draw (development split; the rows that chose, and the held-out rows, for reference) and the
mean per task; writes ``results/final_calibration-<date>.json`` with every row's outcome.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import protocol
from common import load_model, machine, result_path, write_json


def twins(run_dirs: list[Path], model) -> list[dict]:
    from promptsearch import runner
    from promptsearch.candidate import Candidate
    from promptsearch.scoring import Scorer
    from promptsearch.scoring.calibration import twin

    out = []
    for run_dir in sorted(run_dirs):
        config = json.loads((run_dir / "config.json").read_text())
        name, draw = run_dir.name.split("-")[:2]
        task, extra = protocol.draw(name, int(draw))
        prepared = runner.prepare_task(task, config)  # the rows the run chose on, as it saw them
        best = Candidate.from_json(json.loads((run_dir / "summary.json").read_text())["best"])
        calibrated = twin(best, "batch")
        if calibrated is None:
            print(f"{name} {draw}: the winner is calibrated already; left out", flush=True)
            continue
        scorer = Scorer(model)
        row = {"task": name, "draw": int(draw), "winner": best.to_json()}
        for split, rows in (("devsplit", list(extra["devsplit"])), ("dev", list(prepared.dev)),
                            ("holdout", list(prepared.holdout))):
            found = [r.score for r in scorer.evaluate(prepared, best, rows)]
            cal = [r.score for r in scorer.evaluate(prepared, calibrated, rows)]
            row[split] = {"found": statistics.mean(found), "calibrated": statistics.mean(cal), "n": len(rows)}
            if split == "devsplit":
                row["outcomes"] = {"found": found, "calibrated": cal}
        out.append(row)
        print(f"{name} {draw}: " + "  ".join(f"{s} {row[s]['found']:.3f} -> {row[s]['calibrated']:.3f}"
                                             for s in ("devsplit", "dev", "holdout")), flush=True)
    return out


def summarize(rows: list[dict]) -> dict:
    from promptsearch.stats import mcnemar_exact

    diffs = [r["devsplit"]["calibrated"] - r["devsplit"]["found"] for r in rows]
    per_task = {t: statistics.mean(d for r, d in zip(rows, diffs) if r["task"] == t) for t in dict.fromkeys(r["task"] for r in rows)}
    a = [x for r in rows for x in r["outcomes"]["found"]]
    b = [x for r in rows for x in r["outcomes"]["calibrated"]]
    b_only, a_only = sum(x < y for x, y in zip(a, b)), sum(x > y for x, y in zip(a, b))
    return {"mean_difference": statistics.mean(diffs), "better": sum(d > 0 for d in diffs),
            "worse": sum(d < 0 for d in diffs), "task_draws": len(diffs), "per_task": per_task,
            "pooled_rows": {"calibrated_only_right": b_only, "found_only_right": a_only,
                            "p_exact_mcnemar": mcnemar_exact(a, b).p_value}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="kept run directories (fewshot.py --keep-runs), named TASK-DRAW-...")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    rows = twins([Path(r) for r in args.runs], load_model(args.threads))
    summary = summarize(rows)
    print(f"\ncalibrated - found on the development split: {summary['mean_difference']:+.4f} (better in "
          f"{summary['better']}, worse in {summary['worse']} of {summary['task_draws']}); per task: "
          + ", ".join(f"{t} {d:+.4f}" for t, d in summary["per_task"].items()))
    pooled = summary["pooled_rows"]
    print(f"pooled over rows: calibrated alone right {pooled['calibrated_only_right']}, found alone right "
          f"{pooled['found_only_right']} (exact McNemar p={pooled['p_exact_mcnemar']:.3g})")
    out = Path(args.out) if args.out else result_path("final_calibration")
    write_json(out, {"command": "python benchmarks/studies/final_calibration.py " + " ".join(argv or sys.argv[1:]),
                     "machine": machine(args.threads), "summary": summary, "rows": rows})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
