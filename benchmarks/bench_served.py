"""Served-model throughput: examples/s against llama-cpp-python's server at concurrency 1, 2 and 4, and
the in-process scorer on the same rows, side by side in one run; then a rerun from the warm disk cache.

    python benchmarks/bench_served.py [--rows 40] [--url http://HOST:PORT/v1]

Without --url it starts ``python -m llama_cpp.server`` on the embedded SmolLM2 GGUF (Q4_1, one thread) on a
free loopback port. Workload: SST-2 test rows, ``Review: {input}\\nSentiment:``, label words " negative" /
" positive". Each served pass starts from an empty response cache (its own folder), so every pass sends
its requests; the last pass runs again on its warm cache and must send none (the connect-time probe, a few
small requests that check the server is there and how it scores, is counted apart). The in-process scorer
is the fp32 model with one torch thread. Writes benchmarks/results/served-YYYY-MM-DD.json (today).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

if __package__:  # python -m benchmarks.bench_served
    from . import common
else:  # python benchmarks/bench_served.py: benchmarks/ is first on the path
    import common

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "sst2"
PROMPT = "Review: {input}\nSentiment:"


def served_pass(url: str, cache_dir: Path, concurrency: int, task, examples) -> dict:
    from promptsearch.candidate import Candidate
    from promptsearch.models.served import ServedModel
    from promptsearch.scoring import Scorer

    os.environ["PROMPTSEARCH_CACHE"] = str(cache_dir)
    model = ServedModel.connect([url], concurrency=concurrency)
    started = time.perf_counter()
    results = Scorer(model).evaluate(task, Candidate(PROMPT), examples)
    seconds = time.perf_counter() - started
    return {"method": f"served c={concurrency}", "concurrency": concurrency, "seconds": round(seconds, 2),
            "examples_per_second": round(len(examples) / seconds, 3), "requests": model.stats["requests"],
            "cache_hits": model.stats["cache_hits"], "probe_requests": model.stats["probe_requests"],
            "accuracy": sum(r.score for r in results) / len(results),
            "label_logprobs": [list(r.label_logprobs) for r in results]}


def in_process_pass(task, examples, cache_root: str) -> dict:
    import torch

    from promptsearch.candidate import Candidate
    from promptsearch.models.local import FrozenModel
    from promptsearch.scoring import Scorer

    torch.set_num_threads(1)
    os.environ["PROMPTSEARCH_CACHE"] = cache_root  # the dequantised fp32 weights, cached once
    model = FrozenModel.load(device="cpu")
    started = time.perf_counter()
    results = Scorer(model).evaluate(task, Candidate(PROMPT), examples)
    seconds = time.perf_counter() - started
    return {"method": "in-process fp32", "concurrency": None, "seconds": round(seconds, 2),
            "examples_per_second": round(len(examples) / seconds, 3), "requests": 0, "cache_hits": 0,
            "probe_requests": 0, "accuracy": sum(r.score for r in results) / len(results)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=40, help="SST-2 test rows (from the top)")
    ap.add_argument("--url", default=None, help="a running server's /v1 URL (default: start llama-cpp-python's)")
    ap.add_argument("--out", default=str(common.result_path("served")))
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from promptsearch.models.local import cache_root, embedded_gguf
    from promptsearch.task import load_task
    from promptsearch.testing import LlamaServer

    models_cache = str(cache_root())
    task = load_task(str(DATA))
    examples = task.test[: args.rows]
    server = None if args.url else LlamaServer(str(embedded_gguf())).start()
    url = args.url or server.url
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for c in (1, 2, 4):
                rows.append(served_pass(url, Path(tmp) / f"c{c}", c, task, examples))
            warm = served_pass(url, Path(tmp) / "c4", 4, task, examples)
            warm["method"] = "served c=4, warm cache"
            rows.append(warm)
    finally:
        if server is not None:
            server.stop()
    rows.append(in_process_pass(task, examples, models_cache))
    same = all(r["label_logprobs"] == rows[0]["label_logprobs"] for r in rows[:4])
    print(f"SST-2 test, {len(examples)} rows, {PROMPT!r}, 2 label words; server: {url}")
    print(f"{'method':<24} {'ex/s':>8} {'seconds':>8} {'requests':>9} {'cached':>7} {'probe':>6} {'accuracy':>9}")
    for r in rows:
        print(f"{r['method']:<24} {r['examples_per_second']:>8.3f} {r['seconds']:>8.1f} {r['requests']:>9} "
              f"{r['cache_hits']:>7} {r['probe_requests']:>6} {r['accuracy']:>9.3f}")
    print(f"served passes give identical label log-likelihoods: {same}")
    out = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": platform.platform(),
           "cpus": os.cpu_count(), "rows": len(examples), "prompt": PROMPT, "server": "llama-cpp-python 0.3.36"
           if server else url, "identical_across_passes": same,
           "results": [{k: v for k, v in r.items() if k != "label_logprobs"} for r in rows]}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
