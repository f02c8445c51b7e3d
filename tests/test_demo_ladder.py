"""clarify's demonstration ladder (``demo_ladder``): a larger similar:K is proposed only after the next smaller
one beat its base, so that a prompt whose neighbours do not help does not pay for 8 and 16 of them."""
import pytest

from promptsearch.candidate import Candidate, Trial
from promptsearch.task import Example, Task
from strategies import clarify

ROWS = tuple(Example(f"text {i}", ("bad", "good")[i % 2], label=i % 2, id=f"r{i}") for i in range(8))
TASK = Task(name="t", kind="classification", train=ROWS, dev=ROWS[:4], test=(), metric="accuracy",
            seed_prompt="Review: {input}\nSentiment:", label_words=("bad", "good"))


class Ctx:
    task = TASK
    scorer = None

    def __init__(self, board, evals_left=1e9, seconds_left=float("inf"), row=0.0):
        self.board = board
        self.remaining_evals = lambda: evals_left
        self.seconds_left = lambda: seconds_left
        self.row_seconds = lambda candidate: row

    def best(self, n):
        return [t.candidate for t in self.board[:n]]

    def leaderboard(self):
        return self.board


def rules(cands):
    return [c.demos for c in cands if c.demos]


def run(ladder, beats: dict, **time):
    """Propose everything, scoring each similar:K trial above or below its base as ``beats`` says."""
    base = Trial(Candidate(TASK.seed_prompt), rungs={16: (0.5, 0.0)})
    ctx = Ctx([base], **time)
    strategy = clarify.ClarifyContext(draws=0, rounds=1, demo_ladder=ladder)
    strategy.start(ctx)
    proposed = []
    while batch := strategy.propose(ctx, 4):
        proposed += batch
        trials = [Trial(c, rungs={16: (0.75 if beats.get(c.demos) else 0.25, 0.0)}) for c in batch]
        ctx.board = [base, *trials]
        strategy.observe(ctx, trials)
    return rules(proposed)


def test_without_the_ladder_every_rule_is_proposed_in_order():
    assert run(False, {}) == ["similar:4", "similar:8", "similar:16", "balanced:2"]


def test_the_ladder_climbs_only_while_each_step_beats_the_base():
    assert run(True, {}) == ["similar:4", "balanced:2"]  # 4 neighbours did not help: neither do 8 or 16 get tried
    assert run(True, {"similar:4": True}) == ["similar:4", "balanced:2", "similar:8"]
    assert run(True, {"similar:4": True, "similar:8": True}) == ["similar:4", "balanced:2", "similar:8", "similar:16"]
    # a step that beats the base although the one below did not is never reached: the ladder stops at the first miss
    assert run(True, {"similar:8": True}) == ["similar:4", "balanced:2"]


def test_auto_climbs_only_where_the_evaluations_left_would_outlast_the_seconds_left():
    every = ["similar:4", "similar:8", "similar:16", "balanced:2"]
    assert run("auto", {}) == every  # no time limit
    assert run("auto", {}, evals_left=1000, seconds_left=60.0) == every  # the base's row not measured yet
    # a row of the base takes 0.01 s; a similar:K row about (K + 1) times that, K = 28/3 on average: 1000
    # evaluations of them take about 103 s
    assert run("auto", {}, evals_left=1000, seconds_left=110.0, row=0.01) == every
    assert run("auto", {}, evals_left=1000, seconds_left=100.0, row=0.01) == ["similar:4", "balanced:2"]
    assert run("auto", {"similar:4": True}, evals_left=1000, seconds_left=100.0, row=0.01) == [
        "similar:4", "balanced:2", "similar:8"]


def test_the_option_takes_true_false_or_auto():
    assert clarify.ClarifyContext().demo_ladder == "auto"
    with pytest.raises(ValueError, match="true, false or auto"):
        clarify.ClarifyContext(demo_ladder="sometimes")
