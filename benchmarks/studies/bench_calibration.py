"""Calibration and chosen demonstrations on the seed prompts of SST-2, AG News and TREC (embedded SmolLM2).

Kind: method study (benchmarks/studies/): run once to choose a default or an option; its numbers describe
the code of the day it ran (benchmarks/RESULTS.md names the commit), and it is not rerun as the code changes.

Each task's seed prompt is scored plainly, with contextual and with domain calibration, with 4 random
train demonstrations (one seeded draw, the same for every input) and with the 4 most similar ones per
input (``demos=similar:4``), on a seeded class-balanced sample of the task's dev split and a seeded
sample of test rows; accuracy with n and 95% CI. The speed of fixed vs per-input demonstrations is
measured on the test rows (examples per second, fresh cache). Nothing is searched: this shows what each
option does to one prompt, the effect the strategies then race on dev.

    python benchmarks/studies/bench_calibration.py [--dev 48] [--test 200] [--threads 1] [--tasks sst2,agnews,trec]
"""

from __future__ import annotations

import argparse
import random
import time

if __package__:  # benchmarks.studies.bench_calibration: the tests, python -m
    from .. import common
else:  # python benchmarks/studies/bench_calibration.py
    import _benchmarks  # noqa: F401  (puts benchmarks/ on the path)
    import common


def variants(task) -> dict:
    from promptsearch.candidate import Candidate
    from promptsearch.scoring import demos

    seed = task.seed_prompt
    shots = random.Random(0).sample(list(task.train), 4)
    fixed = demos.render(seed, shots, task.label_words, task.kind) + seed
    return {"plain": Candidate(seed), "contextual": Candidate(seed, calibrate="contextual"),
            "domain": Candidate(seed, calibrate="domain"), "random 4 demos": Candidate(fixed),
            "similar:4 demos": Candidate(seed, demos="similar:4"),
            "random 4 + contextual": Candidate(fixed, calibrate="contextual")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dev", type=int, default=48)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tasks", default="sst2,agnews,trec")
    ap.add_argument("--out", default=str(common.result_path("calibration")))
    common.add_data_argument(ap)
    args = ap.parse_args()

    import torch

    from promptsearch.metrics import summarize
    from promptsearch.models.local import FrozenModel
    from promptsearch.scoring import Scorer

    torch.set_num_threads(args.threads)
    machine = common.machine(args.threads)
    model = FrozenModel.load()
    rows = []
    for name in args.tasks.split(","):
        task = common.load_bench_task(name, args.dev, args.test, args.data)
        scorer = Scorer(model)
        for label, cand in variants(task).items():
            row = {"task": name, "variant": label, "options": cand.options(), "prompt": cand.prompt}
            for split in ("dev", "test"):
                examples = task.dev if split == "dev" else task.test
                started = time.perf_counter()
                results = scorer.evaluate(task, cand, examples)
                seconds = time.perf_counter() - started
                row[split] = summarize(task.metric, results, examples, task.label_words).to_json()
                row[f"{split}_seconds"] = round(seconds, 2)
            # a calibrated variant reuses the plain prompt's cached rows: only its bias rows were timed
            row["test_examples_per_s"] = round(len(task.test) / row["test_seconds"], 1) if "calibrate" not in row["options"] else None
            rows.append(row)
            print(f"{name:<7} {label:<22} dev {row['dev']['score']:.3f}  test {row['test']['score']:.3f}"
                  f"  ({row['test_seconds']:.1f} s)", flush=True)
    table = render(rows)
    print("\n" + table)
    common.write_json(args.out, {"command": "python benchmarks/studies/bench_calibration.py " + " ".join(
        f"--{k} {v}" for k, v in (("dev", args.dev), ("test", args.test), ("threads", args.threads), ("tasks", args.tasks))),
        "model": model.name, "machine": machine, "rows": rows, "table": table})
    print(f"\nwrote {args.out}")


def render(rows: list[dict]) -> str:
    from promptsearch.format import fmt

    out = ["| task | variant | dev (n, 95% CI) | test (n, 95% CI) | test examples/s |", "|---|---|---|---|---|"]
    for r in rows:
        speed = "-" if r["test_examples_per_s"] is None else f"{r['test_examples_per_s']:.1f}"
        out.append(f"| {r['task']} | {r['variant']} | {fmt(r['dev'], ci=True, n=True)} | {fmt(r['test'], ci=True, n=True)} | {speed} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
