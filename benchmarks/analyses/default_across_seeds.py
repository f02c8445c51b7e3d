"""The default run against the best single strategy over several search seeds.

Kind: offline analysis (benchmarks/analyses/): it only re-reads finished results (scoreboard JSON files and
their run folders) and scores nothing.

One scoreboard run per task compares two searches that each chose among near-equal prompts on 48 dev rows, so
a 100-200-row test gap of a few points is mostly which of them each search happened to pick. This reads
scoreboards run with different ``--seed`` (each seed draws its own dev and test rows and its own search) and
says, per task, each strategy's test score per seed, the mean over seeds, and the default's mean gap to the
strategy with the best mean (among those run with every seed the default was); the paired test pools each seed's per-example outcomes (default's winner vs that
strategy's winner on that seed's test rows). Where a task's test split is small, seeds share rows, so the
pooled test treats repeats as fresh pairs: read its p-value as a guide. With many tasks some p-values fall
under 0.05 by chance alone (one in twenty where nothing differs), so the table also gives Holm's adjustment over
the tasks compared, and names the tasks where the default is behind or ahead after it. The gap's standard
error from the seeds' spread (each strategy's per-seed scores vary with its search and its rows) says how far
a mean over this many seeds can be from what the two strategies would average over many seeds.

    python benchmarks/analyses/default_across_seeds.py SCOREBOARD.json [...] [--strategies clarify,default] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from promptsearch.errors import PromptSearchError
from promptsearch.stats import holm, paired_test

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for common
from common import winner_outcomes

WITHIN = 0.02  # issue 17: the default within 2 points of the best single strategy
ALPHA = 0.05


def collect(paths: list[Path], strategies: set[str]) -> dict:
    """{task: {strategy: {seed: row}}} from the scoreboards' ok rows."""
    out: dict = defaultdict(lambda: defaultdict(dict))
    for path in paths:
        board = json.loads(path.read_text())
        seed = board["limits"]["seed"]
        for row in board["rows"]:
            if row["status"] == "ok" and row["strategy"] in strategies:
                if seed in out[row["task"]][row["strategy"]]:
                    raise SystemExit(f"error: {row['task']} / {row['strategy']} / seed {seed} appears twice")
                out[row["task"]][row["strategy"]][seed] = row
    return out


def compare(task: str, by_strategy: dict) -> dict | None:
    if "default" not in by_strategy:
        return None
    seeds = sorted(by_strategy["default"])
    # a strategy counts where it ran with every seed the default ran with (a mean over fewer is not comparable)
    by_strategy = {s: v for s, v in by_strategy.items() if set(seeds) <= set(v)}
    if len(by_strategy) < 2:
        return None
    scores = {s: [by_strategy[s][k]["best_test"]["score"] for k in seeds] for s in by_strategy}
    means = {s: sum(v) / len(v) for s, v in scores.items()}
    best = max((s for s in means if s != "default"), key=means.get)
    a, b = [], []  # pooled outcomes: best single's winner (a) vs default's (b), seed by seed on the same rows
    for k in seeds:
        keys_a, out_a = winner_outcomes(by_strategy[best][k]["run_dir"])
        keys_d, out_d = winner_outcomes(by_strategy["default"][k]["run_dir"])
        if keys_a != keys_d:
            raise SystemExit(f"error: {task} seed {k}: the two runs were tested on different rows")
        a += out_a
        b += out_d
    metric = by_strategy["default"][seeds[0]]["metric"]
    test = paired_test(metric, {"scores": a}, {"scores": b})
    spread = [statistics.variance(scores[s]) / len(seeds) for s in (best, "default")] if len(seeds) > 1 else None
    return {"task": task, "seeds": seeds, "scores": scores, "means": means, "best_single": best,
            "mean_gap": means["default"] - means[best], "gap_se": sum(spread) ** 0.5 if spread else None,
            "pooled_n": len(a),
            "paired": {"test": test.test, "difference": test.difference, "p_value": test.p_value, "detail": test.detail}}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scoreboards", nargs="+", type=Path)
    p.add_argument("--strategies", default="clarify,default", help="comma-separated; must include default")
    p.add_argument("--json", type=Path, help="write the table's numbers here")
    args = p.parse_args(argv)
    names = sorted(set(args.strategies.split(",")))
    try:
        data = collect(args.scoreboards, set(names))
        items = [c for task, v in data.items() if (c := compare(task, v))]
        for c, adjusted in zip(items, holm([c["paired"]["p_value"] for c in items])):
            c["paired"]["p_holm"] = adjusted
    except (OSError, ValueError, KeyError, TypeError, PromptSearchError) as e:  # a file that is not what it should be
        raise SystemExit(f"error: {type(e).__name__}: {e}") from None
    print("| task | seeds | " + " | ".join(f"{s} per seed (mean)" for s in names) +
          " | default - best single (mean) | SE of the gap (seeds) | pooled paired test | Holm p |")
    print("|---|---|" + "---|" * len(names) + "---|---|---|---|")
    for c in items:
        cells = [", ".join(f"{x:.3f}" for x in c["scores"][s]) + f" ({c['means'][s]:.3f})" if s in c["scores"] else "-"
                 for s in names]
        pt = c["paired"]
        se = f"{c['gap_se']:.3f}" if c["gap_se"] is not None else "-"
        print(f"| {c['task']} | {','.join(map(str, c['seeds']))} | " + " | ".join(cells) +
              f" | {c['mean_gap']:+.3f} vs {c['best_single']} | {se} | {pt['difference']:+.3f}, p = {pt['p_value']:.2g} ({pt['detail']}, n={c['pooled_n']}) | {pt['p_holm']:.2g} |")
    behind = [c["task"] for c in items if c["mean_gap"] < -WITHIN - 1e-9]
    print(f"\nwithin {WITHIN:.2f} of the best single strategy's mean over seeds on {len(items) - len(behind)} of "
          f"{len(items)} tasks" + (f"; behind: {', '.join(behind)}" if behind else ""))
    significant = {side: [c["task"] for c in items if c["paired"]["p_holm"] < ALPHA and sign * c["mean_gap"] > 0]
                   for side, sign in (("behind", -1), ("ahead", 1))}
    print(f"after Holm's adjustment over {len(items)} tasks (p < {ALPHA}): behind on "
          f"{', '.join(significant['behind']) or 'none'}; ahead on {', '.join(significant['ahead']) or 'none'}")
    if args.json:
        args.json.write_text(json.dumps({"scoreboards": [str(x) for x in args.scoreboards], "within": WITHIN,
                                         "tasks": items, "behind": behind,
                                         "significant_after_holm": significant}, indent=1))


if __name__ == "__main__":
    main()
