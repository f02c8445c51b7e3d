"""Does ``--max-seconds T`` end the run near T? Whole ``promptsearch run`` commands, idle and busy.

    python benchmarks/bench_budget.py                 # T = 60 s, idle and with the other cores busy
    python benchmarks/bench_budget.py --seconds 30 120

Each row is one real command (default task and strategies, embedded model): the search's own clock
(``budget_used.seconds`` in the summary: proposals, racing, the final top-k check on all of dev and the
test scoring, which the limit counts) and the whole command's wall time (model load and start-up too).
"Busy" runs a CPU-bound process per core beside the command. The target: search seconds at most
max(10% over T, one scoring chunk).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__:  # python -m benchmarks.bench_budget
    from . import common
else:  # python benchmarks/bench_budget.py: benchmarks/ is first on the path
    import common


def _burn(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x = (x * 31 + 7) % 1000003


def one_run(seconds: float, busy: bool, threads: int) -> dict:
    hogs = []
    if busy:
        stop_at = time.time() + seconds * 4 + 120
        hogs = [multiprocessing.Process(target=_burn, args=(stop_at,), daemon=True) for _ in range(os.cpu_count() or 1)]
        for h in hogs:
            h.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else dict(os.environ)
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "promptsearch", "run", "--max-seconds", str(seconds),
                                   "--out", str(Path(tmp) / "run"), "--json", "--quiet"],
                                  check=False, capture_output=True, text=True, env=env)  # returncode read below
            wall = time.monotonic() - started
    finally:
        for h in hogs:
            h.terminate()
    if done.returncode != 0:
        raise SystemExit(f"promptsearch run failed: {done.stderr.strip().splitlines()[-1]}")
    summary = json.loads(done.stdout)
    used = summary["budget_used"]
    return {"limit": seconds, "busy": busy, "search_seconds": used["seconds"], "wall_seconds": round(wall, 1),
            "over_pct": round(100 * (used["seconds"] - seconds) / seconds, 1), "evals": used["evals"],
            "candidates": used["candidates"], "test": summary["best"]["test"]["score"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, nargs="+", default=[60.0])
    ap.add_argument("--threads", type=int, default=0, help="torch threads in the command (0: its default)")
    ap.add_argument("--out", default=str(common.result_path("budget")))
    args = ap.parse_args()
    machine = common.machine()  # the load average before the runs add their own
    rows = [one_run(t, busy, args.threads) for t in args.seconds for busy in (False, True)]
    print(f"{'limit s':>8} {'machine':>8} {'search s':>9} {'over %':>7} {'wall s':>7} {'evals':>6} {'cands':>6}")
    for r in rows:
        print(f"{r['limit']:>8.0f} {'busy' if r['busy'] else 'idle':>8} {r['search_seconds']:>9.1f} {r['over_pct']:>7.1f} "
              f"{r['wall_seconds']:>7.1f} {r['evals']:>6} {r['candidates']:>6}")
    common.write_json(args.out, {"rows": rows, "cpus": os.cpu_count(), "machine": machine})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
