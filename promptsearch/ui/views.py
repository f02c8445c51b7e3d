"""What each page shows, as plain data for its template: computed from a run's logs and summary, never by
scoring anything (a split whose per-example outputs the run did not log is shown as "not logged")."""

from __future__ import annotations

import difflib
import itertools
import math
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import PromptSearchError
from ..format import estimate_kind, flat, fmt, options_note
from ..stats import PROPORTION_METRICS, format_p, outcomes, paired_test
from .runs import Run
from .svg import best_so_far, curve_chart

MAX_ROWS_SHOWN = 500  # disagreements listed on the compare page (all are counted)


# ---- the task a run was scored on (inputs and expected answers for the logged example keys) ----------------
class TaskCache:
    """Tasks by the config fields that pick them, loaded once (task files do not change under a run)."""

    def __init__(self):
        self._tasks: dict[str, object] = {}
        self._lock = threading.Lock()

    def get(self, config: dict):
        """The run's task, or a one-line reason it cannot be read now (moved, deleted, damaged)."""
        import json

        key = json.dumps([config.get(k) for k in ("task", "seed", "seed_prompt", "multitask")], sort_keys=True)
        with self._lock:
            if key in self._tasks:
                return self._tasks[key]
        from ..runner import load_task_of

        try:
            task = load_task_of(config)
        except PromptSearchError as e:
            task = str(e)
        with self._lock:
            self._tasks[key] = task
        return task


# ---- runs page ----------------------------------------------------------------------------------------------
def run_row(run: Run) -> dict:
    """One line of the runs page."""
    row = {"id": run.id, "dir": str(run.dir), "error": run.error, "status": run.status, "started": run.started}
    if run.error:
        return row
    best, seed = run.best or {}, run.seed or {}
    cfg = run.config
    row.update(task=run.task_name, model=run.model, metric=run.metric,
               strategies=" + ".join(cfg.get("strategies") or []), schedule=cfg.get("schedule", ""),
               seed_value=cfg.get("seed"), evals=run.evals,
               seed_dev=fmt(seed.get("dev"), ci=True, n=True), seed_test=fmt(seed.get("test"), ci=True, n=True),
               best_dev=fmt(best.get("dev"), ci=True, n=True), best_test=fmt(best.get("test"), ci=True, n=True),
               # the winner's estimate on the held-out rows no choice saw (selection.py), where the run kept some
               best_holdout=fmt(best["holdout"], ci=True, n=True) if best.get("holdout") else "",
               seed_holdout=fmt(seed["holdout"], ci=True, n=True) if seed.get("holdout") else "",
               # the run page notes a dev score that chose the winner exactly when `promptsearch run` does
               estimate=estimate_kind(run.summary),
               best_score=(best.get("test") or best.get("dev") or {}).get("score"),
               best_prompt=flat(best.get("prompt", ""), 90), resume=run.resume_command if run.status == "interrupted" else "")
    return row


# ---- run page -----------------------------------------------------------------------------------------------
def candidate_view(cand: dict) -> dict:
    """A candidate with the options that change how it is scored, spelled out."""
    members = []
    weights = cand.get("weights") or [1.0] * len(cand.get("members") or [])
    total = sum(weights) or 1.0
    for m, w in zip(cand.get("members") or [], weights):
        members.append({"prompt": m.get("prompt", ""), "weight": f"{w / total:.3f}", "note": options_note(m).strip(),
                        "label_words": ", ".join(m.get("label_words") or [])})
    return {"id": cand.get("id", ""), "prompt": cand.get("prompt", ""), "strategy": cand.get("strategy") or "seed",
            "edit": cand.get("edit", ""), "label_words": ", ".join(cand.get("label_words") or []),
            "soft": cand.get("soft") or "", "demos": cand.get("demos") or "", "calibrate": cand.get("calibrate") or "",
            "members": members, "note": options_note(cand).strip()}


def leaderboard(run: Run) -> list[dict]:
    tests = {}
    if run.summary:
        for which in ("best", "seed"):
            c = run.summary.get(which) or {}
            if c.get("id") and c.get("test"):
                tests[c["id"]] = c["test"]
    rows = []
    for rank, rec in enumerate(run.board, 1):
        cand, score = rec["candidate"], rec["score"]
        test = tests.get(cand["id"])
        rows.append({"rank": rank, "id": cand["id"], "strategy": cand.get("strategy") or "seed", "edit": cand.get("edit", ""),
                     "note": options_note(cand).strip(), "short": flat(cand.get("prompt", ""), 110),
                     "prompt": cand.get("prompt", ""), "dev": score.get("score"), "n": score.get("n", rec["size"]),
                     "ci": f"[{score.get('ci_low', math.nan):.3f}, {score.get('ci_high', math.nan):.3f}]",
                     "test": fmt(test, ci=True, n=True) if test else "", "test_value": test["score"] if test else -1,
                     "evals": rec.get("evals_used", 0)})
    return rows


