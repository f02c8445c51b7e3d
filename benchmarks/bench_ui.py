"""How fast ``promptsearch ui`` renders big pages, and how much memory its server holds.

Writes synthetic runs (no model): 200 finished runs for the runs page, and one run of 5,000 candidates raced
on a 144-row dev split (every candidate on 16 rows, a third on 48, a ninth on 144, with per-example results, as
a real log holds them). Starts ``promptsearch ui`` as its own process on a loopback port, times each page's first
(cold: files read and parsed) and later (warm: cached) requests, and reads the server's resident memory.

    python benchmarks/bench_ui.py [--repeat 5] [--out benchmarks/results/ui_bench-YYYY-MM-DD.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

WORDS = ("movie film plot acting story great awful dull charming long short funny sad review answer label "
         "classify sentiment positive negative the a of and with").split()


def write_task(folder: Path, dev: int, test: int, rng: random.Random):
    from promptsearch.task import load_task

    folder.mkdir(parents=True)
    for split, n in (("train", 64), ("dev", dev), ("test", test)):
        rows = []
        for i in range(n):
            label = rng.randrange(2)
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40)))
            rows.append(json.dumps({"input": f"{text} #{split}{i}", "output": ["negative", "positive"][label], "label": label}))
        (folder / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    (folder / "labels.json").write_text('["negative", "positive"]')
    return load_task(str(folder))


def score(values) -> dict:
    from promptsearch.metrics import wilson

    n, s = len(values), sum(values)
    low, high = wilson(s, n)
    return {"metric": "accuracy", "score": s / n, "n": n, "ci_low": low, "ci_high": high}


def write_run(folder: Path, task, n_candidates: int, rng: random.Random, task_dir: Path) -> None:
    """A finished run whose log races ``n_candidates`` prompts on nested dev prefixes (16, 48, 144)."""
    from promptsearch import runner
    from promptsearch.candidate import Candidate

    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(runner.make_config(task=str(task_dir), strategies=["templates", "clarify"])))
    lines, evals, cands = [], 0, []
    for i in range(n_candidates):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60 if i % 7 else 250)))
        cand = Candidate(f"{words.capitalize()}.\nReview: {{input}}\nSentiment:", strategy="seed" if i == 0 else rng.choice(
            ["templates", "clarify"]), parents=(cands[rng.randrange(len(cands))]["id"],) if cands else (),
            edit="format" if i else "").to_json()
        cands.append(cand)
        skill = rng.random()
        for size in (16, 48, 144):
            if size > 16 and (size == 48 and i % 3 or size == 144 and i % 9):
                break
            results = {}
            for ex in task.dev[:size]:
                right = rng.random() < 0.5 + 0.4 * skill
                pred = ["negative", "positive"][ex.label if right else 1 - ex.label]
                lps = [-1.0 - rng.random(), -1.0 - rng.random()]
                results[ex.key] = [float(right), pred, lps[ex.label], lps]
            evals += size
            lines.append({"candidate": cand, "size": size, "score": score([r[0] for r in results.values()]),
                          "tie": -1.5, "evals_used": evals, "seconds": evals / 100, "results": results})
    (folder / "candidates.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    from promptsearch.store import best_records

    best, seed = best_records(lines)[0], lines[0]
    tests = {}
    for rec in (seed, best):
        outcomes = [[float(rng.random() < 0.7), "positive", -1.0, [-1.2, -1.0]] for _ in task.test]
        tests[rec["candidate"]["id"]] = outcomes
        with (folder / "test.jsonl").open("a") as f:
            f.write(json.dumps({"candidate": rec["candidate"], "keys": [ex.key for ex in task.test], "results": outcomes}) + "\n")
    summary = {"task": "synthetic", "metric": "accuracy",
               "best": {**best["candidate"], "dev": best["score"], "test": score([r[0] for r in tests[best["candidate"]["id"]]])},
               "seed": {**seed["candidate"], "dev": seed["score"], "test": score([r[0] for r in tests[seed["candidate"]["id"]]])},
               "leaderboard": [], "budget_used": {"candidates": n_candidates, "evals": evals, "charged": 0, "seconds": evals / 100,
                                                  "tokens": 0},
               "stages": [{"strategy": "templates", "evals": evals // 2, "pulls": 10, "leads": 3},
                          {"strategy": "clarify", "evals": evals // 2, "pulls": 12, "leads": 5}],
               "paired_test": {"test": "exact McNemar", "difference": 0.05, "p_value": 0.2, "detail": "30 vs 20 discordant"},
               "improvement": {"dev": 0.1, "test": 0.05}, "model": "synthetic"}
    (folder / "summary.json").write_text(json.dumps(summary))


def fetch(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as r:
        body = r.read()
        assert r.status == 200, (url, r.status)
    return time.perf_counter() - started, len(body)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=common.result_path("ui_bench"))
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        task = write_task(tmp / "task", 144, 200, rng)
        t0 = time.time()
        many, big = tmp / "many", tmp / "big"
        for i in range(args.runs):
            write_run(many / f"run-{i:03d}", task, 30, rng, tmp / "task")
        write_run(big / "big", task, args.candidates, rng, tmp / "task")
        log_mib = (big / "big" / "candidates.jsonl").stat().st_size / 2**20
        print(f"wrote {args.runs} runs and one of {args.candidates} candidates ({log_mib:.1f} MiB log) in {time.time() - t0:.0f} s")
        from promptsearch.testing import free_port

        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "promptsearch", "ui", str(many), str(big), "--port", str(port), "-q"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            proc.stdout.readline()  # the address line: the server is about to listen
            base = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    urllib.request.urlopen(base + "/static/ui.css", timeout=2)
                    break
                except OSError:
                    time.sleep(0.1)
            rss_idle = rss_mib(proc.pid)
            best = json.loads((big / "big" / "summary.json").read_text())["best"]["id"]
            n = f"{args.candidates:,}"
            pages = {f"runs page ({args.runs + 1} runs)": "/", f"run page, {n} candidates (top 300 rows)": "/1/big",
                     f"run page, {n} candidates (all rows)": "/1/big?all=1",
                     "prompt page (best, dev+test)": f"/1/big/prompt/{best}", "compare page (seed vs best)": "/1/big/compare"}
            rows = []
            for name, path in pages.items():
                url = base + (path if path == "/" else "/run" + path)
                cold, size = fetch(url)
                warm = [fetch(url)[0] for _ in range(args.repeat)]
                rows.append({"page": name, "path": path, "cold_s": round(cold, 3), "warm_median_s": round(statistics.median(warm), 3),
                             "warm_max_s": round(max(warm), 3), "html_kib": round(size / 1024, 1)})
                print(f"{name:<45} cold {cold:6.3f} s   warm median {statistics.median(warm):6.3f} s   {size / 1024:8.1f} KiB", flush=True)
            rss = rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)
    result = {"machine": common.machine(1), "runs": args.runs, "candidates": args.candidates, "log_mib": round(log_mib, 1),
              "pages": rows, "server_rss_mib": {"idle": round(rss_idle, 1), "after_pages": round(rss, 1)},
              "under_a_second": all(r["cold_s"] < 1 and r["warm_median_s"] < 1 for r in rows)}
    print(f"server RSS: {rss_idle:.0f} MiB idle, {rss:.0f} MiB with the pages open; every page under 1 s: {result['under_a_second']}")
    common.write_json(args.out, result)


if __name__ == "__main__":
    main()
