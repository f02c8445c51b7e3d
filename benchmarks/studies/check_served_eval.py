"""Check `promptsearch eval --json` against a served model: its label log-likelihoods against llama_cpp
in this process (the same GGUF, ``logits_all=True``), and its accuracy against the in-process fp32 model.

Kind: method study (benchmarks/studies/): run once to choose a default or an option; its numbers describe
the code of the day it ran (benchmarks/RESULTS.md names the commit), and it is not rerun as the code changes.

    promptsearch eval --model http://HOST:PORT/v1 --task ../shared/data/sst2 --split test --limit 200 \\
        --prompt 'Review: {input}\\nSentiment:' --json > served-2026-11-30.json
    promptsearch eval --task ../shared/data/sst2 --split test --limit 200 --prompt '...' --json > local.json
    python benchmarks/studies/check_served_eval.py served-2026-11-30.json local.json

The client sends every prompt as it is (a late-pairing echo server is read through plain completions), so
the reference is the same text scored by llama_cpp. Writes benchmarks/results/served_eval-YYYY-MM-DD.json (today).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__:  # benchmarks.studies.check_served_eval: the tests, python -m
    from .. import common
else:  # python benchmarks/studies/check_served_eval.py
    import _benchmarks  # noqa: F401  (puts benchmarks/ on the path)
    import common

ROOT = common.REPO


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("served")
    ap.add_argument("local")
    ap.add_argument("--out", default=str(common.result_path("served_eval")))
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from llama_cpp import Llama

    from promptsearch.models.local import embedded_gguf
    from promptsearch.scoring import continuation
    from promptsearch.task import load_task
    from promptsearch.template import render
    from promptsearch.testing import llama_cpp_loglik

    served, local = json.loads(Path(args.served).read_text()), json.loads(Path(args.local).read_text())
    task = load_task(served["task"] if Path(served["task"]).is_dir() else str(common.data_root() / served["task"]))
    rows = {ex.id: ex for ex in task.split(served["split"])}
    llm = Llama(str(embedded_gguf()), logits_all=True, n_threads=1, n_ctx=2048, verbose=False)
    worst = 0.0
    for r in served["results"]:
        context = render(served["prompt"], rows[r["id"]].input)
        for word, value in zip(served["label_words"], r["label_logprobs"]):
            cont = continuation(context, word)
            ref = llama_cpp_loglik(llm, context + cont, cont)
            worst = max(worst, abs(value - ref))
    agree = sum(a["prediction"] == b["prediction"] for a, b in zip(served["results"], local["results"]))
    out = {"rows": served["n"], "max_abs_diff_vs_llama_cpp": worst, "served_accuracy": served["score"],
           "in_process_fp32_accuracy": local["score"], "accuracy_gap": served["score"] - local["score"],
           "same_prediction": agree / len(served["results"]), "served_scoring": served.get("scoring"),
           "served_stats": served.get("served")}
    for k, v in out.items():
        print(f"{k:<28} {v}")
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
