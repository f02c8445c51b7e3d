"""Schedules: adaptive stages (one that stops raising the run's best hands over) and the bandit (strategies take turns)."""
import importlib

import pytest
from click.testing import CliRunner

from promptsearch import runner
from promptsearch.candidate import Candidate
from promptsearch.errors import PromptSearchError
from promptsearch.scoring import Scorer
from promptsearch.search import Budget, Racing, Search, bandit
from promptsearch.strategy import Strategy
from promptsearch.task import load_task

from .conftest import cut_run

search_module = importlib.import_module("promptsearch.search")  # ps.search is the API function


@pytest.fixture(scope="module")
def task():
    return load_task("sst2-mini")


def test_adaptive_limits_leave_a_reserve_for_each_later_stage(tiny, task):
    s = Search(task, Scorer(tiny), [], Budget(max_evals=1000, max_candidates=100), schedule="adaptive")
    assert s._stage_limits(3, adaptive=True)[:2] == pytest.approx((70, 700))  # 1 - 2 x 0.15
    assert s._stage_limits(2, adaptive=True)[:2] == pytest.approx((85, 850))
    assert s._stage_limits(1, adaptive=True)[:2] == pytest.approx((100, 1000))
    assert s._stage_limits(3)[:2] == pytest.approx((100 / 3, 1000 / 3))  # even: as before
    assert s._stage_limits(8, adaptive=True)[1] == pytest.approx(1000 / 8)  # never less than an even share
    with pytest.raises(ValueError, match="unknown schedule"):
        Search(task, Scorer(tiny), [], Budget(), schedule="ucb")


def test_a_stage_stalls_after_its_share_of_evaluations_without_a_gain(tiny, task):
    s = Search(task, Scorer(tiny), [], Budget(max_evals=1000), schedule="adaptive")
    s.tell([Candidate(task.seed_prompt)])
    s._stall = [None, s.evals_used]
    assert not s.stalled() and s.stall_evals() == 250
    assert Search(task, Scorer(tiny), [], Budget(max_evals=300)).stall_evals() == 8 * 16  # at least 8 first rungs
    s.charge(249)
    assert not s.stalled()
    s.charge(1)
    assert s.stalled() and s.exhausted()
    # a better prompt (the seed's score beaten on all of dev) resets the count: find one without a stall first
    probe = Search(task, Scorer(tiny), [], Budget(max_evals=1000))
    probe.tell([Candidate(task.seed_prompt)])
    words = [("negative", "positive"), ("bad", "good"), ("no", "yes"), ("terrible", "great"), ("sad", "happy")]
    better = next(c for c in (Candidate(task.seed_prompt, w) for w in words)
                  if probe.tell([c]) and probe.leaderboard()[0].candidate.id == c.id)
    s = Search(task, Scorer(tiny), [], Budget(max_evals=1000), schedule="adaptive")
    s.tell([Candidate(task.seed_prompt)])
    s._stall = [None, s.evals_used]
    s.stalled()
    s.charge(200)
    s.tell([better])
    assert s.leaderboard()[0].candidate.id == better.id
    assert not s.stalled() and s._stall[1] == s.evals_used
    s.charge(249)
    assert not s.stalled()
    s.charge(1)
    assert s.stalled()
    # a one-row flip on the same dev prefix is no gain (100 dev rows: +0.01 < 2 rows' worth)
    best = s.leaderboard()[0].sort_key()[:2]
    s._stall = [(best[0], best[1] - 0.01), s.evals_used - 300]
    assert s.stalled() and s._stall[0] == (best[0], best[1] - 0.01)
    s._stall = [(best[0], best[1] - 0.02), s.evals_used - 300]
    assert not s.stalled() and s._stall == [best, s.evals_used]


def test_adaptive_run_hands_over_and_replays_on_resume(tiny, task, tmp_path):
    config = runner.make_config(task="sst2-mini", strategies=["templates", "clarify"], schedule="adaptive",
                                options={"templates": {"search_labels": False}},
                                budget={"max_evals": 1500, "max_seconds": None})
    full = runner.run(config, tmp_path / "a", parts=(task, tiny, Scorer(tiny)))
    stages = full["stages"]
    assert full["schedule"] == "adaptive" and [st["strategy"] for st in stages] == ["templates", "clarify"]
    first = stages[0]
    # the first stage may spend up to 85% of the budget (plus one rung past it), never the whole
    assert first["evals"] <= 0.85 * 1500 + len(task.dev)
    if first["stalled"]:
        assert first["evals"] >= 0.25 * 1500
    assert full["budget_used"]["evals"] >= 1500 or stages[1]["evals"] > 0
    cut = cut_run(tmp_path / "a", tmp_path / "b")
    resumed = runner.run(None, cut, resume=True, parts=(task, tiny, Scorer(tiny)))
    assert resumed["leaderboard"] == full["leaderboard"] and resumed["stages"] == stages


