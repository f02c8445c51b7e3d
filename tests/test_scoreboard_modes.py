"""The scoreboard's modes for issue 17: the targets, the 18 instruction-induction tasks, the means over tasks."""
import json
import os
from pathlib import Path

import pytest

from benchmarks import scoreboard

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


def test_means_over_tasks_against_the_seed():
    row = lambda task, spec, best, seed, status="ok": {"task": task, "strategy": spec, "status": status,
                                                         "best_test": {"score": best}, "seed_test": {"score": seed}}
    rows = [row("a", "ape", 0.4, 0.1), row("b", "ape", 0.2, 0.1), row("a", "clarify", 0.5, 0.1),
            row("b", "clarify", 0, 0, status="failed")]
    m = scoreboard.means(rows)
    assert m["ape"] == pytest.approx({"tasks": 2, "best_test": 0.3, "seed_test": 0.1, "ratio": 3.0})
    assert m["clarify"]["tasks"] == 1 and m["clarify"]["ratio"] == pytest.approx(5.0)


def test_default_runs_the_default_chain_and_schedule_and_named_strategies_run_even(tiny, small_task_dir, tmp_path):
    scoreboard.main(["--mode", "induction", "--tasks", small_task_dir, "--strategies", "default,templates",
                     "--max-evals", "60", "--dev-limit", "24", "--test-limit", "20",
                     "--results-dir", str(tmp_path / "results"), "--runs-dir", str(tmp_path / "runs")], model=tiny)
    data = json.loads((tmp_path / "results" / "scoreboard-induction.json").read_text())
    rows = {r["strategy"]: r for r in data["rows"]}
    config = lambda name: json.loads((Path(rows[name]["run_dir"]) / "config.json").read_text())
    assert config("default")["schedule"] == "bandit" and config("default")["strategies"] == ["templates", "clarify"]
    assert config("templates")["schedule"] == "even"
    assert set(data["means"]) == {"default", "templates"}
    assert "Mean test score over tasks" in (tmp_path / "results" / "scoreboard-induction.md").read_text()
