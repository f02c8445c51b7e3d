"""Turn a run's N-th best prompt into an artifact (see artifact.py).

Everything comes from the run directory when the run logged it (the winner's and the seed's
per-example test results are in ``test.jsonl``); a lower-ranked prompt, or a run from before that
log existed, is scored on test here, once, with the run's own model and settings.
"""

from __future__ import annotations

import hashlib
import time
from importlib import metadata
from pathlib import Path

from . import artifact, runner
from .candidate import Candidate
from .errors import PromptSearchError
from .metrics import summarize
from .prompt import scoring_rule
from .scoring import ExampleResult, calibration, demos
from .scoring.scorer import evaluate_fitting
from .stats import outcomes, paired_test
from .store import RunStore

LINEAGE_FIELDS = ("id", "strategy", "edit", "prompt", "label_words", "parents")


def held_out(summary: dict, best_id: str) -> dict:
    """The winner's and the seed's scores on the held-out rows no choice saw (``holdout``, ``seed_holdout``), for
    the run's winner where the run kept such rows: the estimate `run` reports, which its dev score (it chose the
    winner) overstates. An application reading the artifact sees the same honest number the run printed."""
    if summary["best"].get("id") != best_id or not summary["best"].get("holdout"):
        return {}
    out = {"holdout": summary["best"]["holdout"]}
    if summary["seed"].get("holdout"):
        out["seed_holdout"] = summary["seed"]["holdout"]
    return out


def export_run(run_dir: str | Path, out: str | Path, rank: int | None = None, parts=None, named=()) -> artifact.Artifact:
    """Write the artifact of the run's ``rank``-th prompt (default: its best, the winner as the summary reports it:
    the first of the leaderboard, or its calibrated twin, search/loop.py) to ``out``; returns it. ``parts`` (task,
    model, scorer) skips loading the run's model, for callers that hold it already. ``named``: server URLs
    given on the command line; a served run's model is connected to (to score on test) only when named."""
    store = RunStore.open(run_dir)
    config, summary = runner.read_config(store), store.checked_summary()
    if config.get("multitask"):
        raise PromptSearchError(f"{run_dir}: a multi-task run has no single-task artifact yet; extend it with "
                                f"promptsearch run --extend {run_dir} --task NEW")
    if summary is None:
        raise PromptSearchError(f"{run_dir}: the run has not finished (no test scores yet); finish it with run --resume {run_dir}")
    board = store.leaderboard()
    if rank is None:
        rank = next((i + 1 for i, row in enumerate(board) if row["id"] == summary["best"]["id"]), 1)
    if not 1 <= rank <= len(board):
        raise PromptSearchError(f"--rank {rank}: the run has {len(board)} ranked prompts")
    row = board[rank - 1]
    best = Candidate.from_json(row)
    seed = Candidate.from_json(summary["seed"])
    task, scorer = _task_and_scorer(config, parts)
    # A refine run logged scores with ratings blended in; an artifact records the task's own metric,
    # so such a run's prompts are scored again, plainly, on all of dev and on test.
    refined = bool(config.get("feedback"))
    logged = {} if refined else _logged_test_results(store, task)
    if any(m.soft for m in best.members):
        raise PromptSearchError(f"rank {rank} is an ensemble with a soft-prompt member; an artifact cannot carry member vectors yet")
    soft_bytes = _soft_bytes(Path(run_dir), best.soft) if best.soft else None
    if any(c.id not in logged for c in (best, seed)):
        scorer = scorer or runner.load_parts(config, named=list(named))[2]
        if config.get("metric"):  # scored by the run's own metric (custom_metric.py)
            from .custom_metric import apply

            task, scorer = apply(config["metric"], task, scorer)
        if best.soft:
            from safetensors.torch import load

            scorer.register_soft_prompt(best.soft, load(soft_bytes)["prompt_embeddings"])
    # a test row too long for the model's context with the prompt scores as wrong, as in the run (objective.py)
    results = {c.id: logged.get(c.id) or evaluate_fitting(scorer, task, c, task.test)[0] for c in (best, seed)}
    words = {c.id: c.label_words or task.label_words for c in (best, seed)}
    from .selection import kept

    def on_dev(c):  # as the search scored it: without the train rows the prompt shows (selection.py)
        rows = [task.dev[i] for i in kept(task, c, task.dev)]
        return summarize(task.metric, evaluate_fitting(scorer, task, c, rows)[0], rows, words[c.id]).to_json()

    dev = {c.id: on_dev(c) for c in (best, seed)} if refined else {best.id: row["dev"], seed.id: summary["seed"]["dev"]}
    score = {c.id: summarize(task.metric, results[c.id], task.test, words[c.id]).to_json() for c in (best, seed)}
    rows = {c.id: outcomes(results[c.id], task.test, words[c.id]) for c in (best, seed)}
    out = Path(out)
    made = artifact.Artifact(
        prompt=best.prompt, label_words=tuple(words[best.id]) or None, chat=bool(config["chat"]),
        soft=_soft_record(out, soft_bytes) if best.soft else None,
        model={"spec": config["model"], "name": summary.get("model") or str(config["model"]), "dtype": summary.get("dtype") or config["dtype"],
               "fingerprint": artifact.model_fingerprint(config["model"], summary)},
        task=artifact.task_identity(task, config["seed"]),
        scores={"dev": dev[best.id], "test": score[best.id], "seed_dev": dev[seed.id], "seed_test": score[seed.id],
                "paired_test": paired_test(task.metric, rows[seed.id], rows[best.id]).to_json(),
                **({} if refined else held_out(summary, best.id))},
        test_outcomes={k: rows[best.id][k] for k in ("keys", "scores", "golds", "preds")},
        seed_prompt=seed.prompt,
        provenance={"run_dir": str(Path(run_dir).resolve()), "candidate_id": best.id, "rank": rank,
                    "strategy": best.strategy, "strategies": config["strategies"], "options": config["options"],
                    "budget": config["budget"], "budget_used": summary.get("budget_used"), "racing": config["racing"],
                    "feedback": config.get("feedback"), "seed": config["seed"], "lineage": [{k: c.get(k) for k in LINEAGE_FIELDS} for c in store.lineage(best.id)]},
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        promptsearch_version=metadata.version("promptsearch"),
        options=best.options(),
        demo_pool=demos.pool_rows(task) if demos.uses_pool(best) else None,
        scoring={**scoring_rule(task.kind, task.metric, best, bool(config["chat"]), summary.get("max_new_tokens")),
                 **stored_biases(summary, bool(config["chat"]), task, best)},
    )
    artifact.write(made, out, soft_bytes)
    return made