def test_the_default_chain_runs_bandit_and_named_strategies_even(monkeypatch, tmp_path):
    from promptsearch.cli import main

    seen = []
    monkeypatch.setattr(runner, "run", lambda config, run_dir, **kw: seen.append(config) or (_ for _ in ()).throw(
        PromptSearchError("stop here")))
    for args in ([], ["--strategy", "clarify"], ["--strategy", "clarify", "--schedule", "adaptive"],
                 ["--proposer", str(tmp_path / "bigger-model")]):
        CliRunner().invoke(main, ["run", "--out", str(tmp_path / str(len(seen))), *args])
    assert [c["schedule"] for c in seen] == ["bandit", "even", "adaptive", "bandit"]
    assert seen[0]["strategies"] == ["templates", "clarify", "ensemble"]  # the final ensemble: when the budget holds it
    assert seen[1]["strategies"] == ["clarify"]
    assert seen[3]["strategies"] == ["templates", "ape", "clarify", "ensemble"]  # a separate proposer writes instructions
    assert search_module.SCHEDULES == ("even", "adaptive", "bandit")


def test_old_configs_read_as_even_and_bad_schedules_are_one_line(tmp_path):
    from promptsearch.store import RunStore

    old = runner.make_config(task="sst2-mini")
    del old["schedule"]
    store = RunStore.create(tmp_path / "r", old)
    assert runner.read_config(store)["schedule"] == "even"
    bad = RunStore.create(tmp_path / "s", {**old, "schedule": "random"})
    with pytest.raises(PromptSearchError, match="field 'schedule' must be one of even, adaptive, bandit"):
        runner.read_config(bad)


# ---- the bandit schedule (bandit.py) ----------------------------------------------------------------
def _turns(arms, leader_of_turn, n):
    turns = []
    for turn in range(n):
        i = bandit.choose(arms, leader_of_turn(turn), turn)
        arms[i].pulls, arms[i].last = arms[i].pulls + 1, turn
        turns.append(i)
    return turns


def test_bandit_turns_warm_up_in_order_then_follow_the_leader_with_patience():
    arms = [bandit.Arm("templates"), bandit.Arm("clarify")]
    # each once in chain order; then clarify (it leads from the third turn on), but templates never waits more
    # than PATIENCE turns
    assert _turns(arms, lambda turn: 1 if turn >= 2 else None, 10) == [0, 1, 1, 1, 0, 1, 1, 1, 0, 1]
    arms = [bandit.Arm(n) for n in "abc"]
    assert _turns(arms, lambda turn: None, 6) == [0, 1, 2, 0, 1, 2]  # the seed leads: round robin
    arms[1].retired = arms[0].retired = True
    assert bandit.choose(arms, 0, 6) == 2  # a retired leader does not pull
    arms[2].retired = True
    assert bandit.choose(arms, None, 7) is None


class _Fixed(Strategy):
    """Proposes its prompts in order; counts its starts."""

    def __init__(self, name, prompts):
        self.name, self.prompts, self.starts = name, prompts, 0

    def start(self, context):
        self.starts += 1
        self._left = list(self.prompts)

    def propose(self, context, n):
        batch, self._left = self._left[:n], self._left[n:]
        return [Candidate(p, strategy=self.name) for p in batch]


def test_bandit_run_gives_the_leading_strategy_the_turns(tiny, task):
    whole = Racing(min_examples=len(task.dev))  # one rung: every prompt is scored on all of dev
    probe = Search(task, Scorer(tiny), [], Budget(), racing=whole)
    score = lambda p: (probe.tell([Candidate(p)]), probe.trials[Candidate(p).id].sort_key())[1]
    seed = score(task.seed_prompt)
    # the tiny model is random: find a prompt that beats the seed, and prompts that do not
    variants = [f"{w} {k}:\n{task.seed_prompt}" for k in range(12) for w in ("Review", "Text", "Note", "Read")]
    good = next(p for p in variants if score(p) > seed)
    weak = [p for p in variants if score(p) <= seed][:16]
    assert len(weak) == 16
    helper = _Fixed("helper", [good] + [f"{good}\n{k}" for k in range(40)])
    idle = _Fixed("idle", weak)
    first = bandit.FIRST_TURN or 8  # a first turn of FIRST_TURN proposals (None: the batch_size), later ones bandit.PULL
    s = Search(task, Scorer(tiny), [idle, helper], Budget(max_candidates=1 + 2 * first + 8 * bandit.PULL),
               racing=whole, batch_size=first, schedule="bandit")
    out = s.run()
    idle_stage, helper_stage = out["stages"]
    # turns: idle, helper (good leads from here on), helper x2, idle (waited PATIENCE), helper x3, idle, helper
    assert idle_stage == {"strategy": "idle", "evals": (first + 2 * bandit.PULL) * len(task.dev), "pulls": 3,
                          "leads": 0}
    assert helper_stage["pulls"] == 7 and helper_stage["evals"] == (first + 6 * bandit.PULL) * len(task.dev)
    assert helper_stage["leads"] >= 1 and out["best"]["prompt"].startswith(good)
    assert idle.starts == 1 and helper.starts == 1


