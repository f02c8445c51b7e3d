"""Offline analysis (re-reads finished runs; scores nothing): how far each estimate of a search's winner lands from
its score on rows no choice saw, for the few-label protocol's runs (fewshot.py kept with ``--keep-runs``).

    python benchmarks/analyses/winner_estimates.py RESULTS.json RUNS_DIR [RESULTS.json RUNS_DIR ...]

Estimates of the winner, per run:

- ``dev``: its dev score on the rows that chose it (biased upward by the choice among many);
- ``shrunk``: that score shrunk toward the mean of every candidate's first-rung score, by the share of the spread
  of first-rung scores that is not sampling noise (empirical Bayes; corrects for the choice among all candidates);
- ``bootstrap``: the dev score less the bootstrap bias of the maximum over the finalists scored on all dev rows;
- ``holdout``: the run's own held-out estimate (``--selection holdout``/``auto``), where the run kept rows back.

Each is compared with the winner's score on the protocol's development split (what decides which estimate to
use) and on test (reported). Prints the mean signed and absolute gaps per variant and estimate.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path


def _rows(run: Path) -> tuple[dict, dict, int]:
    """Per candidate: the first-rung score, and its per-row results over every rung (key -> score); and the first
    rung's size."""
    first, rows, size0 = {}, {}, None
    for line in (run / "candidates.jsonl").open(encoding="utf-8"):
        rec = json.loads(line)
        cid, size = rec["candidate"]["id"], rec["size"]
        size0 = size if size0 is None else min(size0, size)
        if size == size0:
            first[cid] = rec["score"]["score"]
        rows.setdefault(cid, {}).update({k: v[0] for k, v in rec["results"].items()})
    return first, rows, size0


def shrunk(best: float, n: int, first: list[float], n0: int) -> float:
    if len(first) < 3:
        return best
    mean = sum(first) / len(first)
    spread = sum((s - mean) ** 2 for s in first) / (len(first) - 1)
    noise = sum(s * (1 - s) / n0 for s in first) / len(first)
    signal = max(0.0, spread - noise)
    own = best * (1 - best) / n
    weight = signal / (signal + own) if signal + own > 0 else 0.0
    return mean + weight * (best - mean)


def bootstrap(finalists: list[dict], rounds: int = 2000) -> float:
    """The dev score of the best finalist less the bootstrap bias of the maximum over finalists."""
    keys = sorted(set.intersection(*(set(f) for f in finalists))) if finalists else []
    if not keys:
        return float("nan")
    full = max(sum(f[k] for k in keys) / len(keys) for f in finalists)
    rng, total = random.Random(0), 0.0
    for _ in range(rounds):
        sample = [keys[rng.randrange(len(keys))] for _ in keys]
        total += max(sum(f[k] for k in sample) / len(sample) for f in finalists)
    return full - (total / rounds - full)


def analyse(results_file: Path, runs: Path) -> list[dict]:
    out = []
    for r in json.loads(results_file.read_text())["results"]:
        for method, m in r["methods"].items():
            if not method.startswith("default/") or ":" in method:
                continue
            variant = method.split("/", 1)[1]
            run = runs / f"{r['task']}-{r['draw']}-{variant}"
            if not (run / "summary.json").exists():
                continue
            s = json.loads((run / "summary.json").read_text())
            first, rows, first_rung = _rows(run)
            n = s["best"]["dev"]["n"]
            finalists = [rows[t["id"]] for t in s["leaderboard"][:3] if t["dev"]["n"] >= n]
            est = {"dev": s["best"]["dev"]["score"],
                   "shrunk": shrunk(s["best"]["dev"]["score"], n, list(first.values()), first_rung),
                   "bootstrap": bootstrap(finalists)}
            if s.get("estimate", {}).get("which") == "holdout":
                est["holdout"] = s["estimate"]["score"]
            out.append({"task": r["task"], "draw": r["draw"], "variant": variant, "estimates": est,
                        "devsplit": m["devsplit"]["score"], "test": m["test"]["score"]})
    return out


def main(argv: list[str]) -> int:
    rows = []
    for results_file, runs in zip(argv[::2], argv[1::2]):
        rows += analyse(Path(results_file), Path(runs))
    print(f"{'variant':<10} {'estimate':<10} {'runs':>4}  {'- devsplit':>10} {'|gap|':>6}  {'- test':>7} {'|gap|':>6}")
    table = {}
    for variant in sorted({r["variant"] for r in rows}):
        mine = [r for r in rows if r["variant"] == variant]
        for name in ("dev", "shrunk", "bootstrap", "holdout"):
            have = [r for r in mine if name in r["estimates"]]
            if not have:
                continue
            d = [r["estimates"][name] - r["devsplit"] for r in have]
            t = [r["estimates"][name] - r["test"] for r in have]
            entry = {"runs": len(have), "vs_devsplit": sum(d) / len(d), "abs_vs_devsplit": sum(map(abs, d)) / len(d),
                     "vs_test": sum(t) / len(t), "abs_vs_test": sum(map(abs, t)) / len(t)}
            table[f"{variant}/{name}"] = entry
            print(f"{variant:<10} {name:<10} {len(have):>4}  {entry['vs_devsplit']:>+10.3f} {entry['abs_vs_devsplit']:>6.3f}"
                  f"  {entry['vs_test']:>+7.3f} {entry['abs_vs_test']:>6.3f}")
    sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for common
    from common import result_path, write_json

    out = write_json(result_path("winner_estimates"), {"command": "winner_estimates.py " + " ".join(argv),
                                                        "table": table, "runs": rows})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
