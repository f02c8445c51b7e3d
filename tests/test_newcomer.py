"""#30: what a new user trips on. Each test fails on the code before #30 (named in its docstring)."""

import json
import logging

from click.testing import CliRunner

from promptsearch.candidate import Candidate
from promptsearch.cli import main
from promptsearch.scorer import Scorer
from promptsearch.search import Budget, Search
from promptsearch.strategy import Strategy
from promptsearch.task import load_task


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


class Nothing(Strategy):
    """Proposes nothing: the search ends for want of prompts."""

    name = "nothing"

    def propose(self, context, n):
        return []


class Two(Strategy):
    """Proposes two fixed prompts once."""

    name = "two"

    def __init__(self):
        self.done = False

    def propose(self, context, n):
        if self.done:
            return []
        self.done = True
        return [Candidate("Text: {input}\nLabel:", strategy="two"), Candidate("{input} It was", strategy="two")]


# ---- 1: a run says why it stopped, warns when its limits leave no room, and claims no idle strategy -----
def test_evals_spent_by_the_seed_warns_at_start_and_says_why_at_the_end(tiny_dir, small_task_dir, tmp_path, caplog):
    """Before #30: no warning, no stop_reason, and nothing said about the two strategies that never ran."""
    with caplog.at_level(logging.WARNING):
        r = invoke("run", "--model", tiny_dir, "--task", small_task_dir, "--strategy", "templates", "--strategy",
                   "clarify", "--max-evals", "16", "--out", str(tmp_path / "r"), "--json")
    s = json.loads(r.stdout)
    assert s["stop_reason"] == "evals" and s["strategies_run"] == []
    assert [st["evals"] for st in s["stages"]] == [0, 0]
    warned = [rec.getMessage() for rec in caplog.records if "no room to search" in rec.getMessage()]
    assert warned and "evaluation budget of 16" in warned[0] and s["no_room_warning"] == warned[0]
    text = invoke("show", str(tmp_path / "r")).output.splitlines()
    assert text[-1].startswith("stopped: the evaluation budget (--max-evals) is spent")
    assert "strategies that spent evaluations: none (never ran: templates, clarify)" in text[-1]


def test_time_reserve_for_the_final_checks_is_named_with_its_numbers(tiny, small_task_dir, caplog):
    """Before #30: the reserve ate the search silently (stages with 0 evaluations, best = seed, no reason)."""
    task = load_task(small_task_dir)
    search = Search(task, Scorer(tiny, batch_size=8), [Two()], Budget(max_seconds=100))
    search.seconds_per_eval = lambda: 10.0 if search.scored else 0.0  # as slow as a busy machine: each final-check row ~10 s
    with caplog.at_level(logging.WARNING):
        s = search.run()
    assert s["stop_reason"] == "final_reserve" and s["strategies_run"] == []
    msg = s["no_room_warning"]
    assert "--max-seconds 100" in msg and "74 example-evaluations" in msg and "~740 s" in msg  # 14 dev + 60 test rows


def test_a_strategy_with_nothing_to_propose_is_the_reason(tiny, small_task_dir):
    task = load_task(small_task_dir)
    s = Search(task, Scorer(tiny, batch_size=8), [Two(), Nothing()], Budget(max_evals=10_000)).run()
    assert s["stop_reason"] == "exhausted" and s["strategies_run"] == ["two"]
    assert "no_room_warning" not in s
