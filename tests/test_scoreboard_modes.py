"""The scoreboard's modes for issue 17: the targets, the 18 instruction-induction tasks, the means over tasks."""
import json
import os
from pathlib import Path

import pytest

from benchmarks import common, scoreboard

from .conftest import SHARED_DATA


def test_modes_name_the_issues_tasks_budgets_and_strategies():
    assert len(scoreboard.INDUCTION) == 18 and "ape" in scoreboard.STRATEGIES
    induction = os.path.join(SHARED_DATA, "instruction_induction")
    if os.path.isdir(induction):
        assert sorted(scoreboard.INDUCTION) == sorted(os.listdir(induction))
    targets = scoreboard.MODES["targets"]
    assert targets.tasks == ("sst2", "agnews", "trec") and targets.max_evals == 8000
    assert targets.dev is None and targets.test is None and targets.test_caps == {"agnews": 2000}
    assert targets.strategies == ("default",)
    assert scoreboard.MODES["induction"].strategies == ("default", "ape", "clarify")
    assert scoreboard.MODES["full"].tasks == scoreboard.CLASSIFICATION + scoreboard.INDUCTION
    assert scoreboard.strategy_chain("templates+clarify+ensemble") == ["templates", "clarify", "ensemble"]
    assert scoreboard.strategy_chain("default") == ["templates", "clarify", "ensemble"] and scoreboard.strategy_chain("ape") == ["ape"]


def test_means_over_tasks_against_the_seed():
    row = lambda task, spec, best, seed, status="ok": {"task": task, "strategy": spec, "status": status,
                                                         "best_test": {"score": best}, "seed_test": {"score": seed}}
    rows = [row("a", "ape", 0.4, 0.1), row("b", "ape", 0.2, 0.1), row("a", "clarify", 0.5, 0.1),
            row("b", "clarify", 0, 0, status="failed")]
    m = scoreboard.means(rows)
    assert m["ape"] == pytest.approx({"tasks": 2, "best_test": 0.3, "seed_test": 0.1, "ratio": 3.0})
    assert m["clarify"]["tasks"] == 1 and m["clarify"]["ratio"] == pytest.approx(5.0)


def test_default_against_the_best_single_strategy_and_merging_parts(tmp_path):
    score = lambda x: {"metric": "accuracy", "score": x, "n": 200, "ci_low": x - 0.06, "ci_high": x + 0.06}
    row = lambda task, spec, best, dev=0.5: {"task": task, "strategy": spec, "status": "ok", "best_test": score(best),
                                             "best_dev": score(dev),
                                    "seed_test": score(0.1), "gain_test": best - 0.1, "evals": 400,
                                    "best_prompt": "p", "wall_seconds": 1.0, "curve": []}
    rows = [row("a", "templates", 0.50, 0.6), row("a", "clarify", 0.70), row("a", "soft-prompt", 0.90, 0.9),
            row("a", "default", 0.69, 0.55), row("b", "templates", 0.40), row("b", "default", 0.30, 0.5),
            row("c", "clarify", 0.2)]
    gaps = scoreboard.default_vs_best(rows)
    # soft-prompt is the baseline, not a single strategy to match; c has no default run
    assert [(t["task"], t["best_single"], t["gap"]) for t in gaps["tasks"]] == [("a", "clarify", -0.01),
                                                                               ("b", "templates", -0.1)]
    assert gaps["met"] == 1 and gaps["n"] == 2 and gaps["behind"] == ["b"]
    assert gaps["mean_gap"] == pytest.approx(-0.055)
    # on dev: a's best single dev score is templates' 0.6 (not the test winner's); b's default ties templates'
    assert [t["dev_gap"] for t in gaps["tasks"]] == [-0.05, 0.0] and (gaps["dev_met"], gaps["dev_n"]) == (1, 2)
    limits = {"dev": 48, "test": 200, "max_evals": 400, "seed": 0, "racing": {"min_examples": 16, "eta": 3},
              "top_k": 3, "options": {},
              "strategies": [], "tasks": [], "sizes": {}}
    part = lambda mode, rs, **kw: {"mode": mode, "command": mode, "date": "d", "machine": {"summary": "m"},
                                   "model": "embedded", "scorer": "fresh",
                                   "limits": {**limits, **kw}, "rows": rs, "runs_dir": "r", "wall_seconds": 1.0}
    older = tmp_path / "older.json"  # another day's part, of which only clarify and templates count
    older.write_text(json.dumps(part("induction", rows[4:] + [row("a", "default", 0.1)])))
    merged = scoreboard.merge([part("full", rows[:4]), scoreboard.read_part(f"{older}:templates,clarify")], tmp_path)
    assert [(r["task"], r["strategy"]) for r in merged["rows"]] == [
        ("a", "templates"), ("a", "clarify"), ("a", "soft-prompt"), ("a", "default"), ("b", "templates"), ("c", "clarify")]
    assert merged["parts"][1]["keep"] == ["templates", "clarify"] and merged["limits"]["tasks"] == []
    with pytest.raises(SystemExit, match="a default is in two parts"):
        scoreboard.merge([part("full", rows[:4]), part("induction", [row("a", "default", 0.1)])], tmp_path)
    with pytest.raises(SystemExit, match="nope.json:ape: not a scoreboard JSON .FileNotFoundError"):
        scoreboard.read_part(f"{tmp_path / 'nope.json'}:ape")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(SystemExit, match="list.json: not a scoreboard JSON"):
        scoreboard.read_part(str(tmp_path / "list.json"))
    with pytest.raises(SystemExit, match="different limits"):
        scoreboard.merge([part("full", rows[:4]), part("full", rows[4:], max_evals=3000)], tmp_path)
    assert "within 0.02 on **1 of 1** tasks" in common.result_path("scoreboard-full", ".md", tmp_path).read_text()  # b's default left out


def test_default_runs_the_default_chain_and_schedule_and_named_strategies_run_even(tiny, small_task_dir, tmp_path):
    scoreboard.main(["--mode", "induction", "--tasks", small_task_dir, "--strategies", "default,templates",
                     "--max-evals", "60", "--dev-limit", "24", "--test-limit", "20",
                     "--results-dir", str(tmp_path / "results"), "--runs-dir", str(tmp_path / "runs")], model=tiny)
    data = json.loads(common.result_path("scoreboard-induction", ".json", tmp_path / "results").read_text())
    rows = {r["strategy"]: r for r in data["rows"]}
    config = lambda name: json.loads((Path(rows[name]["run_dir"]) / "config.json").read_text())
    assert config("default")["schedule"] == "bandit" and config("default")["strategies"] == ["templates", "clarify", "ensemble"]
    assert config("templates")["schedule"] == "even"
    assert set(data["means"]) == {"default", "templates"}
    assert "Mean test score over tasks" in common.result_path("scoreboard-induction", ".md", tmp_path / "results").read_text()
