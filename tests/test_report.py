"""``promptsearch report`` (plots + tables of runs) and the scoreboard runner, on the tiny model."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks import common, scoreboard
from promptsearch import report, runner
from promptsearch.cli import main
from promptsearch.errors import PromptSearchError
from promptsearch.scoring import Scorer
from promptsearch.scoring.calibration import BATCH_ROWS
from promptsearch.task import load_task

PNG = b"\x89PNG\r\n\x1a\n"


def make_run(tiny, task_dir, run_dir, strategies):
    task = load_task(task_dir)
    config = runner.make_config(task=task_dir, strategies=strategies, budget={"max_evals": 200},
                                racing={"min_examples": 8})
    return runner.run(config, run_dir, parts=(task, tiny, Scorer(tiny)))


@pytest.fixture(scope="module")
def runs(tiny, small_task_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("report-runs")
    out = {}
    for name, strategies in (("chain", ["templates", "clarify"]), ("clarify", ["clarify"])):
        out[name] = (base / name, make_run(tiny, small_task_dir, base / name, strategies))
    return out


def assert_png(path):
    data = Path(path).read_bytes()
    assert len(data) > 1000 and data[:8] == PNG


def test_report_one_run_png_and_numbers_match_summary(runs, tmp_path):
    run_dir, summary = runs["chain"]
    r = CliRunner().invoke(main, ["report", str(run_dir), "--out", str(tmp_path), "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["figures"] == [str(tmp_path / "curve.png")]
    assert_png(tmp_path / "curve.png")
    row = out["runs"][0]
    assert row["finished"] and row["task"] == summary["task"] and row["strategies"] == ["templates", "clarify"]
    assert row["seed_test"] == summary["seed"]["test"] and row["best_test"] == summary["best"]["test"]
    assert row["best_dev"] == summary["best"]["dev"] and row["estimate"] == summary["estimate"]
    # the table gives the winner's estimate as `run` prints it (n, CI, which rows), not its dev score alone
    est = summary["estimate"]
    which = "held-out" if est["which"] == "holdout" else "dev, chose it"
    assert f"| {est['score']:.3f} [{est['ci_low']:.3f}, {est['ci_high']:.3f}] n={est['n']} ({which}) |" in out["table"]
    assert f"| {summary['seed']['test']['score']:.3f} n={summary['seed']['test']['n']} |" in out["table"]
    assert row["evals"] == summary["budget_used"]["evals"] and row["seconds"] == summary["budget_used"]["seconds"]
    assert row["best_prompt"].startswith(summary["best"]["prompt"])
    # the overall best-so-far curve ends on the dev score of the search's winner (the summary's best, or the prompt
    # it calibrated after the search: final_calibration)
    overall = row["curves"]["overall"]
    best = summary["best"]
    assert best["strategy"] == "final"  # the default: a classification winner is calibrated
    winner = next(r for r in summary["leaderboard"] if r["id"] == best["parents"][0])
    # (the final ensemble is scored on all of dev too: the curve ends on whichever of the two scored higher there)
    assert overall[-1][1] == pytest.approx(max(winner["dev"]["score"], best["dev"]["score"]))
    assert {"seed", "overall", "final"} <= set(row["curves"])
    assert set(row["curves"]) - {"seed", "overall", "final"} <= {"templates", "clarify"}
    assert [x for x, _ in overall] == sorted(x for x, _ in overall)
    full = summary["best"]["dev"]["n"]
    first_full = next(i for i, p in enumerate(overall) if p[0] >= max(r["evals_used"] for r in _records(run_dir)
                                                                       if r["size"] == full and r["candidate"]["strategy"] == "seed"))
    assert all(b[1] >= a[1] for a, b in zip(overall[first_full:], overall[first_full + 1:]))  # never down after the seed's climb
    md = (tmp_path / "report.md").read_text()
    assert f"{summary['best']['test']['score']:.3f} [{summary['best']['test']['ci_low']:.3f}, " \
           f"{summary['best']['test']['ci_high']:.3f}]" in md
    assert f"| {summary['seed']['test']['score']:.3f} n={summary['seed']['test']['n']} |" in md and f"| {summary['budget_used']['evals']} |" in md
    assert "curve.png" in md


def _records(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "candidates.jsonl").read_text().splitlines()]


def test_report_defaults_to_the_run_dir_and_prints_a_table(runs, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(runs["clarify"][0], run_dir)
    r = CliRunner().invoke(main, ["report", str(run_dir)], catch_exceptions=False)
    assert r.exit_code == 0
    assert r.stdout.startswith("| run | task |") and f"wrote {run_dir / 'curve.png'}" in r.stdout
    assert_png(run_dir / "curve.png")


def test_report_unfinished_run(runs, tmp_path):
    run_dir = tmp_path / "unfinished"
    shutil.copytree(runs["chain"][0], run_dir)
    (run_dir / "summary.json").unlink()
    lines = (run_dir / "candidates.jsonl").read_text().splitlines()
    keep = lines[: len(lines) // 2]
    (run_dir / "candidates.jsonl").write_text("\n".join(keep) + "\n" + lines[len(lines) // 2][:40])  # torn last line
    out = report.report([run_dir], out=tmp_path / "out")
    assert_png(tmp_path / "out" / "curve.png")
    row = out["runs"][0]
    kept = [json.loads(x) for x in keep]
    assert not row["finished"] and row["best_test"] is None and row["seed_test"] is None
    assert row["evals"] == kept[-1]["evals_used"] and row["seconds"] == kept[-1]["seconds"]
    assert row["candidates"] == len({r["candidate"]["id"] for r in kept})
    top = max(kept, key=lambda r: (r["size"], r["score"]["score"]))
    assert row["best_dev"]["score"] == top["score"]["score"] and row["best_dev"]["n"] == top["size"]
    assert "(unfinished)" in out["table"] and "| - |" in out["table"]


def test_report_compares_several_runs(runs, tmp_path):
    dirs = [str(runs["chain"][0]), str(runs["clarify"][0])]
    out = report.report(dirs, out=tmp_path)
    assert [Path(f).name for f in out["figures"]] == ["chain.png", "clarify.png", "compare.png"]
    for f in out["figures"]:
        assert_png(f)
    assert [r["evals"] for r in out["runs"]] == [runs[k][1]["budget_used"]["evals"] for k in ("chain", "clarify")]
    assert len(out["table"].splitlines()) == 4


def test_unique_names():
    assert report.unique_names([Path("/a/sst2/templates"), Path("/a/trec/templates")]) == ["sst2-templates", "trec-templates"]
    assert report.unique_names([Path("/a/x"), Path("/a/y")]) == ["x", "y"]


@pytest.mark.parametrize("setup,message", [
    ("missing", "no such run directory"),
    ("not_a_run", "not a run directory"),
    ("empty_log", "no scored candidates yet"),
])
def test_report_bad_input_is_one_line(setup, message, tmp_path):
    d = tmp_path / "d"
    if setup != "missing":
        d.mkdir()
    if setup == "empty_log":
        (d / "config.json").write_text(json.dumps(runner.make_config()))
        (d / "candidates.jsonl").write_text("")
    with pytest.raises(PromptSearchError):
        report.load_run(d)
    r = CliRunner().invoke(main, ["report", str(d)])
    assert r.exit_code == 2
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


# ---- the scoreboard (benchmarks/scoreboard.py, run as benchmarks/run_all.py) ------------------------
def test_scoreboard_quick_path_on_the_tiny_model(tiny, small_task_dir, tmp_path, monkeypatch):
    from promptsearch import strategy as registry
    from promptsearch.strategy import Strategy

    class Boom(Strategy):
        name = "boom"

        def propose(self, context, n):
            raise RuntimeError("boom went off\nsecond line")

    real_make = registry.make
    monkeypatch.setattr(registry, "make", lambda name, options=None: Boom() if name == "boom" else real_make(name, options))
    strategies = ["templates", "clarify", "default", "nope", "boom"]
    result = scoreboard.main(["--quick", "--tasks", small_task_dir, "--strategies", ",".join(strategies),
                              "--max-evals", "60", "--dev-limit", "24", "--test-limit", "20",
                              "--results-dir", str(tmp_path / "results"), "--runs-dir", str(tmp_path / "runs")], model=tiny)
    data = json.loads(common.result_path("scoreboard-quick", ".json", tmp_path / "results").read_text())
    assert data["mode"] == "quick" and data["limits"]["max_evals"] == 60 and data["limits"]["dev"] == 24
    assert [(r["task"], r["strategy"]) for r in data["rows"]] == [("sst2-mini", s) for s in strategies]
    rows = {r["strategy"]: r for r in data["rows"]}
    assert rows["nope"]["status"] == "skipped" and "unknown strategy" in rows["nope"]["error"]
    assert rows["boom"]["status"] == "failed" and rows["boom"]["error"] == "RuntimeError: boom went off"
    assert rows["boom"]["evals"] >= 24  # the seed was scored on all of dev before the strategy raised
    assert rows["default"]["strategies"] == ["templates", "clarify", "ensemble"]
    for name in ("templates", "clarify", "default"):
        r = rows[name]
        summary = json.loads((Path(r["run_dir"]) / "summary.json").read_text())
        assert r["status"] == "ok" and r["best_test"] == summary["best"]["test"] and r["seed_test"] == summary["seed"]["test"]
        assert r["seed_test"]["n"] == 20 and r["best_dev"]["n"] == 24
        # past the 60: the final checks on all of dev, and the final ensemble (three calibrated members) with its bias rows
        assert r["evals"] == summary["budget_used"]["evals"] and 60 <= r["evals"] <= 60 + 3 * 24 + 3 * (24 + BATCH_ROWS)
        assert r["gain_test"] == pytest.approx(r["best_test"]["score"] - r["seed_test"]["score"])
    # every run starts from the same seed prompt, so its test score is the same in every row
    assert len({r["seed_test"]["score"] for r in rows.values() if r["status"] == "ok"}) == 1
    assert data["best_per_task"][0]["strategy"] in ("templates", "clarify", "default")
    assert_png(common.result_path("scoreboard-quick", ".png", tmp_path / "results"))
    md = common.result_path("scoreboard-quick", ".md", tmp_path / "results").read_text()
    assert md.count("| sst2-mini |") == len(strategies) + 1 and "skipped: unknown strategy" in md  # + default vs best
    gap = data["default_vs_best"]["tasks"][0]
    assert gap["gap"] == pytest.approx(rows["default"]["best_test"]["score"] - max(
        rows[s]["best_test"]["score"] for s in ("templates", "clarify")))
    assert "dev = 24 rows" in md and "60 example-evaluations" in md
    assert result["rows"] == data["rows"]


def test_scoreboard_refuses_a_used_runs_dir(tiny, small_task_dir, tmp_path):
    (tmp_path / "runs" / "x").mkdir(parents=True)
    with pytest.raises(SystemExit, match="not empty"):
        scoreboard.main(["--quick", "--tasks", small_task_dir, "--runs-dir", str(tmp_path / "runs"),
                         "--results-dir", str(tmp_path)], model=tiny)


def test_bench_subsample_is_seeded_and_class_balanced():
    from promptsearch.task import Example

    rows = tuple(Example(f"x{i}", str(i // 16), label=i // 16) for i in range(96))  # sorted by class, like trec dev
    dev = common.subsample(rows, 30, seed=0, stratify=True)
    counts = [sum(ex.label == c for ex in dev) for c in range(6)]
    assert len(dev) == 30 and counts == [5] * 6
    assert dev == common.subsample(rows, 30, seed=0, stratify=True) != common.subsample(rows, 30, seed=1, stratify=True)
    test = common.subsample(rows, 30, seed=0)
    assert len({ex.label for ex in test}) > 2 and test != rows[:30]
    assert common.subsample(rows, None, seed=0) == rows == common.subsample(rows, 500, seed=0)


def test_the_table_names_the_estimate_and_says_a_dev_score_chose_the_winner():
    """Before: a `best dev` column with no n or CI, where `run` had printed a held-out estimate beside the biased
    dev score (#34: the summary says which estimate it shows)."""
    score = lambda v, n: {"score": v, "n": n, "ci_low": v - 0.1, "ci_high": v + 0.05}
    row = {"name": "r", "task": "t", "strategies": ["templates"], "finished": True, "seed_test": score(0.5, 40),
           "best_test": score(0.8, 40), "best_dev": score(0.97, 20), "evals": 10, "seconds": 1.0, "best_prompt": "p"}
    held = report.markdown_table([{**row, "estimate": {**score(0.9, 24), "which": "holdout"}}]).splitlines()[-1]
    assert "| 0.900 [0.800, 0.950] n=24 (held-out) |" in held and "0.970" not in held
    chose = report.markdown_table([{**row, "estimate": {**score(0.97, 20), "which": "dev"}}]).splitlines()[-1]
    assert "| 0.970 [0.870, 1.020] n=20 (dev, chose it) |" in chose
    old = report.markdown_table([{**row, "estimate": None}]).splitlines()[-1]  # a summary from before the estimate
    assert "| 0.970 [0.870, 1.020] n=20 (dev, chose it) |" in old
    assert "| 0.500 n=40 | 0.800 [0.700, 0.850] n=40 |" in held