def run_view(run: Run) -> dict:
    """The run page's data, computed once per state of the run's files (the Run object is cached by it)."""
    if "_view" not in run.__dict__:
        run.__dict__["_view"] = _run_view(run)
    return run.__dict__["_view"]


def _run_view(run: Run) -> dict:
    best = run.best or {}
    chart = curve_chart(best_so_far(run.records), run.evals) if run.records else {"empty": True}
    lineage = []
    if best.get("id"):
        known, cid, seen = run.candidates, best["id"], set()
        while cid in known and cid not in seen:  # first parents, as store.lineage follows them
            seen.add(cid)
            cand = known[cid]
            lineage.append({**candidate_view(cand), "mates": [known[p].get("prompt", "") for p in (cand.get("parents") or [])[1:]
                                                                if p in known]})
            parents = cand.get("parents") or []
            cid = parents[0] if parents else None
    summary = run.summary or {}
    paired, held = summary.get("paired_test"), summary.get("paired_holdout")
    from ..search.stopping import stop_line

    # why it stopped, as `promptsearch run` ends, and what was left out after the search (checked_summary: text)
    return {"stopped": stop_line(summary), "notes": summary.get("final_notes") or [],
            "best": candidate_view(best) if best else None, "best_scores": best,
            "seed": run.seed or {}, "paired": paired and {**paired, "p": format_p(paired["p_value"])},
            "paired_holdout": held and {**held, "p": format_p(held["p_value"])},
            "improvement": summary.get("improvement"), "board": leaderboard(run), "chart": chart,
            "stages": summary.get("stages") or [], "schedule": run.config.get("schedule", ""),
            "lineage": lineage, "budget": summary.get("budget_used"), "multitask": task_rows(summary.get("tasks"))}


def task_rows(tasks) -> list[dict]:
    """A universal prompt's per-task table (multitask_report's numbers): each task's own seed, the start, the best."""
    rows = []
    for t in tasks if isinstance(tasks, list) else []:
        def get(*path, t=t):
            return _dig(t, path)

        p = get("paired_test", "p_value")
        rows.append({"name": t.get("name", ""), "old": bool(t.get("old")), "metric": t.get("metric", ""),
                     "seed_test": fmt(get("seed", "test"), ci=True), "start_test": fmt(get("start", "test"), ci=True),
                     "best_dev": fmt(get("best", "dev"), ci=True, n=True), "best_test": fmt(get("best", "test"), ci=True, n=True),
                     "gain": get("gain", "test"), "p": format_p(p) if isinstance(p, (int, float)) else "-"})
    return rows


def _dig(obj, path):
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


# ---- per-example results ------------------------------------------------------------------------------------
@dataclass
class Logged:
    """A logged result row, shaped like the scorer's result for ``stats.outcomes``."""

    score: float
    prediction: str


def expected_of(task, ex, cand: dict) -> str:
    if getattr(task, "kind", "") == "classification" and ex.label is not None:
        words = cand.get("label_words") or task.label_words
        return words[ex.label] if ex.label < len(words) else str(ex.label)
    return " | ".join(ex.answers)


def is_error(metric: str, score) -> bool | None:
    """Whether a row missed: for 0/1 metrics a score under 1; undefined (None) for log-likelihood."""
    if metric == "loglik" or not isinstance(score, (int, float)):
        return None
    return score < 1


def example_rows(run: Run, task, cand: dict, results: dict[str, list], examples) -> list[dict]:
    """One row per logged example, in the split's order: input, expected, predicted, correct, label scores."""
    words = list(cand.get("label_words") or getattr(task, "label_words", ()) or [])
    rows = []
    for i, ex in enumerate(examples):
        got = results.get(ex.key)
        if got is None:
            continue
        score, pred = got[0], got[1]
        label_scores = list(got[3] or []) if len(got) > 3 else []
        ranked = sorted(label_scores, reverse=True)
        rows.append({"n": i + 1, "key": ex.key, "input": ex.input, "expected": expected_of(task, ex, cand),
                     "predicted": pred if pred is not None else "", "score": score,
                     "error": is_error(run.metric, score),
                     "labels": [(w, f"{s:.3f}") for w, s in zip(words, label_scores)],
                     "margin": f"{ranked[0] - ranked[1]:.3f}" if len(ranked) > 1 else "",
                     "gold": ex.label, "pred_index": words.index(pred) if pred in words else -1})
    return rows


