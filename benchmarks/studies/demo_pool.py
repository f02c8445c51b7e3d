"""Method study (development split only): demonstrations rules on the seed prompt, drawing from the train rows a
few-label search keeps after its held-out slice, or from those and the dev rows that choose (every labelled row
the search has), with 4 and 8 neighbours.

Kind: method study (benchmarks/studies/): run once to choose a default; its numbers describe the code of the day
it ran (benchmarks/RESULTS.md names the commit), and it is not rerun as the code changes.

    python benchmarks/studies/demo_pool.py [--rows 150] [--tasks trec,agnews,sst2]

Per task and draw of the few-label protocol (protocol.py): the task prepared as ``--selection auto`` prepares it,
``similar:4`` and ``similar:8`` scored on the first ``--rows`` rows of the development split with each pool. Writes
``results/demo_pool-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import protocol
from common import load_model, result_path, write_json
from fewshot import score_rows


def main(argv=None) -> int:
    from promptsearch import runner
    from promptsearch.candidate import Candidate
    from promptsearch.scoring import Scorer

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=150)
    p.add_argument("--tasks", default="trec,agnews,sst2")
    p.add_argument("--draws", type=int, default=protocol.DRAWS)
    args = p.parse_args(argv)
    model, out = load_model(1), []
    for name in args.tasks.split(","):
        for d in range(args.draws):
            task, extra = protocol.draw(name, d)
            prepared = runner.prepare_task(task, {"selection": "auto", "seed": d})
            train_only = replace(prepared, demo_rows=())
            rows, started, res = extra["devsplit"][: args.rows], time.monotonic(), {}
            for k in (4, 8):
                c = Candidate(task.seed_prompt, demos=f"similar:{k}")
                res[f"train{k}"] = score_rows(Scorer(model), train_only, c, rows)["score"]
                res[f"all{k}"] = score_rows(Scorer(model), prepared, c, rows)["score"]
            out.append({"task": name, "draw": d, "pool": [len(prepared.train), len(prepared.train) + len(prepared.dev)], **res})
            print(json.dumps(out[-1]), round(time.monotonic() - started), flush=True)
    write_json(Path(result_path("demo_pool")), {"rows": args.rows, "results": out})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
