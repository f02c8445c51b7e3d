"""Method study: does this CPU score faster in bf16 than in float32, and do the two agree? (`--dtype auto`'s rule)

Kind: method study (benchmarks/studies/): run once on a host to decide what ``--dtype auto`` picks for CPUs of
its kind; its numbers describe the code and the machine of the day it ran (benchmarks/RESULTS.md names both).

For SST-2, TREC and AG News it scores the rows of the few-label protocol's development split (never test) with
two candidates each: the plain format "Sentence: {input}\\nCategory:" and the same with ``similar:4`` nearest
demonstrations from draw 0's labelled rows (the long, per-input prompts the default search spends most of its
time on). Each runs once in float32 and once in bf16 (a fresh model, no response cache), and the table gives
the seconds, the bf16 speed-up and how many predictions are equal to float32's, with a 95% interval.

    python benchmarks/studies/dtype_probe.py [--rows 100] [--threads 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
import time

if __package__:  # benchmarks.studies.dtype_probe: the tests, python -m
    from .. import common, protocol
else:  # python benchmarks/studies/dtype_probe.py
    import _benchmarks  # noqa: F401  (puts benchmarks/ on the path)
    import common
    import protocol

TASKS = ("sst2", "trec", "agnews")
FORMAT = "Sentence: {input}\nCategory:"
DEMOS = (None, "similar:4")


def score(model, prepared, candidate, rows) -> tuple[float, list[str]]:
    """(seconds, the predicted label of each row) for one candidate."""
    from promptsearch.scoring import Scorer

    started = time.monotonic()
    results = Scorer(model).evaluate(prepared, candidate, rows)
    return time.monotonic() - started, [r.prediction for r in results]


def main(argv=None) -> int:
    import torch

    from promptsearch import runner
    from promptsearch.candidate import Candidate
    from promptsearch.metrics import wilson
    from promptsearch.models import load_model
    from promptsearch.models.hardware import cpu_flags

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100, help="development-split rows per task (default 100)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    info = common.machine(args.threads)
    flags = sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx"))
    models = {d: load_model(None, dtype=d, cache=False) for d in ("float32", "bfloat16")}
    rows_out, total = [], {"float32": 0.0, "bfloat16": 0.0, "equal": 0, "n": 0}
    print(f"bf16-related CPU flags: {', '.join(flags) or 'none'}; {info['summary']}")
    print(f"{'task':<7} {'demos':<10} {'rows':>4} {'fp32 s':>7} {'bf16 s':>7} {'speed-up':>8}  equal [95% CI]")
    for name in TASKS:
        task, extra = protocol.draw(name, 0)
        prepared = runner.prepare_task(task, {"selection": "auto", "seed": 0})
        rows = list(extra["devsplit"])[: args.rows]
        for demos in DEMOS:
            cand = Candidate(FORMAT, demos=demos)
            (t32, p32), (t16, p16) = (score(models[d], prepared, cand, rows) for d in ("float32", "bfloat16"))
            equal = sum(a == b for a, b in zip(p32, p16))
            lo, hi = wilson(equal, len(p32))
            print(f"{name:<7} {demos or 'none':<10} {len(rows):>4} {t32:>7.1f} {t16:>7.1f} {t32 / t16:>7.2f}x  "
                  f"{equal}/{len(p32)} [{lo:.3f}, {hi:.3f}]", flush=True)
            rows_out.append({"task": name, "demos": demos, "rows": len(rows), "float32_s": round(t32, 2),
                             "bfloat16_s": round(t16, 2), "speedup": round(t32 / t16, 3), "equal": equal})
            total["float32"] += t32
            total["bfloat16"] += t16
            total["equal"] += equal
            total["n"] += len(p32)
    lo, hi = wilson(total["equal"], total["n"])
    speedup = total["float32"] / total["bfloat16"]
    print(f"all: {total['float32']:.1f} s fp32, {total['bfloat16']:.1f} s bf16, {speedup:.2f}x; predictions equal "
          f"{total['equal']}/{total['n']} [{lo:.3f}, {hi:.3f}]")
    out = common.write_json(args.out or common.result_path("dtype_probe"), {
        "command": "python benchmarks/studies/dtype_probe.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": info, "cpu_flags": flags, "rows": rows_out,
        "total": {**total, "speedup": round(speedup, 3), "equal_ci": [lo, hi]}})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
