"""Scorer speed: a naive HF loop vs lm-evaluation-harness vs the promptsearch scorer, same requests,
in float32 and bfloat16 (the dtype column; ``--dtype auto``, the default, picks one of them per host).

    python benchmarks/bench_scorer.py [--quick]

Two workloads on SST-2 test with the label words " negative"/" positive" (two requests per example):
  short:  ``Review: {input}\\nSentiment:``
  long:   an instruction and 4 labelled demonstrations (>= 100 tokens every prompt shares), then the input
and with --multi a third: short prompts, four label words of one and two tokens.
Methods, all scoring the identical (context, continuation) requests:
  naive:   one request per forward pass, full logits (the reference for the max abs difference)
  lm-eval: ``HFLM(pretrained=model, tokenizer=tok, batch_size=32).loglikelihood`` (skipped if not installed)
  scorer:  ``Scorer.evaluate`` from a fresh Scorer (no result cache carried between repeats)
Every method runs in every dtype of ``--dtypes`` (one model loaded per dtype; lm-eval gets the same model, so
it compares at the same dtype). max|diff| is against the naive loop of the same dtype (the tolerance is
checked for float32 only: bf16 rounding differs with batch shapes), vs-fp32 against the float32 naive loop,
and agree is the share of examples whose predicted label equals float32 naive's.
Each method runs ``--repeat`` times, interleaved with the order rotated per round (so the dtypes alternate);
the best time counts
(the CPU is shared, so the minimum is the least-disturbed run; the JSON also keeps the best process
CPU time). One torch thread by default (--threads). tokens/s counts the tokens of every
request (context + continuation), i.e. the work a naive evaluation does, so it is comparable across
methods. Also measures the model load cold (GGUF dequantise into a fresh PROMPTSEARCH_CACHE) and cached.
Writes benchmarks/results/scorer-YYYY-MM-DD.json, dated today (--quick: scorer-quick-YYYY-MM-DD.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__:  # python -m benchmarks.bench_scorer
    from . import common
else:  # python benchmarks/bench_scorer.py: benchmarks/ is first on the path
    import common

LABEL_WORDS = ("negative", "positive")
# --multi: words of one and two tokens (label = index % 2), to measure packing longer words into one row
MULTI_WORDS = ("terrible", "great", "very bad", "very good")
SHORT_PROMPT = "Review: {input}\nSentiment:"
INSTRUCTION = ("Decide whether each movie review below is positive or negative. Read the whole review, "
               "weigh what the writer praises against what they criticise, and answer with one word.\n\n")
MIN_SHARED_TOKENS = 100
TOLERANCE = 1e-4  # max abs difference of log-likelihoods for the methods to agree


def read_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def long_prompt(sst2: Path) -> str:
    """Instruction + 2 negative and 2 positive demonstrations from train, alternating, then the input."""
    from promptsearch.template import escape

    train = read_rows(sst2 / "train.jsonl")
    neg = [r for r in train if r["label"] == 0 and 12 <= len(r["input"].split()) <= 25][:2]
    pos = [r for r in train if r["label"] == 1 and 12 <= len(r["input"].split()) <= 25][:2]
    demos = [neg[0], pos[0], neg[1], pos[1]]
    body = "".join(f"Review: {escape(r['input'])}\nSentiment: {LABEL_WORDS[r['label']]}\n\n" for r in demos)
    return INSTRUCTION + body + SHORT_PROMPT


# ---- the three methods: each returns one log-likelihood per request, in request order ----------
def run_naive(model, requests):
    from promptsearch.testing import naive_loglik

    return [naive_loglik(model, ctx, cont) for ctx, cont in requests]


def make_lm_eval(model):
    try:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        return None
    lm = HFLM(pretrained=model.model, tokenizer=model.tokenizer, batch_size=32)

    def run(_model, requests):
        reqs = [Instance("loglikelihood", {}, (ctx, cont), i) for i, (ctx, cont) in enumerate(requests)]
        return [lp for lp, _ in lm.loglikelihood(reqs, disable_tqdm=True)]

    run.encode_pair = lm._encode_pair  # for the tokenization parity check
    return run


def make_scorer_run(task, prompt):
    from promptsearch.candidate import Candidate
    from promptsearch.scoring import Scorer

    def run(model, _requests):
        results = Scorer(model).evaluate(task, Candidate(prompt), task.test)
        return [lp for r in results for lp in r.label_logprobs]

    return run


# ---- workloads ----------------------------------------------------------------------------------
def workload(model, name: str, prompt: str, rows: list[dict], words=LABEL_WORDS):
    from promptsearch.scoring import Scorer, continuation
    from promptsearch.task import Example, Task

    examples = tuple(Example(r["input"], r["output"], (), r["label"], str(r["id"])) for r in rows)
    task = Task(name, "classification", examples, examples, examples, "accuracy", prompt, tuple(words))
    render = Scorer(model).render
    requests = []
    for ex in examples:
        ctx = render(prompt, ex.input)
        requests += [(ctx, continuation(ctx, w)) for w in words]
    return task, requests


def shared_prefix_tokens(model, requests) -> int:
    from promptsearch.models.hf_batching import common_prefix_length as _common_prefix_length

    return _common_prefix_length([model.encode(ctx) for ctx, _ in requests])


def tokenization_mismatches(model, requests, encode_pair) -> int:
    """Requests whose tokens differ between our split encoding and lm-eval's whole-then-split one."""
    bad = 0
    for ctx, cont in requests:
        if encode_pair(ctx, cont) != (model.encode(ctx), model.encode(cont)):
            bad += 1
    return bad