def stored_biases(summary: dict, chat: bool, task, candidate) -> dict:
    """``{"calibration_bias": ...}``: the bias rows the run read for the candidate's calibrated members (runner.py
    keeps them in its summary), so a prediction corrects by the same numbers without reading 32 pool inputs per
    member again (prompt.py takes them where the model, dtype and pool are the run's). Empty where the run kept
    none (a run from before, workers that read them, a resumed run that replayed the member from its log)."""
    found, fingerprint = summary.get("calibration_biases"), summary.get("model_fingerprint")
    if not isinstance(found, dict) or not isinstance(fingerprint, str):
        return {}
    kept = {}
    for entry, key in calibration.member_entries(fingerprint, chat, task, candidate, demos.Demonstrations()):
        bias = found.get(key)
        if artifact.is_bias(bias, len(entry[3])):  # a hand-edited summary's other value: read again at predict
            kept[key] = bias
    return {"calibration_bias": {"model": fingerprint, "biases": kept, "note": artifact.BIAS_NOTE}} if kept else {}


def _task_and_scorer(config: dict, parts):
    return (runner.prepare_task(parts[0], config), parts[2]) if parts is not None else (runner.load_task_of(config), None)


def _logged_test_results(store: RunStore, task) -> dict[str, list[ExampleResult]]:
    """Candidate id -> its per-example test results, from the run's test log, when they are for the
    task's current test split (a changed split would make them describe other data)."""
    keys = [ex.key for ex in task.test]
    found = {}
    for rec in store.read("test.jsonl"):
        if rec.get("keys") != keys:
            raise PromptSearchError(f"{store.dir}: the task's test split changed since the run; its logged test results describe other data")
        found[rec["candidate"]["id"]] = [ExampleResult.from_json(r) for r in rec["results"]]
    return found


def _soft_bytes(run_dir: Path, soft_id: str) -> bytes:
    """The trained vectors as a safetensors file holding only ``prompt_embeddings``."""
    from safetensors.torch import load_file, save

    path = run_dir / "artifacts" / f"soft-prompt-{soft_id}" / "adapter_model.safetensors"
    try:
        tensors = load_file(str(path))
    except (OSError, ValueError) as e:
        raise PromptSearchError(f"{path}: cannot read the soft prompt's vectors ({e})") from None
    if "prompt_embeddings" not in tensors:
        raise PromptSearchError(f"{path}: holds no prompt_embeddings")
    return save({"prompt_embeddings": tensors["prompt_embeddings"].contiguous()})


def _soft_record(out: Path, soft_bytes: bytes) -> dict:
    return {"file": out.name + ".soft.safetensors", "sha256": hashlib.sha256(soft_bytes).hexdigest(),
            "note": artifact.SOFT_NOTE}
