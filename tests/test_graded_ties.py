"""Generation tasks: prompts that tie on exact match are told apart by how near their misses are (metrics.closeness),
not by which was proposed first; a row a prompt shows with its answer is no evidence either way."""

from __future__ import annotations

import pytest

from promptsearch.candidate import Candidate
from promptsearch.metrics import closeness
from promptsearch.scoring import Scorer
from promptsearch.search import Budget, Racing, Search, loop
from promptsearch.strategy import Strategy
from promptsearch.task import Example, Task
from promptsearch.testing import FakeModel

WORDS = ["apple", "river", "stone", "cloud", "light", "grass", "storm", "tiger", "plant", "water", "brick", "flame"]


class Fixed(Strategy):
    name = "fixed"
    description = "proposes a fixed list once"

    def __init__(self, prompts):
        self.prompts = list(prompts)

    def propose(self, context, n):
        out, self.prompts = self.prompts[:n], self.prompts[n:]
        return [Candidate(p, strategy=self.name) for p in out]


def plural_task() -> Task:
    rows = tuple(Example(w, w + "s") for w in WORDS)
    return Task("plural", "generation", rows[:4], rows, rows[:4], "exact_match", "{input}\n")


def answer(text: str) -> str:
    """Both prompts get the first half of the rows right; FAR's misses are noise, NEAR's drop one letter."""
    word = text.split("\n")[0].split(":")[-1].strip()
    if text.startswith("Word:") or text.startswith("Plural:"):
        if WORDS.index(word) < 6:
            return word + "s"
        return "qxz" if text.startswith("Word:") else word + "e"
    return ""  # the seed: nothing right, nothing near


def test_closeness_is_partial_credit_against_the_nearest_answer():
    assert closeness("cats", ["cats"]) == 1.0
    assert closeness(" Cats ", ["dog", "cats"]) == 1.0  # stripped, lowercased, the nearest answer counts
    assert 0.5 < closeness("cat", ["cats"]) < 1.0
    assert closeness("qxz", ["cats"]) == 0.0
    assert closeness("", []) == 0.0


@pytest.mark.parametrize("graded, winner", [(True, "Plural: {input}\n"), (False, "Word: {input}\n")])
def test_equal_exact_match_goes_to_the_nearer_misses(monkeypatch, graded, winner):
    monkeypatch.setattr(loop, "GRADED_TIES", graded)
    task = plural_task()
    search = Search(task, Scorer(FakeModel(answer=answer)), [Fixed(["Word: {input}\n", "Plural: {input}\n"])],
                    Budget(max_evals=10_000), racing=Racing(16, 3))
    summary = search.run()
    board = search.leaderboard()
    assert [t.score for t in board[:2]] == [0.5, 0.5]  # a tie on exact match...
    assert summary["best"]["prompt"] == winner  # ...broken by closeness, or (the old rule) by age
    if graded:
        near, far = board[0].rungs[12][1], board[1].rungs[12][1]
        assert near > 0.9 > 0.5 == pytest.approx(far)


def test_rows_a_prompt_shows_leave_its_tie_break(monkeypatch):
    """A balanced draw's rows are shown with their answers: they leave the closeness as they leave the score."""
    task = plural_task()
    search = Search(task, Scorer(FakeModel(answer=answer)), [Fixed([])], Budget(max_evals=100))
    shown = Candidate("Plural: {input}\n")
    monkeypatch.setattr(search.objective, "kept_rows", lambda c, examples: list(range(6, len(examples))))
    results = search.scorer.evaluate(task, shown, list(task.dev))
    _, tie = search.rung_score(shown, results, list(task.dev))
    assert tie == pytest.approx(sum(closeness(w + "e", [w + "s"]) for w in WORDS[6:]) / 6)
