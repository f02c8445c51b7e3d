"""The scoreboard: every strategy side by side on real tasks, same budget, fixed seeds.

What runs and how it is merged lives here; how it is shown, in ``scoreboard_render.py``; the command is
``python benchmarks/run_all.py`` (see benchmarks/README.md for the modes and what is measured).

Every (task, strategy) pair is one ``promptsearch.runner.run`` from the task's seed prompt, with the
same budget of example-evaluations (forward passes over one example, racing on dev included; the
final top-k check on all of dev may go past it by at most top_k x dev rows), seed 0, and no time
limit. "default" is the chain ``promptsearch run`` uses when no strategy is named
(``runner.DEFAULT_STRATEGIES``). The model is loaded once; each run gets a fresh ``Scorer`` (no cache
shared between runs, so wall times are comparable), pre-warmed with the seed prompt's dev and test
results, which are computed once per task: every run starts from the same seed anyway, so this only
takes the same constant out of every run's wall time (evaluations are counted as if computed).

A strategy that fails to load, or does not apply (autoprompt and soft-prompt need a model with
gradients), is reported as skipped; one that raises mid-run as failed with its error's first line.
Nothing stops the rest of the benchmark. Results are written after every run (so an interrupted
benchmark keeps what finished); each run's directory is kept so ``promptsearch report RUN_DIR`` can plot it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from promptsearch.format import one_line

if __package__:  # imported as benchmarks.scoreboard (python -m, the tests)
    from . import common
    from .scoreboard_render import text_table, write_results
else:  # python benchmarks/run_all.py: benchmarks/ is first on the path
    import common
    from scoreboard_render import text_table, write_results

CLASSIFICATION = ("sst2", "agnews", "trec")
# all 18 instruction-induction tasks in ../shared/data/instruction_induction
INDUCTION = ("active_to_passive", "antonyms", "common_concept", "diff", "first_word_letter", "informal_to_formal",
             "letters_list", "num_to_verbal", "orthography_starts_with", "rhymes", "second_word_letter",
             "sentence_similarity", "sentiment", "singular_to_plural", "sum", "translation_en-de",
             "translation_en-es", "translation_en-fr")
STRATEGIES = ("templates", "clarify", "ape", "autoprompt", "evolution", "soft-prompt", "default")
NEEDS_GRADIENTS = ("autoprompt", "soft-prompt")


@dataclass(frozen=True)
class Mode:
    tasks: tuple[str, ...]
    dev: int  # dev rows, a seeded class-balanced sample (the search's data)
    test: int  # test rows, a seeded uniform sample (scored once, for the seed and the winner)
    max_evals: int  # example-evaluations per run
    strategies: tuple[str, ...] = STRATEGIES
    test_caps: dict = field(default_factory=dict)  # per task, when test is None (all rows) for the others


MODES = {
    "quick": Mode(tasks=("sst2", "trec", "antonyms"), dev=32, test=100, max_evals=200),
    "full": Mode(tasks=CLASSIFICATION + INDUCTION, dev=48, test=200, max_evals=400),
    # issue 17's targets: the task's own dev split, the whole test set (agnews: 2,000 seeded rows), 8,000 evals
    "targets": Mode(tasks=CLASSIFICATION, dev=None, test=None, max_evals=8000, strategies=("default",),
                    test_caps={"agnews": 2000}),
    # the seed instruction (every row's seed) vs the default chain vs model-written instructions (and clarify)
    "induction": Mode(tasks=INDUCTION, dev=48, test=200, max_evals=400, strategies=("default", "ape", "clarify")),
}


def strategy_chain(name: str) -> list[str]:
    """``default`` (the chain of `promptsearch run`), one strategy, or a chain ``a+b+c`` (stages, even shares)."""
    from promptsearch import runner

    return runner.default_strategies(None) if name == "default" else name.split("+")


def first_line(text: str) -> str:
    """An error as one scoreboard cell: its first line, cut to 300 characters (one table row per run)."""
    return one_line(str(text).split("\n")[0], 300)


def applicability(spec: str, task, model, options: dict) -> str | None:
    """Why a strategy cannot run here (it does not load, or does not apply), or None."""
    from promptsearch import strategy as registry
    from promptsearch.errors import PromptSearchError

    for name in strategy_chain(spec):
        try:
            registry.make(name, options.get(name))
        except PromptSearchError as e:
            return first_line(str(e))
        except Exception as e:  # noqa: BLE001 -- a half-written plugin must not stop the scoreboard
            return first_line(f"strategy {name!r} failed to load: {type(e).__name__}: {e}")
        if name in NEEDS_GRADIENTS and not getattr(model, "supports_gradients", True):
            return f"{name} needs gradients, which model {model.name} does not give"
    return None


def seed_results(task, model, batch_size: int = 16) -> dict:
    """The seed prompt's per-example results on dev and test, computed once per task."""
    from promptsearch.candidate import Candidate
    from promptsearch.scoring import Scorer

    scorer, seed = Scorer(model, batch_size=batch_size), Candidate(task.seed_prompt)
    return {split: dict(zip([ex.key for ex in exs], scorer.evaluate(task, seed, list(exs))))
            for split, exs in (("dev", task.dev), ("test", task.test))}


