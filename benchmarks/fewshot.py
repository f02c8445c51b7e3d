"""The few-label protocol (LM-BFF, Gao et al. 2021): the default search against prompt baselines, on the same rows.

    python benchmarks/fewshot.py                       # sst2, agnews, trec; 5 draws each
    python benchmarks/fewshot.py --tasks antonyms,sum --draws 2   # instruction-induction tasks
    python benchmarks/fewshot.py --variants auto,dev   # the default under two selection modes (design decisions)

Per task and draw (rows from protocol.py: 16 labelled rows per class for train and for dev), every method scored on
the same fixed test sample (reported only) and the search's winners also on the development split (the rows design
decisions are read from; no search ever sees them):

- ``seed``: the task's seed prompt; ``hand``: an instruction written before the first run (protocol.HAND_WRITTEN);
- ``icl-random``: the seed prompt after K random demonstrations per class (``balanced:4``; 8 rows on generation);
- ``icl-nearest``: KATE, the seed prompt after the 4 most similar labelled rows (``similar:4``);
  both draw from all the labelled rows the search had (train + dev);
- ``default/<selection>``: ``promptsearch.search`` with the default strategies and ``--max-evals`` (800), seeded by the
  draw, under each selection mode asked (selection.py): its test score, its development-split score, its dev score
  (the rows that chose it) and the estimate the run reports, with the estimate's gap to test.

Prints a table per task (mean and standard deviation over draws) and writes JSON with every row's outcome (for
paired tests pooled over draws) to ``results/fewshot-<date>.json``. The linear-probe ceiling is ceiling.py's.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

try:
    import protocol
    from common import add_data_argument, data_root, load_model, machine, result_path, winner_outcomes, write_json
except ImportError:  # imported as benchmarks.fewshot
    from benchmarks import protocol
    from benchmarks.common import (
        add_data_argument,
        data_root,
        load_model,
        machine,
        result_path,
        winner_outcomes,
        write_json,
    )

BASELINES = ("seed", "hand", "icl-random", "icl-nearest")
TIME_LIMIT = 3600  # seconds per default run: far above what 800 evaluations take, so the evaluations bind
EMBEDDED = "embedded SmolLM2-135M-Instruct"  # the model every part ran on unless --model names another


def baseline_candidates(name: str, task) -> dict:
    from promptsearch.candidate import Candidate

    seed = task.seed_prompt
    out = {"seed": Candidate(seed)}
    if name in protocol.HAND_WRITTEN:
        out["hand"] = Candidate(protocol.HAND_WRITTEN[name])
    out["icl-random"] = Candidate(seed, demos="balanced:4" if task.kind == "classification" else "balanced:8")
    out["icl-nearest"] = Candidate(seed, demos="similar:4")
    return out


def score_rows(scorer, task, candidate, rows) -> dict:
    """A candidate's score on rows, with n, the 95% interval and each row's outcome."""
    from promptsearch.metrics import summarize

    results = scorer.evaluate(task, candidate, list(rows))
    score = summarize(task.metric, results, list(rows), candidate.label_words or task.label_words).to_json()
    return {**{k: score[k] for k in ("score", "n", "ci_low", "ci_high")}, "outcomes": [round(r.score, 4) for r in results]}


def run_baselines(name: str, task, model) -> dict:
    from dataclasses import replace

    from promptsearch.scoring import Scorer

    # demonstrations come from every labelled row the search had (train + dev)
    pooled = replace(task, train=task.train + task.dev)
    scorer = Scorer(model)
    return {k: score_rows(scorer, pooled, c, task.test) for k, c in baseline_candidates(name, task).items()}


# Variants of the default for the project's design questions, measured on the development split: "SELECTION" or
# "SELECTION:TWEAK" with a tweak below (each the alternative to a default, set for that run only), or several
# joined by "+" ("auto:labels-first+similar-16": both at once; tweak_spec).
TWEAKS = {
    "none": {},  # the default itself, as a design arm: paired with a variant run on the same host (same floats)
    "rules-last": {"options": {"clarify": {"rules_first": False}}},  # clarify: drawn demonstrations before the rules
    "first-turn-4": {"first_turn": 4},  # bandit: a first turn of 4 proposals (the default since 2026-12-02)
    "first-turn-round": {"first_turn": None},  # bandit: a first turn of a whole round (8), the default before
    "demos-train": {"demos_from_dev": False},  # demonstrations rules draw from train rows only (the default before)
    "demos-all": {"demos_from_dev": True},  # ... from train and the choosing rows (the default since 2026-12-02)
    "similar-8": {"options": {"clarify": {"demo_rules": ["similar:4", "similar:8", "balanced:2"]}}},  # 8 neighbours too
    # (the default since 2026-12-02); the rules before it:
    "similar-4-only": {"options": {"clarify": {"demo_rules": ["similar:4", "balanced:2"]}}},
    "labels-first": {"options": {"templates": {"labels_at": "after-formats"}}},  # templates: LM-BFF label words before instructions
    "labels-start": {"options": {"templates": {"labels_at": "start"}}},  # ... on the seed prompt, before the formats
    "similar-16": {"options": {"clarify": {"demo_rules": ["similar:4", "similar:8", "similar:16", "balanced:2"]}}},
    "eta-5": {"racing": {"eta": 5}},  # racing: the top fifth of a rung climbs on (the default: a third)
    "contrast": {"options": {"clarify": {"contrast": True}}},  # clarify: an instruction from the classes' contrast
    "ensemble-5": {"final_ensemble": 5},  # the final check's top five as the ensemble (the default: three)
    "ladder": {"options": {"clarify": {"demo_ladder": True}}},  # clarify: similar:8/16 only after the smaller one helped
    "ladder-off": {"options": {"clarify": {"demo_ladder": False}}},  # the default until 2026-12-05 (now "auto")
    # clarify without its drawn demonstrations (demos:K#j) and its calibrated variants (batch calibration comes after
    # the search): on AG News the runs that never reached templates' label words spent that budget there.
    # -0.013 on the development split (better in 2, worse in 5; docs/decisions.md, 2026-12-05): not adopted
    "lean-clarify": {"options": {"clarify": {"demo_counts": [], "calibrations": []}}},
    # clarify: the nearest row of each class first, before the default's rules
    "per-class": {"options": {"clarify": {"demo_rules": ["similar-per-class:1", "similar:4", "similar:8", "similar:16",
                                                         "balanced:2"]}}},
}


def tweak_spec(tweak: str) -> dict:
    """The settings of one tweak or of several joined by "+", merged (a strategy's options and racing's, key by key)."""
    spec: dict = {}
    for name in filter(None, tweak.split("+")):
        if name not in TWEAKS:
            raise SystemExit(f"error: unknown tweak {name!r}; known: {', '.join(TWEAKS)}")
        for key, value in TWEAKS[name].items():
            if isinstance(value, dict):
                merged = dict(spec.get(key, {}))
                for k, v in value.items():
                    merged[k] = {**merged[k], **v} if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
                spec[key] = merged
            else:
                spec[key] = value
    return spec


def run_default(task, extra: dict, model, draw: int, variant: str, max_evals: int, workdir: Path) -> dict:
    import promptsearch as ps
    from promptsearch import runner
    from promptsearch import selection as selection_rules
    from promptsearch.candidate import Candidate
    from promptsearch.search import bandit

    selection, _, tweak = variant.partition(":")
    spec = tweak_spec(tweak)
    run_dir = workdir / f"{task.name}-{draw}-{variant.replace(':', '-')}"
    started = time.monotonic()
    default_first, default_pool = bandit.FIRST_TURN, selection_rules.DEMOS_FROM_DEV
    default_racing = runner.DEFAULTS["racing"]
    bandit.FIRST_TURN = spec.get("first_turn", default_first)
    selection_rules.DEMOS_FROM_DEV = spec.get("demos_from_dev", default_pool)
    runner.DEFAULTS["racing"] = {**default_racing, **spec.get("racing", {})}
    try:
        # evaluations bind, not the default 480 s: on a loaded machine the time limit cut one run to 276 of 800
        # evaluations (AG News draw 3, 2026-12-02), a measure of the load rather than of the search
        result = ps.search(task, model, budget=ps.Budget(max_evals=max_evals, max_seconds=TIME_LIMIT), run_dir=run_dir, seed=draw,
                           selection=selection, options=spec.get("options"),
                           final_ensemble=spec.get("final_ensemble", runner.DEFAULTS["final_ensemble"]))
        seconds = time.monotonic() - started
        prepared = runner.prepare_task(task, {"selection": selection, "seed": draw})  # the rows the run chose on
    finally:
        bandit.FIRST_TURN, selection_rules.DEMOS_FROM_DEV = default_first, default_pool
        runner.DEFAULTS["racing"] = default_racing
    s = result.summary
    best = Candidate.from_json(s["best"])
    from promptsearch.scoring import Scorer

    devsplit = score_rows(Scorer(model), prepared, best, extra["devsplit"])
    estimate = s["estimate"]
    return {"test": {k: s["best"]["test"][k] for k in ("score", "n", "ci_low", "ci_high")}
                    | {"outcomes": [round(x, 4) for x in winner_outcomes(run_dir)[1]]},
            "devsplit": devsplit, "dev": s["best"]["dev"], "estimate": {k: estimate.get(k) for k in ("which", "score", "n")},
            "estimate_gap": estimate["score"] - s["best"]["test"]["score"],
            "dev_gap": s["best"]["dev"]["score"] - s["best"]["test"]["score"],
            "prompt": s["best"]["prompt"], "options": {k: s["best"].get(k) for k in ("demos", "calibrate") if s["best"].get(k)},
            "members": len(s["best"].get("members", ())), "evals": s["budget_used"]["evals"], "seconds": round(seconds, 1),
            "stop_reason": s.get("stop_reason"), "selection_rows": len(prepared.dev), "holdout_rows": len(prepared.holdout)}


def mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, sd


def pooled_paired(a_rows: list[list[float]], b_rows: list[list[float]]) -> dict:
    """b against a over every (draw, row) pair: mean difference, and a paired sign-flip permutation p-value."""
    import random

    diffs = [y - x for xs, ys in zip(a_rows, b_rows) for x, y in zip(xs, ys)]
    if not diffs:
        return {}
    observed = sum(diffs) / len(diffs)
    rng, nonzero = random.Random(0), [d for d in diffs if d]
    extreme = sum(abs(sum(d if rng.random() < 0.5 else -d for d in nonzero)) >= abs(sum(nonzero)) - 1e-9 for _ in range(2000))
    return {"difference": observed, "p_value": (extreme + 1) / 2001, "pairs": len(diffs)}


def table(results: list[dict], variants: list[str]) -> tuple[str, dict]:
    lines, summary = [], {}
    methods = list(BASELINES) + [f"default/{v}" for v in variants]
    for name in dict.fromkeys(r["task"] for r in results):
        rows = [r for r in results if r["task"] == name]
        lines.append(f"\n{name} ({len(rows)} draws; test: {rows[0]['test_rows']} rows, the same every draw)")
        lines.append(f"  {'method':<26} {'test mean ± sd':<16} {'devsplit':<10} {'dev (chose)':<12} {'estimate':<10} {'est-test':<9} dev-test")
        task_summary = {}
        for m in methods:
            cells = [r["methods"].get(m) for r in rows if r["methods"].get(m)]
            if not cells:
                continue
            t = mean_std([c["test"]["score"] if "test" in c else c["score"] for c in cells])
            entry = {"test_mean": t[0], "test_sd": t[1], "draws": len(cells)}
            # a design question's variant is decided on the development split; its test score is not looked at
            line = f"  {m:<26} {'(not looked at)' if ':' in m else f'{t[0]:.3f} ± {t[1]:.3f}'}    "
            if ":" in m:
                entry.pop("test_mean"), entry.pop("test_sd")
            if m.startswith("default"):
                ds, dv, es = (mean_std([c[k]["score"] for c in cells]) for k in ("devsplit", "dev", "estimate"))
                eg, dg = mean_std([c["estimate_gap"] for c in cells]), mean_std([c["dev_gap"] for c in cells])
                entry.update(devsplit_mean=ds[0], dev_mean=dv[0], estimate_mean=es[0], estimate_gap=eg[0], dev_gap=dg[0])
                line += f"{ds[0]:<10.3f} {dv[0]:<12.3f} {es[0]:<10.3f}"
                line += "" if ":" in m else f" {eg[0]:<+9.3f} {dg[0]:+.3f}"
                if ":" in m:
                    entry.pop("estimate_gap"), entry.pop("dev_gap")
            lines.append(line)
            task_summary[m] = entry
        summary[name] = task_summary
    return "\n".join(lines), summary


def targets(results: list[dict], summary: dict, variant: str, ceiling: dict | None) -> tuple[str, dict]:
    """Issue #34's targets for one default variant: against the best prompt baseline (pooled paired test over
    draws and tasks), against the probe on the same labelled rows (every task) and the 2,000-row probe (mean over
    the classification tasks), and the estimate's gap to test (mean over draws)."""
    key, lines, out = f"default/{variant}", [], {}
    tasks = [t for t in summary if key in summary[t]]
    pairs_a, pairs_b = [], []
    for t in tasks:
        _, a, b = best_baseline_pairs(results, summary, t, key)
        pairs_a, pairs_b = pairs_a + a, pairs_b + b
    pooled = pooled_paired(pairs_a, pairs_b)
    out["vs_best_baseline_pooled"] = pooled
    if pooled:
        lines.append(f"{key} vs each task's best prompt baseline, pooled over {len(pairs_a)} task-draws: "
                     f"{pooled['difference']:+.3f} (sign-flip p={pooled['p_value']:.3f})")
    gaps = [c["estimate_gap"] for r in results for m, c in r["methods"].items() if m == key]
    if gaps:
        out["estimate_gap_mean"] = sum(gaps) / len(gaps)
        out["estimate_abs_gap_task_means"] = {t: summary[t][key]["estimate_gap"] for t in tasks}
        lines.append(f"{key}: estimate - test, mean over {len(gaps)} task-draws: {out['estimate_gap_mean']:+.3f}; "
                     "per task " + ", ".join(f"{t} {summary[t][key]['estimate_gap']:+.3f}" for t in tasks))
    if ceiling:
        probe = {t: ceiling["tasks"][t] for t in tasks if t in ceiling.get("tasks", {})}
        for t, c in probe.items():
            mine = summary[t][key]["test_mean"]
            lines.append(f"{t}: {key} {mine:.3f} vs probe on the same rows {c['few_mean']:.3f} "
                         f"({'beats' if mine > c['few_mean'] else 'does not beat'}), vs 2,000-row probe "
                         f"{c['many']['accuracy']:.3f} ({mine - c['many']['accuracy']:+.3f})")
        if probe:
            gap = sum(summary[t][key]["test_mean"] - c["many"]["accuracy"] for t, c in probe.items()) / len(probe)
            out["vs_many_probe_mean"] = gap
            out["beats_few_probe"] = {t: summary[t][key]["test_mean"] > c["few_mean"] for t, c in probe.items()}
            lines.append(f"{key} minus the 2,000-row probe, mean over {len(probe)} tasks: {gap:+.3f}")
    return "\n".join(lines), out


