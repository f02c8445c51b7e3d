"""Method study: `make demo`'s run (the default search on the bundled task, seed 0) under today's default and under
an earlier default given as strategy options, one after the other, with the winners' test outcomes paired (exact
McNemar). "The demo does not get worse" is checked this way whenever a default changes.

Kind: method study (benchmarks/studies/): its numbers describe the code of the day it ran (benchmarks/RESULTS.md
names the commit).

    python benchmarks/studies/demo_pair.py --old '{"clarify": {"demo_rules": ["similar:4", "balanced:2"]}}'
    python benchmarks/studies/demo_pair.py --old-settings '{"final_calibration": null}'
    python benchmarks/studies/demo_pair.py --old '{"clarify": {"demo_ladder": false}}' --dtype float32

Run it on an otherwise idle machine: the default budget has a time limit (480 s), so a loaded machine changes
what the search reaches. Each arm runs in a fresh process: in one process the second arm would find the first
one's calibration biases and neighbour indexes built and the kernels warm, and under a time limit reach further
(a float32 arm with the ladder off: 5,496 evaluations after the other arm in its process, 4,701 in its own).
Writes ``results/demo_pair-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import machine, result_path, winner_outcomes, write_json


def run_arm(run_dir: Path, options: dict | None, settings: dict | None = None, dtype: str | None = None) -> dict:
    """One arm, in a fresh process of this script (``--arm``), its result read back as JSON."""
    spec = json.dumps({"run_dir": str(run_dir), "options": options, "settings": settings or {}, "dtype": dtype})
    done = subprocess.run([sys.executable, __file__, "--arm", spec], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _arm(spec: dict) -> dict:
    import promptsearch as ps

    run_dir, options, settings = Path(spec["run_dir"]), spec["options"], spec["settings"]
    model = ps.load_model(dtype=spec["dtype"]) if spec["dtype"] else None
    started = time.monotonic()
    s = ps.search(run_dir=run_dir, options=options, model=model, **settings).summary
    test = s["best"]["test"]
    return {"test": {"n": int(test["n"]), **{k: float(test[k]) for k in ("score", "ci_low", "ci_high")}},
            "evals": s["budget_used"]["evals"], "search_seconds": s["budget_used"]["seconds"],
            "wall_seconds": round(time.monotonic() - started, 1), "best": s["best"].get("edit"),
            "stop_reason": s.get("stop_reason"), "candidates": s["budget_used"].get("candidates"),
            "estimate": s.get("estimate"), "outcomes": winner_outcomes(run_dir)[1]}


def _estimate(arm: dict) -> str:
    e = arm.get("estimate") or {}
    return f"{e['score']:.3f} ({e.get('which')}, n={e.get('n')})" if "score" in e else "none"


def main(argv=None) -> int:
    from promptsearch.stats import mcnemar_exact

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", default="{}", help="the earlier default, as strategy options (JSON)")
    p.add_argument("--old-settings", default="{}", help="... and as other ps.search settings (JSON), e.g. "
                   '\'{"final_calibration": null}\'')
    p.add_argument("--dtype", default=None, help="both arms on the embedded model in this dtype (float32: what a CPU "
                   "without bf16 units computes in); default: the model a plain run loads")
    p.add_argument("--out", default=None)
    p.add_argument("--arm", default=None, help=argparse.SUPPRESS)  # internal: run one arm, print it as JSON
    args = p.parse_args(argv)
    if args.arm:
        print(json.dumps(_arm(json.loads(args.arm))))
        return 0
    old, settings = json.loads(args.old), json.loads(args.old_settings)
    info = machine()
    with tempfile.TemporaryDirectory() as tmp:
        arms = {"today": run_arm(Path(tmp) / "today", None, dtype=args.dtype),
                "earlier": run_arm(Path(tmp) / "earlier", old or None, settings, dtype=args.dtype)}
    for name, arm in arms.items():
        t = arm["test"]
        print(f"{name:<8} {t['score']:.3f} [{t['ci_low']:.3f}, {t['ci_high']:.3f}] n={t['n']}  "
              f"{arm['evals']} evaluations, "
              f"{arm['search_seconds']:.0f} s of search, stopped: {arm['stop_reason']}, estimate: {_estimate(arm)}, "
              f"best: {arm['best']}")
    test = mcnemar_exact(arms["earlier"]["outcomes"], arms["today"]["outcomes"])
    print(f"today - earlier: {test}")
    write_json(Path(args.out or result_path("demo_pair")),
               {"command": "python benchmarks/studies/demo_pair.py --old " + json.dumps(args.old)
                + " --old-settings " + json.dumps(args.old_settings) + (f" --dtype {args.dtype}" if args.dtype else ""),
                "machine": info, "dtype": args.dtype,
                "earlier_options": old, "earlier_settings": settings, "arms": arms, "mcnemar": str(test)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