def confusion(rows: list[dict], words: list[str]) -> dict | None:
    """Counts of gold label (rows) by predicted label (columns, plus 'other' for an answer none of them)."""
    if not words or not rows:
        return None
    cols = words + ["other"]
    counts = [[0] * len(cols) for _ in words]
    for r in rows:
        if r["gold"] is not None and 0 <= r["gold"] < len(words):
            counts[r["gold"]][r["pred_index"] if r["pred_index"] >= 0 else len(words)] += 1
    if not any(counts[i][-1] for i in range(len(words))):
        cols, counts = words, [c[:-1] for c in counts]
    return {"cols": cols, "rows": [(w, [(n, i == j) for j, n in enumerate(counts[i])]) for i, w in enumerate(words)]}


def prompt_view(run: Run, task, cand_id: str, errors_only: bool) -> dict:
    cand = run.candidates[cand_id]
    out = {"cand": candidate_view(cand), "labelled": getattr(task, "kind", "") == "classification", "rank": next((i for i, r in enumerate(run.board, 1) if r["candidate"]["id"] == cand_id), None),
           "task_error": task if isinstance(task, str) else "", "errors_only": errors_only, "splits": []}
    if isinstance(task, str):
        return out
    words = list(cand.get("label_words") or getattr(task, "label_words", ()) or [])
    for split, examples, results in (("dev", task.dev, run.results(cand_id)),
                                     ("test", task.test, _test_results(run, cand_id))):
        if results is None:
            out["splits"].append({"name": split, "logged": False})
            continue
        rows = example_rows(run, task, cand, results, examples)
        errors = [r for r in rows if r["error"]]
        scores = [r["score"] for r in rows if isinstance(r["score"], (int, float))]
        out["splits"].append({
            "name": split, "logged": True, "n": len(rows), "n_errors": len(errors),
            "mean": f"{sum(scores) / len(scores):.3f}" if scores else "-",
            "rows": errors if errors_only else rows,
            "confusion": confusion(rows, words) if task.kind == "classification" else None,
            "unknown": len(results) - len(rows)})
    return out


def _test_results(run: Run, cand_id: str) -> dict[str, list] | None:
    rec = run.tests.get(cand_id)
    return dict(zip(rec["keys"], rec["results"])) if rec else None


# ---- compare two prompts of a run ---------------------------------------------------------------------------
def text_diff(a: str, b: str) -> list[tuple[str, str]]:
    """(kind, line) with kind ' ' (both), '-' (only a), '+' (only b), line by line."""
    out = []
    for line in difflib.ndiff(a.split("\n"), b.split("\n")):
        if line.startswith("? "):
            continue
        out.append((line[0], line[2:]))
    return out


def paired(metric: str, task, keys: list[str], ra: dict, rb: dict, words_a, words_b) -> dict | None:
    """The paired test of b against a on the examples both were scored on."""
    if not keys:
        return None
    exs = [_Key(k, None) for k in keys]
    if not isinstance(task, str):
        by_key = {ex.key: ex for ex in (*task.dev, *task.test)}
        exs = [by_key.get(k) or _Key(k, None) for k in keys]
    a = outcomes([Logged(ra[k][0], ra[k][1]) for k in keys], exs, words_a)
    b = outcomes([Logged(rb[k][0], rb[k][1]) for k in keys], exs, words_b)
    if metric == "macro_f1" and any(g is None for g in a["golds"]):
        return None
    result = paired_test(metric, a, b)
    return {**result.to_json(), "p": format_p(result.p_value), "n": len(keys),
            "a": sum(a["scores"]) / len(keys), "b": sum(b["scores"]) / len(keys)}


@dataclass
class _Key:
    key: str
    label: int | None