def on_devsplit(results: list[dict], a: str, b: str) -> dict:
    """Method b against method a on the development split, over the task-draws both ran: the mean difference
    and, per task, the mean difference (what a design question is decided on)."""
    pairs = [(r["task"], r["methods"][b]["devsplit"]["score"] - r["methods"][a]["devsplit"]["score"])
             for r in results if a in r["methods"] and b in r["methods"]]
    if not pairs:
        return {}
    by_task: dict = {}
    for t, d in pairs:
        by_task.setdefault(t, []).append(d)
    return {"b": b, "a": a, "task_draws": len(pairs), "mean_difference": sum(d for _, d in pairs) / len(pairs),
            "better_in": sum(d > 0 for _, d in pairs), "worse_in": sum(d < 0 for _, d in pairs),
            "per_task": {t: sum(ds) / len(ds) for t, ds in by_task.items()}}


def markdown(summary: dict, ceiling: dict | None) -> str:
    """One Markdown table per task: each method's test mean ± sd over draws, and the default's other columns."""
    out = []
    for name, methods in summary.items():
        out += [f"**{name}**", "", ("| method | test, mean ± sd over draws | development split | dev (chose it) | "
                                    "estimate | estimate − test |"), "|---|---|---|---|---|---|"]
        for m, e in methods.items():
            test = f"{e['test_mean']:.3f} ± {e['test_sd']:.3f}" if "test_mean" in e else "(not looked at)"
            cells = [f"{e[k]:.3f}" if k in e else "" for k in ("devsplit_mean", "dev_mean", "estimate_mean")]
            gap = f"{e['estimate_gap']:+.3f}" if "estimate_gap" in e else ""
            out.append(f"| {m} ({e['draws']} draws) | {test} | {' | '.join(cells)} | {gap} |")
        if ceiling and name in ceiling.get("tasks", {}):
            c = ceiling["tasks"][name]
            out.append(f"| probe, same labelled rows | {c['few_mean']:.3f} ± {c['few_std']:.3f} | | | | |")
            out.append(f"| probe, {c['many'].get('fit_rows', 2000):,} labelled rows | {c['many']['accuracy']:.3f} | | | | |")
        out.append("")
    return "\n".join(out)