def test_bandit_run_resumes_to_the_same_turns(tiny, task, tmp_path):
    config = runner.make_config(task="sst2-mini", strategies=["templates", "clarify"], schedule="bandit",
                                options={"templates": {"search_labels": False}},
                                budget={"max_evals": 1500, "max_seconds": None},
                                selection="dev")  # turns on dev alone, as the test was set up
    full = runner.run(config, tmp_path / "a", parts=(task, tiny, Scorer(tiny)))
    assert full["schedule"] == "bandit" and [st["strategy"] for st in full["stages"]] == ["templates", "clarify"]
    assert all(st["pulls"] >= 2 for st in full["stages"])
    cut = cut_run(tmp_path / "a", tmp_path / "b")
    resumed = runner.run(None, cut, resume=True, parts=(task, tiny, Scorer(tiny)))
    assert resumed["leaderboard"] == full["leaderboard"] and resumed["stages"] == full["stages"]


class _Final(_Fixed):
    """A final strategy: records what it saw when its stage began."""

    final = True

    def reserve(self, task):
        return 3 * len(task.dev)

    def start(self, context):
        super().start(context)
        self.saw = (context.remaining_evals(), len(context.leaderboard()))


def test_bandit_runs_a_final_strategy_last_in_its_reserve(tiny, task):
    whole = Racing(min_examples=len(task.dev))  # one rung: each prompt costs exactly len(dev) = 100
    prompts = [f"{w} {k}:\n{task.seed_prompt}" for k in range(20) for w in ("Review", "Text")]
    arms = [_Fixed("a", prompts[:20]), _Fixed("b", prompts[20:])]
    final = _Final("combine", [f"Final:\n{task.seed_prompt}"])
    s = Search(task, Scorer(tiny), [final, *arms], Budget(max_evals=1500), racing=whole, batch_size=4, schedule="bandit")
    assert s._arm_limits([final])[1] == 1500 - 300
    out = s.run()
    a, b, last = out["stages"]
    # the arms stop at 1,200 (the seed's 100 and 11 prompts), the final has the 300 kept for it, and it sees
    # everything the arms scored
    assert (a["strategy"], b["strategy"]) == ("a", "b") and a["evals"] + b["evals"] == 1100
    assert last == {"strategy": "combine", "evals": 100, "final": True}
    assert final.saw == (300, 12) and final.starts == 1
    assert out["budget_used"]["evals"] == 1300


def test_a_final_strategy_whose_reserve_is_over_a_third_of_the_budget_is_skipped(tiny, task):
    whole = Racing(min_examples=len(task.dev))
    arms = [_Fixed("a", [f"Text {k}:\n{task.seed_prompt}" for k in range(20)])]
    final = _Final("combine", [f"Final:\n{task.seed_prompt}"])
    out = Search(task, Scorer(tiny), [*arms, final], Budget(max_evals=800), racing=whole, batch_size=4,
                 schedule="bandit").run()
    assert out["stages"][0]["evals"] == 700  # the arms had the whole budget (the seed took 100)
    assert out["stages"][1] == {"strategy": "combine", "evals": 0, "final": True, "skipped": "budget"}
    assert final.starts == 0


def test_the_default_runs_the_ensemble_last_and_resumes_to_the_same(tiny, task, tmp_path):
    config = runner.make_config(task="sst2-mini", strategies=runner.default_strategies(None), schedule="bandit",
                                options={"templates": {"search_labels": False}},
                                budget={"max_evals": 1500, "max_seconds": None},
                                selection="dev")  # the accounting below counts dev's 100 rows
    full = runner.run(config, tmp_path / "a", parts=(task, tiny, Scorer(tiny)))
    names = [st["strategy"] for st in full["stages"]]
    assert names == ["templates", "clarify", "ensemble"] and full["stages"][-1]["final"]
    arms_evals = sum(st["evals"] for st in full["stages"][:2])
    assert arms_evals + 100 <= 1500 - 300 + 100  # the seed's 100, the arms' turns (one rung past the limit at most)
    cut = cut_run(tmp_path / "a", tmp_path / "b")
    resumed = runner.run(None, cut, resume=True, parts=(task, tiny, Scorer(tiny)))
    assert resumed["leaderboard"] == full["leaderboard"] and resumed["stages"] == full["stages"]
