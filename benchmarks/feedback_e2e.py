"""End-to-end feedback loop on an instruction-induction task with the real model (SmolLM2-135M).

search (templates) -> rate (scripted: short outputs good, long ones "too long") -> refine -> rate the new best.
Prints a table and writes benchmarks/results/feedback_e2e-YYYY-MM-DD.json (today).

    python benchmarks/feedback_e2e.py [--task antonyms] [--dev 24] [--weight 0.5]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

from click.testing import CliRunner

from promptsearch import feedback
from promptsearch.cli import main
from promptsearch.store import RunStore
from promptsearch.task import load_task

if __package__:  # python -m benchmarks.feedback_e2e
    from . import common
else:  # python benchmarks/feedback_e2e.py: benchmarks/ is first on the path
    import common


def scripted_rating(output: str, given: str = "") -> tuple[int, str]:
    """A rater who wants short answers: one word -> 5, two -> 4, three -> 3, four or five -> 2, more -> 1
    ("too long" from three words on); an empty answer -> 1 ("empty answer, wrong"). ``given`` (the input)
    is unused by this rater; a stricter one could mark echoes of the input down."""
    words = len(output.split())
    rating = {0: 1, 1: 5, 2: 4, 3: 3, 4: 2, 5: 2}.get(words, 1)
    comment = "too long" if words >= 3 else ("empty answer, wrong" if words == 0 else "")
    return rating, comment


def make_task(name: str, root: Path, n_dev: int, n_train: int, n_test: int, data: Path) -> Path:
    src = data / "instruction_induction" / name
    rows = [json.loads(line) for line in (src / "train.jsonl").read_text().splitlines()]
    test = [json.loads(line) for line in (src / "test.jsonl").read_text().splitlines()]
    random.Random(0).shuffle(rows)
    d = root / f"{name}-small"
    d.mkdir(parents=True, exist_ok=True)
    for split, part in (("dev", rows[:n_dev]), ("train", rows[n_dev:n_dev + n_train]), ("test", test[:n_test])):
        (d / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    notes = json.loads((src / "original" / f"annotations_{name}.json").read_text())["annotations"]
    instruction = next(n for n in notes if len(n.split()) >= 4).strip()
    (d / "task.json").write_text(json.dumps({"name": name, "kind": "generation", "metric": "exact_match",
                                             "instruction": instruction[0].upper() + instruction[1:] + "."}))
    return d


def cli(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exit_code != 0:
        raise SystemExit(f"promptsearch {' '.join(map(str, args))} failed:\n{result.output}")
    return result.stdout


def rate_scripted(run: Path, top: int, inputs: int) -> list[dict]:
    todo = run.parent / f"{run.name}-todo.jsonl"
    cli("rate", run, "--export", todo, "--top", top, "--inputs", inputs, "--quiet")
    rows = [json.loads(line) for line in todo.read_text().splitlines()]
    for r in rows:
        r["rating"], r["comment"] = scripted_rating(r["output"], r["input"])
    todo.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("rate", run, "--from-file", todo, "--quiet")
    return rows


def actual_rating(run: Path, prompt_id: str, examples) -> float:
    """The scripted rater's mean over a candidate's logged outputs on these examples."""
    logged = feedback.logged_results(RunStore.open(run))
    outs = [(logged[prompt_id][ex.key][1], ex.input) for ex in examples if ex.key in logged.get(prompt_id, {})]
    return sum(scripted_rating(o, i)[0] for o, i in outs) / len(outs), len(outs)


def main_(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="antonyms")
    ap.add_argument("--dev", type=int, default=24)
    ap.add_argument("--weight", type=float, default=0.5)
    ap.add_argument("--test", type=int, default=40)
    ap.add_argument("--search-candidates", type=int, default=8)
    ap.add_argument("--refine-candidates", type=int, default=24)
    ap.add_argument("--work", default="/tmp/feedback_e2e")
    ap.add_argument("--continue", dest="again", action="store_true",
                    help="Reuse the work folder: skip a finished search and rating, resume an interrupted refine.")
    common.add_data_argument(ap)
    args = ap.parse_args(argv)
    work = Path(args.work)
    run, refined = work / "run", work / "run-refine-1"
    if not args.again:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    task_dir = make_task(args.task, work, args.dev, 200, args.test, common.data_root(args.data))
    if not (run / "summary.json").exists():
        cli("run", "--task", task_dir, "--strategy", "templates", "--max-candidates", args.search_candidates,
            "--top-k", 3, "--out", run, "--quiet", "--json")
    t_search = json.loads((run / "summary.json").read_text())["budget_used"]["seconds"]
    if (run / "ratings.jsonl").exists():
        rows = [json.loads(line) for line in (run / "ratings.jsonl").read_text().splitlines()]
    else:
        rows = rate_scripted(run, top=3, inputs=4)
    if (refined / "summary.json").exists():
        s = json.loads((refined / "summary.json").read_text())
    elif (refined / "refine.json").exists():
        s = json.loads(cli("refine", "--resume", refined, "--json", "--quiet"))
    else:
        s = json.loads(cli("refine", run, "--rating-weight", args.weight, "--max-candidates", args.refine_candidates,
                           "--json", "--quiet"))
    t_refine = s["budget_used"]["seconds"]
    r = s["refine"]
    new = Path(s["run_dir"])
    task = load_task(str(task_dir))
    old_board = json.loads((run / "summary.json").read_text())["leaderboard"]
    new_best = s["leaderboard"][0]
    old_best = old_board[0]
    old_actual, n_old = actual_rating(run, old_best["id"], task.dev)
    new_actual, n_new = actual_rating(new, new_best["id"], task.dev)
    print(f"\npython benchmarks/feedback_e2e.py {' '.join(argv or __import__('sys').argv[1:])}")
    print(f"task {args.task}: dev {len(task.dev)}, search {t_search:.0f} s, refine {t_refine:.0f} s, weight {args.weight}")
    print(f"ratings given: {len(rows)} (mean {sum(x['rating'] for x in rows) / len(rows):.2f}); edits: "
          f"{[e['instruction'] for e in r['edits']]}; predictor: {r['predictor']}")
    print(f"\n{'old':>4} -> {'new':<4} {'dev':>6} {'rating':>7} {'blend':>6}  prompt")
    for m in r["moves"]:
        print(f"{m['old_rank'] or 'new':>4} -> {m['new_rank']:<4} {m['dev']:>6.3f} {m['rating']:>6.2f}{'*' if m['rated'] else ' '} "
              f"{m['blended']:>6.3f}  {m['prompt'][:80]!r}")
    old_test = json.loads((run / "summary.json").read_text())["best"]["test"]["score"]
    print(f"\nbefore: best {old_best['prompt']!r}\n  dev {old_best['dev']['score']:.3f}, test {old_test:.3f}, rating actual {old_actual:.2f}/5 "
          f"(scripted rater on all {n_old} dev outputs), mean of the given ratings {r['parent_best']['rating']:.2f}")
    print(f"after:  best {new_best['prompt']!r}\n  dev {r['best']['dev']:.3f}, test {r['best']['test']:.3f}, "
          f"rating predicted {r['best']['rating']:.2f}/5, actual {new_actual:.2f}/5 (scripted rater on {n_new} dev outputs)")
    given: dict[str, list[int]] = {}
    for x in rows:
        given.setdefault(x["candidate"], []).append(x["rating"])
    low = [m for m in r["moves"] if m["id"] in given and sum(given[m["id"]]) / len(given[m["id"]]) < 3]
    out = {"task": args.task, "dev": len(task.dev), "weight": args.weight, "ratings": len(rows),
           "edits": r["edits"], "predictor": r["predictor"], "moves": r["moves"],
           "low_rated_moves": [(m["old_rank"], m["new_rank"]) for m in low],
           "before": {"prompt": old_best["prompt"], "dev": old_best["dev"]["score"], "test": old_test, "actual_rating": old_actual,
                      "given_rating": r["parent_best"]["rating"]},
           "after": {"prompt": new_best["prompt"], "dev": r["best"]["dev"], "test": r["best"]["test"],
                     "predicted_rating": r["best"]["rating"], "actual_rating": new_actual},
           "seconds": {"search": round(t_search, 1), "refine": round(t_refine, 1)}}
    common.write_json(common.result_path("feedback_e2e"), out)
    print(f"\nprompts you rated below 3/5 (old -> new rank): {out['low_rated_moves']}")


if __name__ == "__main__":
    main_()