def run_one(task, spec: str, model, run_dir: Path, budget: dict, seed: int, options: dict, racing: dict | None,
            top_k: int, warm: dict | None, batch_size: int = 16) -> dict:
    """One (task, strategy) run; returns its scoreboard row whatever happens."""
    from promptsearch import report, runner
    from promptsearch.candidate import Candidate
    from promptsearch.errors import PromptSearchError
    from promptsearch.scoring import Scorer

    chain = strategy_chain(spec)
    row = {"task": task.name, "kind": task.kind, "metric": task.metric, "strategy": spec, "strategies": chain,
           "status": "ok", "error": None, "run_dir": str(run_dir), "seed_prompt": task.seed_prompt}
    why = applicability(spec, task, model, options)
    if why:
        return {**row, "status": "skipped", "error": why, "run_dir": None}
    config = runner.make_config(task=task.source, strategies=chain, seed=seed, top_k=top_k, budget=budget,
                                racing=racing, batch_size=batch_size,
                                schedule=runner.DEFAULT_SCHEDULE if spec == "default" else "even",
                                options={k: v for k, v in options.items() if k in chain},
                                # the scoreboard's rows are its dev sample alone, as before selection.py (which
                                # benchmarks/fewshot.py measures): its numbers stay comparable across days
                                selection="dev")
    scorer = Scorer(model, batch_size=batch_size)
    if warm:
        seed_cand = Candidate(task.seed_prompt)
        for results in warm.values():
            scorer.preload(task, seed_cand, results)
    started = time.monotonic()
    try:
        summary = runner.run(config, run_dir, parts=(task, model, scorer))
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 -- recorded, never fatal to the benchmark
        row.update(status="failed", error=first_line(f"{type(e).__name__}: {e}"),
                   wall_seconds=round(time.monotonic() - started, 1))
        try:  # what the run scored before it failed
            partial = report.run_row(report.load_run(run_dir))
        except PromptSearchError:  # it failed before scoring anything
            return row
        row.update(best_dev=partial["best_dev"], evals=partial["evals"], candidates=partial["candidates"],
                   best_prompt=partial["best_prompt"])
        return row
    best, seed_s = summary["best"], summary["seed"]
    row.update(seed_test=seed_s["test"], seed_dev=seed_s["dev"], best_test=best["test"], best_dev=best["dev"],
               gain_test=best["test"]["score"] - seed_s["test"]["score"], evals=summary["budget_used"]["evals"],
               charged=summary["budget_used"]["charged"], candidates=summary["budget_used"]["candidates"],
               search_seconds=summary["budget_used"]["seconds"], wall_seconds=round(time.monotonic() - started, 1),
               best_prompt=report.prompt_text(best), best_strategy=best["strategy"],
               best_candidate={k: best.get(k) for k in ("prompt", "label_words", "soft", "strategy", "edit")})
    return row


def scoreboard(tasks: list, strategies: list[str], model, runs_dir: Path, max_evals: int, seed: int = 0,
               options: dict | None = None, racing: dict | None = None, top_k: int = 3, batch_size: int = 16,
               on_row=None) -> list[dict]:
    """Every strategy on every task with one model; ``on_row(row, rows)`` after each run."""
    options = options or {}
    budget = {"max_evals": max_evals, "max_seconds": None, "max_candidates": None}
    rows: list[dict] = []
    for task in tasks:
        warm = seed_results(task, model, batch_size)
        for spec in strategies:
            row = run_one(task, spec, model, Path(runs_dir) / task.name / spec, budget, seed, options, racing,
                          top_k, warm, batch_size)
            rows.append(row)
            if on_row:
                on_row(row, rows)
    return rows


