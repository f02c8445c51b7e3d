"""Clarify's redraws on the tiny model: once its rounds are done it draws the demonstrations of the best drawn
prompts again, replaying their other edits on the same root, and stops after ``redraws`` calls."""

import re

import pytest

from promptsearch.candidate import Candidate
from promptsearch.scorer import Scorer
from promptsearch.search import Budget, Search
from promptsearch.strategy import make
from promptsearch.task import load_task

PROMPT = "Review: {input}\nSentiment:"


@pytest.fixture(scope="module")
def sst2():
    return load_task("sst2-mini")


def _draw_free(edit: str) -> str:
    return re.sub(r"#\d+", "", edit)


def test_replay_draws_new_demonstrations_under_the_same_edits(tiny, sst2):
    search = Search(sst2, Scorer(tiny), [], Budget(max_evals=10_000))
    root = Candidate(PROMPT)
    search.tell([root])
    ctx = search.context(0)
    clarify = make("clarify")
    clarify.start(ctx)
    drawn = Candidate("whatever was drawn before", strategy="clarify", parents=(root.id,),
                      edit="demos:2#0+clarifier:Be precise.+calibrate:contextual")
    new = clarify.replay(ctx, root, drawn)
    assert new.prompt.startswith("Be precise.\nReview: ") and new.prompt.endswith("\n\n" + PROMPT)
    assert new.prompt.count("Sentiment:") == 3  # two answered demonstrations, then the prompt itself
    assert (new.calibrate, new.demos, new.parents) == ("contextual", None, (drawn.id,))
    assert new.edit == "demos:2#2+clarifier:Be precise.+calibrate:contextual"  # draws 0 and 1 are the rounds'
    again = clarify.replay(ctx, root, drawn)
    assert again.prompt != new.prompt  # the generator moved on: other examples
    assert clarify.replay(ctx, root, Candidate("x", strategy="clarify", edit="demos:2#0+shuffle")) is None


@pytest.mark.parametrize("redraws", [0, 3])
def test_after_its_rounds_clarify_redraws_the_best_drawn_prompts(tiny, sst2, redraws):
    clarify = make("clarify", {"rounds": 1, "demo_rules": [], "calibrations": [], "redraws": redraws})
    search = Search(sst2, Scorer(tiny), [clarify], Budget(max_evals=100_000), schedule="even")
    search.run()
    board = {t.candidate.id: t.candidate for t in search.leaderboard()}
    # the rounds' draws are numbered 0 and 1 (draws=2); a redraw carries a later number
    redrawn = [c for c in board.values() if any(int(n) >= 2 for n in re.findall(r"#(\d+)", c.edit))]
    assert len(redrawn) <= redraws * clarify.bases
    assert len(redrawn) >= redraws  # every call found a drawn prompt to redraw
    for c in redrawn:
        parent = board[c.parents[0]]
        assert parent.strategy == "clarify" and _draw_free(parent.edit) == _draw_free(c.edit)
        assert c.prompt != parent.prompt and c.prompt.endswith(sst2.seed_prompt)
