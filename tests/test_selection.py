"""selection.py: with few labelled rows, train rows score too (cross-fitted), and a held-out slice estimates the winner."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from promptsearch import runner, selection
from promptsearch.candidate import Candidate
from promptsearch.cli import main
from promptsearch.scoring import Scorer
from promptsearch.search import Budget, Search
from promptsearch.task import Example, Task
from promptsearch.testing import FakeModel

WORDS = ("negative", "positive")


def make_task(n_train=32, n_dev=32, n_test=20) -> Task:
    def rows(prefix, n):
        return tuple(Example(f"{prefix} review number {i} {'fine' if i % 2 else 'dull'}", WORDS[i % 2], label=i % 2)
                     for i in range(n))

    return Task("t", "classification", rows("train", n_train), rows("dev", n_dev), rows("test", n_test), "accuracy",
                "Review: {input}\nLabel:", WORDS)


def test_a_small_dev_split_gains_train_rows_and_holds_a_balanced_slice_out():
    task = make_task()
    assert selection.prepare(task, "auto", seed=0).selection == "holdout-dev"  # the default on a small dev split
    prepared = selection.prepare(task, "holdout", seed=0)
    assert prepared.selection == "holdout"
    held, chose, shown = ({ex.key for ex in s} for s in (prepared.holdout, prepared.dev, prepared.train))
    assert len(held) == 16 and not held & (chose | shown)  # a quarter of 64, never seen by the search
    assert sorted(ex.label for ex in prepared.holdout) == [0] * 8 + [1] * 8
    assert len(prepared.dev) > len(task.dev) - 8 and chose & shown  # train rows score too
    assert {ex.key for ex in task.train + task.dev} == held | chose | shown
    assert selection.prepare(prepared, "auto", 0) is prepared  # preparing twice changes nothing
    assert selection.prepare(task, "holdout", 0) == prepared and selection.prepare(task, "holdout", 1) != prepared


def test_modes_and_a_large_dev_split():
    task = make_task()
    assert selection.prepare(task, "dev", 0).dev == task.dev and not selection.prepare(task, "dev", 0).holdout
    labelled = selection.prepare(task, "labelled", 0)
    assert not labelled.holdout and len(labelled.dev) == 64 and labelled.train == task.train
    held = selection.prepare(task, "holdout-dev", 0)  # held out, and what is left of dev alone chooses
    assert len(held.holdout) == 16 and {ex.key for ex in held.dev} <= {ex.key for ex in task.dev}
    assert not {ex.key for ex in held.holdout} & {ex.key for ex in held.dev + held.train}
    big = make_task(n_dev=400)
    assert selection.prepare(big, "auto", 0).dev == big.dev and selection.prepare(big, "auto", 0).selection == "dev"
    assert selection.prepare(big, "holdout", 0).holdout


def copying_model():
    """A model that copies: it answers a row right when the prompt shows that row with its answer, else guesses."""
    def loglik(context, continuation):
        *shown, asked = context.split("\n\n")
        row = asked.split("\n")[0]
        return 0.0 if any(row in block and block.endswith(continuation.strip()) for block in shown) else (
            -1.0 if continuation.strip() == "negative" else -1.1)

    return FakeModel(loglik=loglik)


def test_a_prompt_is_never_scored_on_a_row_it_shows():
    task = selection.prepare(make_task(), "holdout", 0)
    scorer = Scorer(copying_model())
    shown_rows = [ex for ex in task.dev if ex in task.train][:4]
    demos = "\n\n".join(f"Review: {ex.input}\nLabel: {WORDS[ex.label]}" for ex in shown_rows)
    plain, showing = Candidate(task.seed_prompt), Candidate(demos + "\n\n" + task.seed_prompt)
    s = Search(task, scorer, [], Budget(max_evals=10_000))
    for c in (plain, showing):
        s.tell([c])
    board = {t.candidate.id: t for t in s.leaderboard()}
    full = len(task.dev)
    s._score(board[showing.id], full)
    s._score(board[plain.id], full)
    scored_on = {c.id: s.objective(c, scorer.evaluate(task, c, list(task.dev)), list(task.dev)).n for c in (plain, showing)}
    assert scored_on[plain.id] == full and scored_on[showing.id] == full - 4
    # without cross-fitting the copying prompt would win on the rows it shows; with it, it ties the plain one
    assert board[showing.id].rungs[full][0] == pytest.approx(board[plain.id].rungs[full][0])
    # the balanced rule's drawn rows are left out the same way
    rule = Candidate(task.seed_prompt, demos="balanced:2")
    assert sum(selection.Shown(task).rows(rule, list(task.dev))) >= 1


def test_a_common_word_input_is_not_counted_as_shown():
    task = replace(make_task(), train=(Example("the", "negative", label=0),) + make_task().train)
    task = selection.prepare(task, "labelled", 0)
    row = next(ex for ex in task.train if ex.input == "the")
    assert not selection.Shown(task).rows(Candidate("Say what the review feels.\nReview: {input}\nLabel:"), [row])[0]
    assert selection.Shown(task).rows(Candidate("Review: the\nLabel: negative\n\nReview: {input}\nLabel:"), [row])[0]


def test_the_run_reports_the_held_out_estimate_and_says_which(tiny_dir, small_task_dir, tmp_path):
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["run", "--model", tiny_dir, "--task", small_task_dir, "--strategy", "templates",
                                  "--max-evals", "300", "--out", str(out), "--json"], catch_exceptions=False)
    s = json.loads(r.stdout)
    task = runner.load_task_of(json.loads((out / "config.json").read_text()))
    assert s["estimate"]["which"] == "holdout" and s["estimate"]["n"] == len(task.holdout) == 18  # 25% of 40 + 30
    assert s["estimate"]["score"] == s["best"]["holdout"]["score"] and "held-out" in s["estimate"]["note"]
    assert s["seed"]["holdout"]["n"] == 18
    shown = CliRunner().invoke(main, ["show", str(out)])
    assert "held-out" in shown.output and "(chose it: biased upward)\n" in shown.output
    assert json.loads(CliRunner().invoke(main, ["show", str(out), "--json"]).stdout)["estimate"] == s["estimate"]
    # the winner against the seed on the held-out rows, paired (2026-12-05 evening; before: test alone, read last)
    paired = s["paired_holdout"]
    assert paired["difference"] == pytest.approx(s["best"]["holdout"]["score"] - s["seed"]["holdout"]["score"])
    assert paired["test"] == "exact McNemar" and 0 <= paired["p_value"] <= 1
    lines = shown.output.splitlines()
    seed_at = lines.index(next(x for x in lines if x.startswith("seed prompt:")))
    assert lines[seed_at + 2].startswith("  held-out ") and lines[seed_at + 3].startswith("  test ")
    assert lines[seed_at + 4].startswith(f"improvement on held-out: {paired['difference']:+.3f} (exact McNemar p=")
    assert lines[seed_at + 5].startswith("improvement on test: ")


def test_a_run_that_holds_nothing_out_says_its_dev_score_chose_it(tiny_dir, small_task_dir, tmp_path):
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["run", "--model", tiny_dir, "--task", small_task_dir, "--strategy", "templates",
                                  "--max-evals", "100", "--selection", "dev", "--out", str(out), "--json"],
                           catch_exceptions=False)
    s = json.loads(r.stdout)
    assert s["estimate"]["which"] == "dev" and "holdout" not in s["best"]
    text = CliRunner().invoke(main, ["show", str(out)]).output
    assert "(chose it: biased upward; no rows held out)" in text and "held-out" not in text


def test_a_run_from_before_selection_resumes_on_dev_alone():
    config = {k: v for k, v in runner.make_config(task="sst2-mini").items() if k != "selection"}
    assert {**runner.make_config(), **runner.LEGACY, **config}["selection"] == "dev"


def test_demonstrations_draw_from_every_labelled_row_but_never_the_one_scored(monkeypatch):
    from promptsearch.scoring import demos

    task = selection.prepare(make_task(), "holdout-dev", 0)
    pool = {ex.key for ex in demos.pool(task)}
    assert pool == {ex.key for ex in task.train + task.dev} and not pool & {ex.key for ex in task.holdout}
    # similar: a choosing row gets its neighbours from the pool, never itself
    similar = Candidate(task.seed_prompt, demos="similar:4")
    for ex, prompt in zip(task.dev, demos.Demonstrations().prompts(task, similar, list(task.dev))):
        shown = prompt.rsplit("\n\n", 1)[0]
        assert prompt.endswith(task.seed_prompt) and shown.count("Review: ") == 4 and f"Review: {ex.input}\n" not in shown
    # balanced: the choosing rows it draws leave that prompt's score (cross-fitting)
    rule = Candidate(task.seed_prompt, demos="balanced:4")
    drawn = {ex.key for ex in demos.balanced(demos.pool(task), task, 4, 0)}
    flags = selection.Shown(task).rows(rule, list(task.dev))
    assert drawn & {ex.key for ex in task.dev} and [ex.key in drawn for ex in task.dev] == flags
    assert len(selection.kept(task, rule, list(task.dev))) == len(task.dev) - sum(flags)
    # an artifact stores the pool: the pool of the stored rows is itself, with nothing else to draw from
    stored = demos.with_pool(replace(task, dev=make_task().test), demos.pool_rows(task))
    assert [ex.key for ex in demos.pool(stored)] == [ex.key for ex in demos.pool(task)] and not stored.demo_rows
    monkeypatch.setattr(selection, "DEMOS_FROM_DEV", False)  # the old rule: train rows only
    old = selection.prepare(make_task(), "holdout-dev", 0)
    assert {ex.key for ex in demos.pool(old)} == {ex.key for ex in old.train}


def test_auto_lets_train_rows_score_when_a_dozen_rows_would_be_left_to_choose():
    """Instruction-induction sized (16 train, 16 dev): the held-out slice leaves fewer than FEW_CHOOSING dev rows,
    so train rows score too (cross-fitted); with 32 dev rows dev alone still chooses."""
    small = selection.prepare(make_task(n_train=16, n_dev=16), "auto", seed=0)
    assert small.selection == "holdout" and len(small.holdout) == 8
    assert len(small.dev) > 16 and {ex.key for ex in small.dev} & {ex.key for ex in small.train}
    assert selection.prepare(make_task(n_train=16, n_dev=16), "holdout-dev", seed=0).selection == "holdout-dev"  # asked
    assert selection.prepare(make_task(), "auto", seed=0).selection == "holdout-dev"


def test_auto_lets_train_rows_score_when_too_few_rows_to_hold_any_out():
    """Under 32 labelled rows nothing is held out; where fewer than FEW_CHOOSING dev rows would choose, train rows
    score too (cross-fitted) rather than sitting idle while a handful of dev rows choose."""
    tiny = selection.prepare(make_task(n_train=10, n_dev=4), "auto", seed=0)
    assert tiny.selection == "labelled" and not tiny.holdout
    assert len(tiny.dev) == 4 + 8 and set(ex.key for ex in tiny.dev) >= {ex.key for ex in make_task(n_train=10, n_dev=4).dev}
    assert selection.prepare(make_task(n_train=0, n_dev=6), "auto", seed=0).selection == "dev"  # no train rows
    assert selection.prepare(make_task(n_train=4, n_dev=20), "auto", seed=0).selection == "dev"  # 20 rows choose
