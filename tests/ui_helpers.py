"""Runs for the ui tests: one real search on the tiny model, and hand-written run folders whose numbers the
tests choose (a hostile one, an unfinished one)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from promptsearch.metrics import wilson

HOSTILE_PROMPT = 'Review: <script>window.__xss=1</script> "><img src=x onerror="window.__xss=2"> {input}\nSentiment:'
HOSTILE_INPUTS = ['<script>window.__xss=3</script> great film', '"><img src=x onerror=window.__xss=4> awful film',
                  "</pre></td><script>window.__xss=5</script>", "plain and dull"]


def needs_ui():
    """Skip without the ui extra, except under CI, where the suite must run it."""
    import pytest

    if os.environ.get("CI"):
        return
    pytest.importorskip("starlette")
    pytest.importorskip("jinja2")
    pytest.importorskip("uvicorn")


def tiny_run(tiny, task_dir, run_dir):
    """A real finished run: templates then clarify on the tiny model (about 10 s)."""
    from promptsearch import runner
    from promptsearch.scoring import Scorer
    from promptsearch.task import load_task

    config = runner.make_config(task=str(task_dir), strategies=["templates", "clarify"], budget={"max_evals": 200},
                                racing={"min_examples": 8})
    return runner.run(config, run_dir, parts=(load_task(str(task_dir)), tiny, Scorer(tiny)))


def write_task(folder: Path, dev: list[tuple[str, int]], test: list[tuple[str, int]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    words = ["negative", "positive"]
    for split, rows in (("train", dev), ("dev", dev), ("test", test)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps({"input": x, "output": words[y], "label": y}) + "\n"
                                                      for x, y in rows), encoding="utf-8")
    (folder / "labels.json").write_text(json.dumps(words))
    return folder


def score(values: list[float]) -> dict:
    n, s = len(values), sum(values)
    low, high = wilson(s, n)
    return {"metric": "accuracy", "score": s / n, "n": n, "ci_low": low, "ci_high": high}


def hand_run(run_dir: Path, task_dir: Path, prompts: list[tuple[str, list[str]]], finished: bool = True) -> dict:
    """A run whose candidates predict the given label words on every dev row (in order); the first prompt is
    the seed, the last the winner. Returns the candidate records and the task's examples."""
    from promptsearch import runner
    from promptsearch.candidate import Candidate
    from promptsearch.task import load_task

    task = load_task(str(task_dir))
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(runner.make_config(task=str(task_dir), strategies=["templates"])))
    cands, lines, evals = [], [], 0
    for i, (text, preds) in enumerate(prompts):
        cand = Candidate(text, strategy="seed" if i == 0 else "templates", edit="" if i == 0 else "format",
                         parents=(cands[0]["id"],) if i else ()).to_json()
        cands.append(cand)
        results = {}
        for ex, pred in zip(task.dev, preds):
            gold = task.label_words[ex.label]
            lps = [-1.0, -2.0] if pred == "negative" else [-2.0, -1.0]
            results[ex.key] = [float(pred == gold), pred, lps[ex.label], lps]
        evals += len(results)
        lines.append({"candidate": cand, "size": len(results), "score": score([r[0] for r in results.values()]),
                      "tie": -1.0, "evals_used": evals, "seconds": 0.1 * (i + 1), "results": results})
    (run_dir / "candidates.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    if finished:
        best = max(lines, key=lambda x: (x["size"], x["score"]["score"]))
        seed = lines[0]
        summary = {"task": task.name, "metric": "accuracy",
                   "best": {**best["candidate"], "dev": best["score"], "test": score([1.0, 0.0])},
                   "seed": {**seed["candidate"], "dev": seed["score"], "test": score([0.0, 0.0])},
                   "leaderboard": [], "budget_used": {"candidates": len(lines), "evals": evals, "charged": 0,
                                                      "seconds": 1.0, "tokens": 0},
                   "stages": [{"strategy": "templates", "evals": evals, "stalled": False}],
                   "paired_test": {"test": "exact McNemar", "difference": 0.5, "p_value": 1.0, "detail": "1 vs 0 discordant"},
                   "improvement": {"dev": 0.5, "test": 0.5}, "model": "hand-written",
                   "estimate": {"which": "dev", **best["score"]}}  # nothing held out, as search/objective.py writes it
        (run_dir / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return {"candidates": cands, "task": task}


def get(url: str, headers: dict | None = None) -> tuple[int, str, dict]:
    """(status, body, headers) of a GET, without following redirects."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
            return r.status, r.read().decode("utf-8"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8"), dict(e.headers)


def post(url: str, form: dict, headers: dict | None = None) -> tuple[int, str, dict]:
    from urllib.parse import urlencode

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    data = urlencode(form).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                          **(headers or {})})
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as r:
            return r.status, r.read().decode("utf-8"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8"), dict(e.headers)


def make_runs(base, tiny, small_task_dir, last: str = "unfinished") -> dict:
    """The runs the UI tests look at, under ``base/runs``: a real tiny-model run, a hand-written one whose
    prompt and inputs are hostile HTML, and an unfinished one named ``last``."""
    runs = base / "runs"
    summary = tiny_run(tiny, small_task_dir, runs / "real")
    task_dir = write_task(base / "task-hand", dev=[(HOSTILE_INPUTS[0], 1), (HOSTILE_INPUTS[1], 0), (HOSTILE_INPUTS[2], 1),
                                                   (HOSTILE_INPUTS[3], 0)], test=[("fine", 1), ("bad", 0)])
    hostile = hand_run(runs / "hostile", task_dir, [("Input: {input}\nLabel:", ["negative"] * 4),
                                                    (HOSTILE_PROMPT, ["positive", "negative", "negative", "negative"])])
    hand_run(runs / last, task_dir, [("Text: {input}\nLabel:", ["positive"] * 4)], finished=False)
    return {"runs": runs, "summary": summary, "hostile": hostile, "base": base}

