"""Scale-out: examples/s with Ray workers against the in-process scorer, same rows, side by side.

    python benchmarks/bench_scale.py            # SmolLM2, 256 SST-2 dev rows, chunks of 32
    python benchmarks/bench_scale.py --rows 512 --chunk 64

Rows scored once each (fresh caches) by: the local scorer with 1 and 2 torch threads, the same chunks
in process (1 thread), and the Ray executor with 1 and 2 workers of 1 thread each (actors started and
their models loaded before the clock starts). Per chunk: the cost of chunking (in-process chunks minus
local) and of Ray itself (one Ray worker minus in-process chunks); the driver's own CPU time per chunk
says how many workers one driver can feed.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

if __package__:  # python -m benchmarks.bench_scale
    from . import common
else:  # python benchmarks/bench_scale.py: benchmarks/ is first on the path
    import common
PROMPT = "Review: {input}\nSentiment:"


def _examples(data: Path, rows: int):
    from promptsearch.task import load_task

    task = load_task(str(data / "sst2"))
    return task, task.dev[:rows]


def time_local(task, examples, model, threads: int) -> dict:
    import torch

    from promptsearch.candidate import Candidate
    from promptsearch.scoring import Scorer

    torch.set_num_threads(threads)
    scorer = Scorer(model)
    started = time.perf_counter()
    results = scorer.evaluate(task, Candidate(PROMPT), examples)
    seconds = time.perf_counter() - started
    return {"mode": f"local, {threads} thread{'s' if threads > 1 else ''}", "seconds": seconds,
            "predictions": [r.prediction for r in results]}


def time_chunks(task, examples, model, chunk: int) -> dict:
    import torch

    from promptsearch.candidate import Candidate
    from promptsearch.scoring import Scorer
    from promptsearch.scoring.executors import ChunkedScorer, InProcess

    torch.set_num_threads(1)
    scorer = ChunkedScorer(Scorer(model), InProcess(Scorer(model)), chunk)
    started = time.perf_counter()
    results = scorer.evaluate(task, Candidate(PROMPT), examples)
    return {"mode": "in-process chunks, 1 thread", "seconds": time.perf_counter() - started,
            "predictions": [r.prediction for r in results]}


def time_ray(task, examples, model, workers: int, chunk: int) -> dict:
    import torch

    from promptsearch.candidate import Candidate
    from promptsearch.scoring import Scorer
    from promptsearch.scoring.executors import ChunkedScorer, RayPool

    torch.set_num_threads(1)
    pool = RayPool(None, workers=workers, threads=1, dtype=model.dtype_name)  # the driver's dtype (--dtype auto: bf16 on AMX)
    try:
        warm = ChunkedScorer(Scorer(model), pool, chunk)  # loads every replica's model before the clock
        warm.evaluate(task, Candidate("Text: {input}\nLabel:"), examples[: chunk * workers])
        scorer = ChunkedScorer(Scorer(model), pool, chunk)
        cpu, started = time.process_time(), time.perf_counter()
        results = scorer.evaluate(task, Candidate(PROMPT), examples)
        seconds, driver_cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        pool.close()
    n_chunks = -(-len(examples) // chunk)
    return {"mode": f"ray, {workers} worker{'s' if workers > 1 else ''} x 1 thread", "seconds": seconds,
            "chunks": n_chunks, "driver_cpu_per_chunk_ms": round(1000 * driver_cpu / n_chunks, 2),
            "predictions": [r.prediction for r in results]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--chunk", type=int, default=32)
    common.add_data_argument(ap)
    ap.add_argument("--out", default=str(common.result_path("scale")))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from promptsearch.models.local import FrozenModel

    machine = common.machine()  # the load average before the benchmark adds its own
    task, examples = _examples(common.data_root(args.data), args.rows)
    model = FrozenModel.load(device="cpu")
    rows = [time_local(task, examples, model, 1), time_local(task, examples, model, 2),
            time_chunks(task, examples, model, args.chunk),
            time_ray(task, examples, model, 1, args.chunk), time_ray(task, examples, model, 2, args.chunk)]
    reference = rows[0]["predictions"]
    for r in rows:
        r["examples_per_second"] = round(len(examples) / r["seconds"], 2)
        r["same_predictions_as_local"] = r.pop("predictions") == reference
    local, chunked, one, two = rows[0], rows[2], rows[3], rows[4]
    per_chunk = lambda a, b: round(1000 * (a["seconds"] - b["seconds"]) / one["chunks"], 1)  # noqa: E731
    result = {"rows": len(examples), "chunk": args.chunk, "modes": rows,
              "ray_2_over_1_workers": round(one["seconds"] / two["seconds"], 3),
              "local_2_over_1_threads": round(local["seconds"] / rows[1]["seconds"], 3),
              "per_chunk_overhead_ms": per_chunk(one, local),
              "per_chunk_chunking_ms": per_chunk(chunked, local), "per_chunk_ray_ms": per_chunk(one, chunked),
              "per_example_ms_one_worker": round(1000 * one["seconds"] / len(examples), 2),
              "machine": {**machine, "load_average_at_end": os.getloadavg()}}
    print(f"{'mode':<28} {'seconds':>8} {'examples/s':>11} {'same preds':>10}")
    for r in rows:
        print(f"{r['mode']:<28} {r['seconds']:>8.2f} {r['examples_per_second']:>11.2f} {r['same_predictions_as_local']!s:>10}")
    print(f"ray 2 workers / 1 worker: {result['ray_2_over_1_workers']:.2f}x;  local 2 threads / 1 thread: "
          f"{result['local_2_over_1_threads']:.2f}x;  per-chunk overhead {result['per_chunk_overhead_ms']:.0f} ms "
          f"(chunking {result['per_chunk_chunking_ms']:.0f}, Ray {result['per_chunk_ray_ms']:.0f}); "
          f"driver CPU {two['driver_cpu_per_chunk_ms']} ms per chunk")
    common.write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