def best_baseline_pairs(results: list[dict], summary: dict, task: str, key: str) -> tuple[str | None, list, list]:
    """The task's best prompt baseline (by mean test over draws) and, over the draws where both it and ``key`` ran,
    the two methods' per-row test outcomes (for paired tests)."""
    known = [b for b in BASELINES if b in summary.get(task, {})]
    if not known:
        return None, [], []
    best = max(known, key=lambda b: summary[task][b]["test_mean"])
    rows = [r for r in results if r["task"] == task and key in r["methods"] and best in r["methods"]]
    return best, [r["methods"][best]["outcomes"] for r in rows], [r["methods"][key]["test"]["outcomes"] for r in rows]


def comparisons(results: list[dict], summary: dict, variants: list[str]) -> dict:
    """Each default variant against each task's best prompt baseline, pooled over draws (design variants, whose test
    score is not looked at, are left out)."""
    out = {}
    for v in [v for v in variants if ":" not in v]:
        key, per_task = f"default/{v}", {}
        for name in summary:
            best, a, b = best_baseline_pairs(results, summary, name, key)
            if a:
                per_task[name] = {"best_baseline": best, **pooled_paired(a, b)}
        out[key] = per_task
    return out


def _ceiling(path: str | None) -> dict | None:
    try:
        from common import latest
    except ImportError:
        from benchmarks.common import latest
    try:
        return json.loads(Path(path or latest("ceiling")).read_text())
    except FileNotFoundError:
        return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=",".join(protocol.CLASSIFICATION))
    p.add_argument("--draws", type=int, default=protocol.DRAWS)
    p.add_argument("--first-draw", type=int, default=0)
    p.add_argument("--variants", default="auto", help="selection modes of the default run, comma-separated")
    p.add_argument("--max-evals", type=int, default=800)
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--test-rows", type=int, default=None, help="fewer test rows (design-question variants: their test "
                   "score is not looked at; the development split decides)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", default=None, help="a model folder or GGUF file instead of the embedded SmolLM2 (does "
                                                 "the default carry over to a model it was not designed on?)")
    p.add_argument("--out", default=None)
    p.add_argument("--keep-runs", default=None, help="a folder to keep the run directories in (for "
                   "analyses/winner_estimates.py); default: a temporary folder, removed at the end")
    p.add_argument("--merge", nargs="*", default=None, help="merge result files (same protocol) into one table")
    p.add_argument("--rename", nargs=3, action="append", default=[], metavar=("FILE", "OLD", "NEW"),
                   help="with --merge: method OLD of FILE counts as NEW (e.g. an earlier default/auto as "
                   "default/before, beside today's); repeatable")
    p.add_argument("--drop", action="append", default=[], metavar="METHOD",
                   help="with --merge: leave METHOD out of every file; repeatable")
    p.add_argument("--ceiling", default=None, help="ceiling.py's result file, for the probe comparisons "
                   "(default: the newest)")
    add_data_argument(p)
    args = p.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        tweak_spec(v.partition(":")[2])  # an unknown tweak is one error line now, not after the model and baselines
    if args.merge:
        merged: dict = {}  # one row per task and draw, the methods of every file together (a later file wins)
        renames = {(Path(f).resolve(), old): new for f, old, new in args.rename}
        files = {Path(f).resolve() for f in args.merge}
        for f, _, _ in args.rename:
            if Path(f).resolve() not in files:
                raise SystemExit(f"error: --rename names {f}, which is not one of the --merge files")
        seen = set()  # (file, method): a rename of a method its file lacks is a typo, not a no-op
        models = set()  # what each part ran on: the latest ceiling is the embedded model's probe
        for f in args.merge:
            where = Path(f).resolve()
            part = json.loads(Path(f).read_text())
            models.add(part.get("model_spec", EMBEDDED))
            for r in part["results"]:
                seen.update((where, m) for m in r["methods"])
                row = merged.setdefault((r["task"], r["draw"]), {**r, "methods": {}})
                row["methods"].update((renames.get((where, m), m), c) for m, c in r["methods"].items()
                                      if m not in args.drop)
                row["test_rows"] = max(row["test_rows"], r["test_rows"])
        for where, old in set(renames) - seen:
            raise SystemExit(f"error: --rename: {where.name} has no method {old!r}")
        results = list(merged.values())
        variants = sorted({m.split("/", 1)[1] for r in results for m in r["methods"] if m.startswith("default/")})
        text, summary = table(results, variants)
        print(text)
        record = {"merged_from": args.merge, **({"renamed": args.rename} if args.rename else {}),
                  **({"dropped": args.drop} if args.drop else {}), "results": results, "summary": summary,
                  "vs_best_baseline": comparisons(results, summary, variants), "targets": {}}
        if models != {EMBEDDED} and not args.ceiling:
            ceiling = None
            print(f"\n(no probe comparison: the parts ran on {', '.join(sorted(models))}, and the latest ceiling file is "
                  f"the embedded model's; give --ceiling for one fitted on the same model)")
        else:
            ceiling = _ceiling(args.ceiling)
        for v in [v for v in variants if ":" not in v]:  # design variants: development split only
            lines, record["targets"][v] = targets(results, summary, v, ceiling)
            print("\n" + lines)
        record["development_split"] = []
        for v in variants:  # each variant against the default it changes, on the development split
            base = v.split(":")[0] if ":" in v else "auto"
            if v != base:
                d = on_devsplit(results, f"default/{base}", f"default/{v}")
                record["development_split"].append(d)
                if d:
                    print(f"development split: {d['b']} - {d['a']} = {d['mean_difference']:+.3f} over {d['task_draws']} "
                          f"task-draws (better in {d['better_in']}, worse in {d['worse_in']}); per task "
                          + ", ".join(f"{t} {x:+.3f}" for t, x in d["per_task"].items()))
        out = write_json(Path(args.out or result_path("fewshot")), record)
        out.with_suffix(".md").write_text(markdown(summary, ceiling), encoding="utf-8")
        return 0
    model = load_model(args.threads, args.model)
    out = Path(args.out or result_path("fewshot"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent, check=False).stdout.strip()
    record = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if argv is None else "fewshot.py",
              "date": str(date.today()), "commit": commit, "machine": machine(args.threads),
              "model": getattr(model, "dtype_name", ""), "model_spec": args.model or EMBEDDED, "max_evals": args.max_evals, "results": []}
    with tempfile.TemporaryDirectory(prefix="fewshot-") as tmp:
        tmp = args.keep_runs or tmp
        # draw by draw across the tasks, so a run stopped early still covers every task
        for index in range(args.first_draw, args.first_draw + args.draws):
            for name in [t for t in args.tasks.split(",") if t]:
                task, extra = protocol.draw(name, index, data_root(args.data))
                if args.test_rows:
                    from dataclasses import replace

                    task = replace(task, test=task.test[: args.test_rows])
                row = {"task": name, "draw": index, "test_rows": len(task.test), "methods": {}}
                started = time.monotonic()
                if not args.no_baselines:
                    row["methods"].update(run_baselines(name, task, model))
                for v in variants:
                    row["methods"][f"default/{v}"] = run_default(task, extra, model, index, v, args.max_evals, Path(tmp))
                row["seconds"] = round(time.monotonic() - started, 1)
                record["results"].append(row)
                write_json(out, record)  # after every draw: a killed run keeps what it finished
                # design variants show their development-split score: their test score is not looked at
                shown = {m: round(c["devsplit"]["score"] if ":" in m else c["test"]["score"] if "test" in c else c["score"], 3)
                         for m, c in row["methods"].items()}
                print(f"{name} draw {index}: {shown} ({row['seconds']} s)", flush=True)
    text, summary = table(record["results"], variants)
    record["summary"], record["vs_best_baseline"] = summary, comparisons(record["results"], summary, variants)
    write_json(out, record)
    print(text)
    print(json.dumps(record["vs_best_baseline"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
