"""Offline analysis (scores the finalists of finished runs again; development split only): would the final pick
choose better if the finalists were also scored on the train rows they do not show?

    python benchmarks/analyses/final_pick.py RUNS_DIR [--rows 150] [--out FILE]

RUNS_DIR holds the few-label protocol's runs under today's default (fewshot.py ``--variants auto`` kept with
``--keep-runs``; folder names ``<task>-<draw>-...``). Per run: the top 3 of the final leaderboard (each scored on
all of dev), their scores on the train rows they do not show (cross-fitted, selection.kept), and their scores on
the first ``--rows`` rows of the protocol's development split. Rules compared against today's pick (the best dev
score): ``pooled`` (the best score on dev and those train rows together), ``train`` (train rows alone), and the
``oracle`` (the finalist best on the development split: the headroom of any rule that picks among the three).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import protocol
from common import load_model, result_path, write_json

RULES = {
    "pooled": lambda f: (f["dev"] * f["dev_n"] + f["train"] * f["train_n"]) / (f["dev_n"] + f["train_n"]),
    "train": lambda f: f["train"],
}


def finalists(run: Path, scorer, rows: int) -> dict:
    from promptsearch import runner, selection
    from promptsearch.candidate import Candidate
    from promptsearch.metrics import summarize

    name, draw = run.name.split("-")[0], int(run.name.split("-")[1])
    config, summary = (json.loads((run / f).read_text()) for f in ("config.json", "summary.json"))
    task, extra = protocol.draw(name, draw)
    prepared = runner.prepare_task(task, config)
    full = len(prepared.dev)
    out = {"task": name, "draw": draw, "finalists": []}
    for row in [r for r in summary["leaderboard"] if r["dev"]["n"] >= full - 8][:3]:  # shown rows leave a score
        c = Candidate.from_json(row)
        train = [prepared.train[i] for i in selection.kept(prepared, c, list(prepared.train))]
        devsplit = list(extra["devsplit"][:rows])
        words = c.label_words or prepared.label_words
        on_train = summarize(prepared.metric, scorer.evaluate(prepared, c, train), train, words)
        on_split = summarize(prepared.metric, scorer.evaluate(prepared, c, devsplit), devsplit, words)
        out["finalists"].append({"id": c.id, "dev": row["dev"]["score"], "dev_n": row["dev"]["n"],
                                 "train": on_train.score, "train_n": on_train.n, "devsplit": on_split.score})
    return out


def compare(runs: list[dict]) -> dict:
    """Each rule's pick against today's (the first finalist), on the development split."""
    out = {}
    for rule, key in {**RULES, "oracle": None}.items():
        diffs = []
        for r in runs:
            f = r["finalists"]
            pick = max(f, key=lambda x: x["devsplit"]) if key is None else max(f, key=key)
            diffs.append(pick["devsplit"] - f[0]["devsplit"])
        out[rule] = {"mean_difference": round(statistics.mean(diffs), 4), "better_in": sum(d > 0 for d in diffs),
                     "worse_in": sum(d < 0 for d in diffs), "runs": len(diffs)}
    return out


def main(argv=None) -> int:
    from promptsearch.scoring import Scorer

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs")
    p.add_argument("--rows", type=int, default=150)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    scorer = Scorer(load_model(1))
    runs = []
    for run in sorted(Path(args.runs).iterdir()):
        if (run / "summary.json").exists():
            runs.append(finalists(run, scorer, args.rows))
            print(json.dumps(runs[-1]), flush=True)
    record = {"runs_dir": args.runs, "devsplit_rows": args.rows, "runs": runs, "compare": compare(runs)}
    write_json(Path(args.out or result_path("final_pick")), record)
    for rule, d in record["compare"].items():
        print(f"{rule:8s} {d['mean_difference']:+.4f} over {d['runs']} runs (better in {d['better_in']}, worse in {d['worse_in']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