def compare_view(run: Run, task, a_id: str, b_id: str) -> dict:
    ca, cb = run.candidates[a_id], run.candidates[b_id]
    words = list(getattr(task, "label_words", ()) or [])
    wa, wb = list(ca.get("label_words") or words), list(cb.get("label_words") or words)
    by_key = {} if isinstance(task, str) else {ex.key: ex for ex in (*task.dev, *task.test)}
    splits = []
    for split, ra, rb in (("dev", run.results(a_id), run.results(b_id)),
                          ("test", _test_results(run, a_id), _test_results(run, b_id))):
        if ra is None or rb is None:
            splits.append({"name": split, "logged": False})
            continue
        keys = [k for k in ra if k in rb]
        differ = [k for k in keys if ra[k][1] != rb[k][1] or ra[k][0] != rb[k][0]]
        rows = []
        for k in differ[:MAX_ROWS_SHOWN]:
            ex = by_key.get(k)
            rows.append({"key": k, "input": ex.input if ex else "(not in the task files now)",
                         "expected": expected_of(task, ex, ca) if ex else "",
                         "a": ra[k][1] or "", "a_score": ra[k][0], "b": rb[k][1] or "", "b_score": rb[k][0]})
        splits.append({"name": split, "logged": True, "shared": len(keys), "differ": len(differ), "rows": rows,
                       "test": paired(run.metric, task, keys, ra, rb, wa, wb)})
    return {"a": candidate_view(ca), "b": candidate_view(cb), "diff": text_diff(ca.get("prompt", ""), cb.get("prompt", "")),
            "splits": splits, "zero_one": run.metric in PROPORTION_METRICS, "task_error": task if isinstance(task, str) else ""}


# ---- registry -------------------------------------------------------------------------------------------------
def registry_view(path: Path | None) -> dict:
    from ..registry import Registry, default_path

    reg = Registry(path)
    where = reg.path if path else default_path()
    if not Path(where).exists():
        return {"path": str(where), "names": [], "missing": True, "error": ""}
    try:
        versions = reg.versions()
    except PromptSearchError as e:
        return {"path": str(where), "names": [], "missing": False, "error": str(e)}
    names: dict[str, list] = {}
    for v in versions:
        names.setdefault(v.name, []).append(version_view(v))
    for vs in names.values():
        for prev, cur in itertools.pairwise(vs):
            cur["previous"] = prev["ref"]
    return {"path": str(where), "names": sorted(names.items()), "missing": False, "error": ""}


def version_view(v) -> dict:
    art = v.artifact
    s = art.scores
    p = s["paired_test"]
    found = {"strategy": art.provenance.get("strategy") or "?", "edit": f"rank {art.provenance.get('rank', '?')} of its run"}
    return {"ref": v.ref, "name": v.name, "version": v.version, "added": v.added, "sha256": v.sha256,
            "cand": candidate_view({"prompt": art.prompt, "label_words": art.label_words, **found, **(art.options or {})}),
            "test": fmt(s["test"], ci=True, n=True), "dev": fmt(s["dev"], ci=True, n=True),
            "seed_test": fmt(s["seed_test"], ci=True, n=True), "seed_prompt": art.seed_prompt,
            "paired": f"{p['difference']:+.3f} ({p['test']} p={format_p(p['p_value'])}, {p['detail']})",
            "model": f"{art.model['name']} ({art.model['fingerprint'][:23]}…, {art.model['dtype']}{', chat' if art.chat else ''})",
            "task": f"{art.task['name']} ({art.metric})", "splits": sorted(art.task["splits"].items()),
            "check": f"promptsearch prompts export {v.ref} -o {v.name}-v{v.version}.json && "
                     f"promptsearch eval --artifact {v.name}-v{v.version}.json --check",
            "provenance": art.provenance, "created": art.created, "soft": bool(art.soft), "text": v.text}


def registry_compare(path: Path | None, ref_a: str, ref_b: str) -> dict:
    from ..registry import Registry

    reg = Registry(path)
    a, b = reg.get(ref_a), reg.get(ref_b)
    A, B = a.artifact, b.artifact
    out = {"a": version_view(a), "b": version_view(b), "diff": text_diff(A.prompt, B.prompt), "test": None, "rows": [],
           "same_text": A.prompt == B.prompt, "same_options": (A.options or {}) == (B.options or {})}
    ka, kb = A.test_outcomes, B.test_outcomes
    if A.metric == B.metric and sorted(ka["keys"]) == sorted(kb["keys"]):
        ia, ib = {k: i for i, k in enumerate(ka["keys"])}, {k: i for i, k in enumerate(kb["keys"])}
        keys = sorted(ia)
        pick = lambda rows, idx: {f: [rows[f][idx[k]] for k in keys] for f in ("scores", "golds", "preds")}
        ra, rb = pick(ka, ia), pick(kb, ib)
        result = paired_test(A.metric, ra, rb)
        out["test"] = {**result.to_json(), "p": format_p(result.p_value), "n": len(keys)}
        out["rows"] = [{"key": k, "a": ra["scores"][i], "b": rb["scores"][i]} for i, k in enumerate(keys)
                       if ra["scores"][i] != rb["scores"][i]][:MAX_ROWS_SHOWN]
    return out