def predictions(values, k: int) -> list[int]:
    return [max(range(k), key=values[i * k: (i + 1) * k].__getitem__) for i in range(len(values) // k)]


def bench(task, requests, methods: dict, repeat: int) -> dict:
    """``methods``: "dtype/method" -> (model, run). Times, differences and agreement per entry."""
    best, cpu, values = {}, {}, {}
    names = list(methods)
    for rnd in range(repeat):
        order = names[rnd % len(names):] + names[: rnd % len(names)]  # rotate who goes first
        for name in order:
            model, run = methods[name]
            t0, c0 = time.perf_counter(), time.process_time()
            values[name] = run(model, requests)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t0)
            cpu[name] = min(cpu.get(name, float("inf")), time.process_time() - c0)
    model = methods[names[0]][0]
    n_tokens = sum(len(model.encode(c)) + len(model.encode(k)) for c, k in requests)
    k = len(task.label_words)
    fp32_ref = values.get("float32/naive") or values[names[0]]
    fp32_preds = predictions(fp32_ref, k)
    rows = {}
    for name in names:
        dtype = name.split("/")[0]
        ref, naive = values[f"{dtype}/naive"], best[f"{dtype}/naive"]
        diff = max(abs(a - b) for a, b in zip(values[name], ref))
        preds = predictions(values[name], k)
        rows[name] = {
            "dtype": dtype,
            "max_abs_diff_vs_fp32": max(abs(a - b) for a, b in zip(values[name], fp32_ref)),
            "agree_with_fp32": sum(a == b for a, b in zip(preds, fp32_preds)) / len(preds),
            "accuracy": sum(p % 2 == ex.label for p, ex in zip(preds, task.test)) / len(preds),
            "seconds": best[name],
            "cpu_seconds": cpu[name],
            "requests_per_s": len(requests) / best[name],
            "examples_per_s": len(task.test) / best[name],
            "tokens_per_s": n_tokens / best[name],
            "speedup_vs_naive": naive / best[name],
            "speedup_vs_lm_eval": best[f"{dtype}/lm-eval"] / best[name] if f"{dtype}/lm-eval" in best else None,
            "speedup_vs_fp32": best[f"float32/{name.split('/')[1]}"] / best[name] if f"float32/{name.split('/')[1]}" in best else None,
            "max_abs_diff": diff,
        }
    return {"requests": len(requests), "examples": len(task.test), "request_tokens": n_tokens,
            "accuracy": rows[next(n for n in names if n.endswith("/scorer"))]["accuracy"], "methods": rows}


def print_table(name: str, res: dict, default: str = "") -> None:
    print(f"\n== {name}: {res['examples']} examples, {res['requests']} requests, {res['request_tokens']} tokens, "
          f"shared prefix {res['shared_prefix_tokens']} tokens, accuracy {res['accuracy']:.3f}")
    if res.get("tokenization_mismatches") is not None:
        print(f"   requests tokenised differently by lm-eval: {res['tokenization_mismatches']}")
    print(f"{'dtype':<10}{'method':<9}{'seconds':>9}{'ex/s':>8}{'tok/s':>8}{'x naive':>8}{'x lm-eval':>10}{'x fp32':>8}"
          f"{'max|diff|':>11}{'vs fp32':>9}{'agree':>7}{'acc':>7}")
    for m, r in res["methods"].items():
        vs = f"{r['speedup_vs_lm_eval']:.2f}" if r["speedup_vs_lm_eval"] is not None else "-"
        flag = "" if r["max_abs_diff"] <= TOLERANCE or r["dtype"] != "float32" else "  DISAGREES"
        dtype = r["dtype"] + ("*" if r["dtype"] == default else "")
        print(f"{dtype:<10}{m.split('/')[1]:<9}{r['seconds']:>9.2f}{r['examples_per_s']:>8.1f}"
              f"{r['tokens_per_s']:>8.0f}{r['speedup_vs_naive']:>8.2f}{vs:>10}{r['speedup_vs_fp32'] or 0:>8.2f}"
              f"{r['max_abs_diff']:>11.1e}{r['max_abs_diff_vs_fp32']:>9.1e}{r['agree_with_fp32']:>7.1%}{r['accuracy']:>7.3f}{flag}")


def load_times() -> dict:
    """Cold: dequantise the GGUF into a fresh cache dir. Cached: the second load from that dir."""
    from promptsearch.models.local import FrozenModel

    old = os.environ.get("PROMPTSEARCH_CACHE")
    tmp = tempfile.mkdtemp(prefix="ps-bench-cache-")
    os.environ["PROMPTSEARCH_CACHE"] = tmp
    try:
        t0 = time.perf_counter()
        FrozenModel.load()
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        FrozenModel.load()
        cached = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is None:
            os.environ.pop("PROMPTSEARCH_CACHE", None)
        else:
            os.environ["PROMPTSEARCH_CACHE"] = old
    return {"cold_s": cold, "cached_s": cached}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few requests, one round: a smoke run")
    ap.add_argument("--short", type=int, default=None, help="SST-2 test examples, short workload (default 160; quick 24)")
    ap.add_argument("--long", type=int, default=None, help="SST-2 test examples, long workload (default 96; quick 16)")
    ap.add_argument("--repeat", type=int, default=None, help="rounds per method, best counts (default 3; quick 1)")
    ap.add_argument("--multi", action="store_true", help=f"add a third workload: short prompts, label words {MULTI_WORDS}")
    ap.add_argument("--no-load", action="store_true", help="skip the cold/cached load timing")
    ap.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated dtypes to compare (float32 first: the reference)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: on the shared 2-core machine, 2 threads ran 4-8x slower under load)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/scorer[-quick]-YYYY-MM-DD.json, today)")
    common.add_data_argument(ap)
    args = ap.parse_args()
    n_short = args.short or (24 if args.quick else 160)
    n_long = args.long or (16 if args.quick else 96)
    repeat = args.repeat or (1 if args.quick else 3)
    out_path = Path(args.out or common.result_path(f"scorer{'-quick' if args.quick else ''}"))
    sst2 = common.data_root(args.data) / "sst2"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("lm_eval").setLevel(logging.ERROR)

    import torch
    import transformers

    from promptsearch.models.hardware import auto_dtype
    from promptsearch.models.local import FrozenModel

    torch.set_num_threads(args.threads)
    machine = common.machine()  # the load average before the benchmark adds its own
    started = datetime.datetime.now().astimezone()
    load = None if args.no_load else load_times()
    if load:
        print(f"model load: cold (GGUF dequantise) {load['cold_s']:.1f} s, cached (safetensors) {load['cached_s']:.1f} s")
    dtypes = args.dtypes.split(",")
    default, why = auto_dtype("cpu")
    print(f"--dtype auto (the default) on this host: {default} ({why}); marked * below")
    models = {d: FrozenModel.load(device="cpu", dtype=d) for d in dtypes}
    model = models[dtypes[0]]
    lm_evals = {d: make_lm_eval(m) for d, m in models.items()}  # lm-eval scores the very same model, same dtype
    lm_eval_run = lm_evals[dtypes[0]]
    if lm_eval_run is None:
        print("lm-eval is not installed (pip install -e '.[bench]'): skipping its column")
    test = read_rows(sst2 / "test.jsonl")
    results = {}
    workloads = [("short", SHORT_PROMPT, test[:n_short], LABEL_WORDS), ("long", long_prompt(sst2), test[:n_long], LABEL_WORDS)]
    if args.multi:
        workloads.append(("short-multi", SHORT_PROMPT, test[:n_short], MULTI_WORDS))
    for name, prompt, rows, words in workloads:
        task, requests = workload(model, name, prompt, rows, words)
        methods = {}
        for d in dtypes:  # dtype-major with rotation per round: fp32 and bf16 passes alternate
            methods[f"{d}/naive"] = (models[d], run_naive)
            if lm_evals[d]:
                methods[f"{d}/lm-eval"] = (models[d], lm_evals[d])
            methods[f"{d}/scorer"] = (models[d], make_scorer_run(task, prompt))
        res = {"prompt": prompt, "shared_prefix_tokens": shared_prefix_tokens(model, requests),
               "tokenization_mismatches": tokenization_mismatches(model, requests, lm_eval_run.encode_pair)
               if lm_eval_run else None}
        if name == "long" and res["shared_prefix_tokens"] < MIN_SHARED_TOKENS:
            sys.exit(f"the long prompt shares only {res['shared_prefix_tokens']} tokens (< {MIN_SHARED_TOKENS})")
        res.update(bench(task, requests, methods, repeat))
        results[name] = res
        print_table(name, res, default)
    try:
        import lm_eval

        lm_eval_version = lm_eval.__version__
    except (ImportError, AttributeError):
        lm_eval_version = None
    out = {
        "date": started.isoformat(timespec="seconds"),
        "machine": {**machine, "load_average_at_end": os.getloadavg()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "lm_eval": lm_eval_version},
        "model": model.name, "dtypes": dtypes, "auto_dtype": default, "auto_why": why, "repeat": repeat, "quick": args.quick,
        "load": load, "workloads": results,
    }
    common.write_json(out_path, out)
    print(f"\nwrote {out_path}")
    worst = max(r["max_abs_diff"] for res in results.values() for r in res["methods"].values() if r["dtype"] == "float32")
    if worst > TOLERANCE:
        sys.exit(f"the methods disagree: max abs difference {worst:.1e} > {TOLERANCE}")


if __name__ == "__main__":
    main()