# ---- merging -------------------------------------------------------------------------------
def best_per_task(rows: list[dict]) -> list[dict]:
    """Per task, the strategy whose winner scored best on test (fewer evaluations break ties)."""
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        ok = [r for r in rows if r["task"] == task and r["status"] == "ok"]
        if not ok:
            out.append({"task": task, "strategy": None})
            continue
        top = max(ok, key=lambda r: (r["best_test"]["score"], -r["evals"]))
        tied = [r["strategy"] for r in ok if r is not top and r["best_test"]["score"] == top["best_test"]["score"]]
        out.append({"task": task, "strategy": top["strategy"], "best_test": top["best_test"]["score"],
                    "seed_test": top["seed_test"]["score"], "gain": top["gain_test"], "prompt": top["best_prompt"],
                    "tied_with": tied})
    return out


# what "the best single strategy" is picked from: hard-prompt strategies (soft-prompt is the baseline they are
# measured against, ensembles combine other strategies' prompts)
SINGLE = ("templates", "clarify", "ape", "autoprompt", "evolution")
WITHIN = 0.02  # issue 17: the default run within 2 points of the best single strategy on every task


def default_vs_best(rows: list[dict]) -> dict | None:
    """Per task, the default run's test score against the best single strategy's (chosen on test, so the
    bar is high: on 200 test rows the 95% CI is about +-0.06), and the same on dev (all 48 rows, what the
    searches chose by: where the default matches the best dev score, a test gap is the choice among prompts
    dev cannot tell apart)."""
    per_task = []
    for task in dict.fromkeys(r["task"] for r in rows):
        ok = {r["strategy"]: r for r in rows if r["task"] == task and r["status"] == "ok"}
        singles = {k: r for k, r in ok.items() if k in SINGLE}
        if "default" in ok and singles:
            best = max(singles, key=lambda k: singles[k]["best_test"]["score"])
            dev = {k: r["best_dev"]["score"] for k, r in singles.items() if r.get("best_dev")}
            default = ok["default"]
            item = {"task": task, "default": default["best_test"]["score"], "best_single": best,
                    "best": singles[best]["best_test"]["score"],
                    "gap": round(default["best_test"]["score"] - singles[best]["best_test"]["score"], 6)}
            if dev and default.get("best_dev"):
                item["dev_gap"] = round(default["best_dev"]["score"] - max(dev.values()), 6)
            per_task.append(item)
    if not per_task:
        return None
    behind = [t for t in per_task if t["gap"] < -WITHIN - 1e-9]
    dev_gaps = [t["dev_gap"] for t in per_task if "dev_gap" in t]
    return {"within": WITHIN, "singles": list(SINGLE), "tasks": per_task, "n": len(per_task),
            "met": len(per_task) - len(behind), "behind": [t["task"] for t in behind],
            "mean_gap": sum(t["gap"] for t in per_task) / len(per_task),
            "dev_met": sum(g >= -WITHIN - 1e-9 for g in dev_gaps), "dev_n": len(dev_gaps),
            "mean_dev_gap": sum(dev_gaps) / len(dev_gaps) if dev_gaps else None}


def means(rows: list[dict]) -> dict:
    """Per strategy, the mean test score of its winners over the tasks where it finished, next to the mean
    of the seed prompt (the zero-shot instruction) on the same tasks."""
    out = {}
    for spec in dict.fromkeys(r["strategy"] for r in rows):
        ok = [r for r in rows if r["strategy"] == spec and r["status"] == "ok"]
        if ok:
            best = sum(r["best_test"]["score"] for r in ok) / len(ok)
            seed = sum(r["seed_test"]["score"] for r in ok) / len(ok)
            out[spec] = {"tasks": len(ok), "best_test": best, "seed_test": seed,
                         "ratio": best / seed if seed else None}
    return out


def summaries(rows: list[dict]) -> dict:
    """What the scoreboard says under its rows (a run's and a merge's alike)."""
    return {"best_per_task": best_per_task(rows), "means": means(rows), "default_vs_best": default_vs_best(rows)}


