"""Design study: the final check's top prompts combined into one uniform ensemble, each member batch-calibrated,
against the run's winner, on the protocol's development split, paired per task-draw.

Why: the issue asks that the final pick account for the noise, e.g. with an ensemble when no single prompt is
clearly better. The final check scores the top 3 on all of dev; on a few dozen rows they are seldom apart by more
than luck, and averaging their calibrated label distributions removes part of each one's own noise. The rule
needs no choice on dev (the members are the top 3 as ranked), so it adds no selection bias.

Kind: design study (benchmarks/studies/). The runs are kept few-label runs (``fewshot.py --keep-runs``); the rule
replaces only the last step, so any kept runs of one search configuration tell what it does.

    python benchmarks/studies/final_ensemble.py RUNS/*/ [--members 3]

On a generation task the ensemble is a vote of the members' answers (scoring/ensemble.py), not calibrated; the
same command measured that vote on the induction draws (not adopted: docs/decisions.md, 2026-12-03 late).

Prints a row per task-draw and the mean per task; writes ``results/final_ensemble-<date>.json`` with every
development-split outcome.
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
from fewshot import score_rows


def top_singles(run_dir: Path, n_dev: int, k: int) -> list:
    """The first ``k`` distinct single prompts of the final check, in the search's ranking: the leaderboard's rows
    scored on all of dev (an ensemble gives its members), the calibrated twin of the winner left out."""
    from promptsearch.candidate import Candidate
    from promptsearch.store import RunStore

    out, seen = [], set()
    for row in RunStore.open(run_dir).leaderboard():
        if row.get("strategy") == "final" or row["dev"]["n"] < n_dev:
            continue
        c = Candidate.from_json({k2: v for k2, v in row.items() if k2 not in ("rank", "dev", "tie")})
        for member in c.members or (c,):
            if member.id not in seen and len(out) < k:
                seen.add(member.id)
                out.append(member)
    return out


def run_name(run_dir: Path) -> tuple[str, int]:
    """The task and draw of a kept run (fewshot.py names it TASK-DRAW-VARIANT; a task's name may hold a "-")."""
    import re

    found = re.match(r"^(.+?)-(\d+)-", run_dir.name)
    if found is None:
        raise SystemExit(f"error: {run_dir} is not a kept few-label run (TASK-DRAW-VARIANT)")
    return found[1], int(found[2])


def compare(run_dirs: list[Path], model, k: int) -> list[dict]:
    from promptsearch import runner
    from promptsearch.candidate import Candidate
    from promptsearch.scoring import Scorer, ensemble
    from promptsearch.scoring.calibration import twin

    out = []
    for run_dir in sorted(run_dirs):
        config = json.loads((run_dir / "config.json").read_text())
        name, draw = run_name(run_dir)
        task, extra = protocol.draw(name, int(draw))
        prepared = runner.prepare_task(task, config)
        best = Candidate.from_json(json.loads((run_dir / "summary.json").read_text())["best"])
        members = top_singles(run_dir, len(prepared.dev), k)
        if len(members) < 2:
            print(f"{name} {draw}: fewer than two prompts on all of dev; left out", flush=True)
            continue
        group = ensemble.make(members)
        if task.kind == "classification":  # a generation task's ensemble is a vote: nothing to calibrate
            group = twin(group, "batch") or group
        scorer, rows = Scorer(model), list(extra["devsplit"])
        row = {"task": name, "draw": int(draw), "winner": best.to_json(), "ensemble": group.to_json(),
               "winner_devsplit": score_rows(scorer, prepared, best, rows),
               "ensemble_devsplit": score_rows(scorer, prepared, group, rows)}
        out.append(row)
        print(f"{name} {draw}: winner {row['winner_devsplit']['score']:.3f} -> ensemble of {len(members)} "
              f"{row['ensemble_devsplit']['score']:.3f}", flush=True)
    return out


def summarize(rows: list[dict]) -> dict:
    diffs = [r["ensemble_devsplit"]["score"] - r["winner_devsplit"]["score"] for r in rows]
    tasks = dict.fromkeys(r["task"] for r in rows)
    return {"mean_difference": statistics.mean(diffs), "better": sum(d > 0 for d in diffs),
            "worse": sum(d < 0 for d in diffs), "task_draws": len(diffs),
            "per_task": {t: statistics.mean(d for r, d in zip(rows, diffs) if r["task"] == t) for t in tasks}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="kept run directories (fewshot.py --keep-runs), named TASK-DRAW-...")
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    rows = compare([Path(r) for r in args.runs], load_model(args.threads), args.members)
    s = summarize(rows)
    print(f"\nensemble - winner on the development split: {s['mean_difference']:+.4f} (better in {s['better']}, "
          f"worse in {s['worse']} of {s['task_draws']}); per task: "
          + ", ".join(f"{t} {d:+.4f}" for t, d in s["per_task"].items()))
    out = Path(args.out) if args.out else result_path("final_ensemble")
    write_json(out, {"command": "python benchmarks/studies/final_ensemble.py " + " ".join(argv or sys.argv[1:]),
                     "machine": machine(args.threads), "summary": s, "rows": rows})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
