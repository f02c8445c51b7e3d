"""One candidate of a finished (or interrupted) run, read back from its logs: its per-example outputs on dev
(``candidates.jsonl``) or test (``test.jsonl``), for `show --examples` (#30)."""

from __future__ import annotations

from .errors import PromptSearchError
from .outputs import example_rows


def candidate_outputs(store, task, cand: dict, split: str) -> list[dict]:
    """Per-example rows of a logged candidate. Multi-task runs: each row names its task and is judged by
    that task's own label words and metric."""
    from .results import ExampleResult

    cid, words = cand["id"], tuple(cand.get("label_words") or ())
    found: list[tuple] = []  # (task, example, result json)
    if split == "dev":
        results: dict = {}
        for rec in store.read("candidates.jsonl"):
            if rec["candidate"]["id"] == cid:
                results.update(rec["results"])  # each rung logs only its new rows
        for ex in task.dev:
            if ex.key in results:
                part, plain = _owner(task, ex)
                found.append((part, plain, results[ex.key]))
    else:
        by_key = {ex.key: (part, ex) for part in getattr(task, "parts", None) or (task,) for ex in part.test}
        for rec in store.read("test.jsonl"):
            if isinstance(rec, dict) and (rec.get("candidate") or {}).get("id") == cid:
                for key, r in zip(rec.get("keys") or (), rec.get("results") or ()):
                    if key in by_key:
                        found.append((*by_key[key], r))
    if not found:
        where = "test (only the best and the seed prompt are scored on test)" if split == "test" else "dev"
        raise PromptSearchError(f"no outputs of candidate {cid} on {where} in {store.dir}")
    rows = []
    for part, ex, r in found:
        row = example_rows(part, [ex], [ExampleResult.from_json(r)], words or part.label_words)[0]
        if part is not task:
            row["task"] = part.name
        rows.append(row)
    return rows


def _owner(task, ex):
    """(task, plain example) of a dev row; a multi-task run's row belongs to one of its parts."""
    rows = getattr(task, "rows", None)
    if rows and ex.key in rows:
        return rows[ex.key]
    return task, ex