def merge(parts: list[dict], results_dir: Path) -> dict:
    """One scoreboard from parts run under the same protocol (dev, test, budget, seed, racing), side by side or
    on other days (each part's command and date stay in ``parts``); a part's ``keep`` (strategies) leaves out
    its other rows. The mode is the first part's; wall time is the longest part's (they ran in parallel). A
    task and strategy in two parts is refused: which one counts would be a choice made after seeing both."""
    keep = ("dev", "test", "max_evals", "seed", "racing", "top_k", "options")
    if any({k: p["limits"][k] for k in keep} != {k: parts[0]["limits"][k] for k in keep} for p in parts):
        raise SystemExit("error: cannot merge scoreboards with different limits (dev, test, budget, seed, racing)")
    rows = [r for p in parts for r in p["rows"] if not p.get("keep") or r["strategy"] in p["keep"]]
    seen = [(r["task"], r["strategy"]) for r in rows]
    twice = next((pair for pair in seen if seen.count(pair) > 1), None)
    if twice:
        raise SystemExit(f"error: {twice[0]} {twice[1]} is in two parts; keep one (FILE:STRATEGY,...)")
    machine_ = {**parts[0]["machine"], "summary": f"{parts[0]['machine']['summary']}; {len(parts)} processes side by side"}
    result = {**parts[0], "command": " & ".join(p["command"] for p in parts), "machine": machine_,
              "runs_dir": [p["runs_dir"] for p in parts], "rows": rows,
              "wall_seconds": max(p["wall_seconds"] for p in parts),
              "parts": [{"command": p["command"], "date": p["date"], "mode": p["mode"], "keep": p.get("keep")}
                        for p in parts]}
    result["limits"] = {**parts[0]["limits"], "tasks": list(dict.fromkeys(t for p in parts for t in p["limits"]["tasks"])),
                        "strategies": list(dict.fromkeys(r["strategy"] for r in rows)),
                        "sizes": {k: v for p in parts for k, v in p["limits"]["sizes"].items()}}
    result.update(summaries(result["rows"]))
    prefix = common.result_path(f"scoreboard-{result['mode']}", suffix="", directory=results_dir)
    write_results(result, prefix)
    print(text_table(result["rows"]) + f"\n\nwrote {prefix}.json, .md, .png")
    return result


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=sorted(MODES), default="full",
                    help="quick: 3 tasks, dev 32 / test 100 rows, 200 evaluations; full: 21 tasks, 48 / 200, 400; "
                         "targets: sst2, agnews, trec on their own dev and whole test sets (agnews 2,000 rows), "
                         "8,000 evaluations, the default chain; induction: the 18 instruction-induction tasks, "
                         "default vs ape vs clarify, with the mean over tasks against the seed instruction.")
    ap.add_argument("--quick", action="store_true", help="Same as --mode quick.")
    ap.add_argument("--tasks", default=None, help="Comma-separated task names or directories (default: the mode's).")
    ap.add_argument("--strategies", default=None, help="Comma-separated (default: the mode's); 'default' is the "
                    "chain of `promptsearch run` under its default (bandit) schedule; a+b is a chain of stages "
                    "(even shares), e.g. templates+clarify+ensemble.")
    ap.add_argument("--max-evals", type=int, default=None, help="Example-evaluations per run (default: the mode's).")
    ap.add_argument("--dev-limit", type=int, default=None, help="N dev rows, a seeded class-balanced sample "
                    "(default: the mode's).")
    ap.add_argument("--test-limit", type=int, default=None, help="N test rows, a seeded uniform sample "
                    "(default: the mode's).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--options", default="{}", help='JSON per-strategy options, e.g. {"evolution": {"patience": 3}}.')
    ap.add_argument("--model", default=None, help="Model directory or .gguf (default: the embedded SmolLM2-135M).")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default).")
    common.add_data_argument(ap)
    ap.add_argument("--results-dir", default=str(common.RESULTS))
    ap.add_argument("--runs-dir", default=None, help="Where run directories go (default: runs/scoreboard-MODE-TIME).")
    ap.add_argument("--merge", nargs="+", metavar="JSON[:STRATEGY,...]", help="Merge scoreboards run under the same "
                    "limits (dev, test, budget, seed, racing) into --results-dir, and exit; JSON:ape,clarify keeps only "
                    "those strategies' rows of that file.")
    return ap


def read_part(arg: str) -> dict:
    """``FILE`` or ``FILE:STRATEGY,...`` (keep only those rows) -> the scoreboard JSON, with its ``keep``."""
    path, _, names = arg.partition(":") if not Path(arg).exists() else (arg, "", "")
    try:
        part = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: --merge {arg}: not a scoreboard JSON ({type(e).__name__}: {e})") from None
    if not isinstance(part, dict) or "rows" not in part or "limits" not in part:
        raise SystemExit(f"error: --merge {arg}: not a scoreboard JSON (no rows and limits)")
    part["keep"] = [n.strip() for n in names.split(",") if n.strip()] or None
    return part


def main(argv: list[str] | None = None, model=None) -> dict:
    """The scoreboard command (``model``: an already loaded one, for the tests)."""
    args = parser().parse_args(argv)
    if args.merge:
        return merge([read_part(p) for p in args.merge], Path(args.results_dir))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    from promptsearch.models.local import FrozenModel

    if args.threads:
        torch.set_num_threads(args.threads)
    mode_name = "quick" if args.quick else args.mode
    mode = MODES[mode_name]
    names = args.tasks.split(",") if args.tasks else list(mode.tasks)
    strategies = [s.strip() for s in (args.strategies or ",".join(mode.strategies)).split(",") if s.strip()]
    dev, test = args.dev_limit or mode.dev, args.test_limit or mode.test
    max_evals = args.max_evals or mode.max_evals
    started = time.monotonic()
    model = model or FrozenModel.load(args.model)
    tasks = [common.load_bench_task(n, dev, test or mode.test_caps.get(Path(n).name), common.data_root(args.data),
                                    args.seed) for n in names]
    runs_dir = Path(args.runs_dir or f"runs/scoreboard-{mode_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if runs_dir.exists() and any(runs_dir.iterdir()):
        raise SystemExit(f"error: {runs_dir} is not empty; give another --runs-dir")
    racing = {"min_examples": 16, "eta": 3}
    result = {
        "mode": mode_name, "command": "python benchmarks/run_all.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": common.machine(torch.get_num_threads()), "model": model.name,
        "limits": {"tasks": [t.name for t in tasks], "strategies": strategies, "dev": dev, "test": test,
                   "max_evals": max_evals, "max_seconds": None, "seed": args.seed, "racing": racing, "top_k": 3,
                   "options": json.loads(args.options),
                   "sizes": {t.name: {"dev": len(t.dev), "test": len(t.test), "kind": t.kind, "metric": t.metric}
                             for t in tasks}},
        "scorer": "a fresh Scorer per run (no cache shared between runs), pre-warmed with the seed prompt's dev and "
                  "test results computed once per task; evaluations are counted per run as if computed.",
        "runs_dir": str(runs_dir), "rows": [], "best_per_task": [], "wall_seconds": 0.0,
    }
    prefix = common.result_path(f"scoreboard-{mode_name}", suffix="", directory=args.results_dir)
    total = len(tasks) * len(strategies)
    print(f"scoreboard ({mode_name}): {len(tasks)} tasks x {len(strategies)} strategies; dev {dev} / test {test} rows; "
          f"{max_evals} evals per run; model {model.name}; {torch.get_num_threads()} thread(s); runs in {runs_dir}",
          flush=True)

    def on_row(row, rows):
        result["rows"] = rows
        result.update(summaries(rows))
        result["wall_seconds"] = round(time.monotonic() - started, 1)
        write_results(result, prefix)
        if row["status"] == "ok":
            what = (f"test {row['best_test']['score']:.3f} (seed {row['seed_test']['score']:.3f}), "
                    f"{row['evals']} evals, {row['wall_seconds']:.0f}s")
        else:
            what = f"{row['status']}: {row['error']}"
        print(f"[{len(rows)}/{total}] {row['task']} {row['strategy']}: {what}", flush=True)

    scoreboard(tasks, strategies, model, runs_dir, max_evals, seed=args.seed, options=result["limits"]["options"],
               racing=racing, top_k=3, on_row=on_row)
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    write_results(result, prefix)
    print("\n" + text_table(result["rows"]))
    print("\nbest per task: " + "; ".join(
        f"{b['task']} {b['strategy']} {b['gain']:+.3f}" if b["strategy"] else f"{b['task']} none"
        for b in result["best_per_task"]))
    print("\nmean test over tasks: " + "; ".join(
        f"{spec} {m['best_test']:.3f} vs seed {m['seed_test']:.3f} on {m['tasks']} tasks"
        + (f" ({m['ratio']:.2f}x)" if m["ratio"] else "") for spec, m in result["means"].items()))
    print(f"\nwall time {result['wall_seconds'] / 60:.1f} min; wrote {prefix}.json, .md, .png")
    return result


