import json
import math

import pytest

from promptsearch import runner
from promptsearch.candidate import Candidate
from promptsearch.scoring import Scorer
from promptsearch.search import Budget, Racing, Search
from promptsearch.strategy import Strategy, make
from promptsearch.task import load_task


class ListStrategy(Strategy):
    name = "list"
    description = "proposes a fixed list"

    def __init__(self, prompts=()):
        self.prompts = list(prompts)

    def propose(self, context, n):
        out, self.prompts = self.prompts[:n], self.prompts[n:]
        return [Candidate(p, strategy=self.name) for p in out]


PROMPTS = ["Review: {input}\nSentiment:", "{input} It was", "Text: {input}\nLabel:", "{input}\nAnswer:",
           "Input: {input}\nLabel:", "Sentence: {input}\nCategory:", "{input} All in all, it was", "Review: {input}\nSentiment:"]


@pytest.fixture(scope="module")
def task():
    return load_task("sst2-mini")


def test_racing_rungs():
    assert Racing(16, 3).rungs(100) == [16, 48, 100]
    assert Racing(16, 3).rungs(10) == [10]
    assert Racing(10**9, 3).rungs(100) == [100]


def test_search_dedupes_races_and_reports(tiny, task):
    scorer = Scorer(tiny)
    search = Search(task, scorer, [ListStrategy(PROMPTS)], Budget(max_evals=100_000), racing=Racing(16, 3))
    summary = search.run()
    assert len(search.trials) == 8  # seed + 7 distinct prompts (one duplicate dropped)
    assert scorer.stats["examples_scored"] <= search.evals_used + len(task.test) * 2
    sizes = sorted(t.rung for t in search.trials.values())
    assert sizes[0] == 16 and sizes[-1] == 100  # losers stop early, the top reach all of dev
    assert search.evals_used < 8 * 100
    assert summary["best"]["dev"]["n"] == 100 and summary["best"]["test"]["n"] == 200
    assert summary["best"]["dev"]["score"] >= summary["seed"]["dev"]["score"]
    assert [r["rank"] for r in summary["leaderboard"]] == list(range(1, len(summary["leaderboard"]) + 1))


def test_budget_stops_cleanly(tiny, task):
    search = Search(task, Scorer(tiny), [ListStrategy(PROMPTS)], Budget(max_candidates=3))
    search.run()
    assert len(search.trials) == 3
    search = Search(task, Scorer(tiny), [ListStrategy(PROMPTS)], Budget(max_evals=150))
    search.run()
    assert search.evals_used - 100 * 0 <= 150 + 100  # at most one rung past the limit, plus the final check


class EndlessStrategy(Strategy):
    name = "endless"
    description = "proposes a new prompt every time"

    def __init__(self):
        self.made = 0

    def propose(self, context, n):
        self.made += n
        return [Candidate(f"Review {i}: {{input}}\nSentiment:", strategy=self.name) for i in range(self.made - n, self.made)]


def test_the_progress_bar_ends_at_the_time_limit_where_it_binds(tiny, task):
    """The bar's total was --max-evals alone: a run that its time limit ended showed a small share of 6,000
    evaluations and an ETA of many minutes. Now the bar ends where the seconds left, at the pace so far, take it."""
    search = Search(task, Scorer(tiny), [EndlessStrategy()], Budget(max_evals=1_000_000, max_seconds=4), progress=True)
    summary = search.run()
    assert summary["stop_reason"] in ("time", "final_reserve")
    bar = search._bar
    assert bar.n <= bar.total < 1_000_000 / 10 and bar.total <= 2 * bar.n + 200, (bar.n, bar.total)


def test_same_seed_same_result(tiny, task):
    a = Search(task, Scorer(tiny), [make("templates")], Budget(max_evals=800), seed=3).run()
    b = Search(task, Scorer(tiny), [make("templates")], Budget(max_evals=800), seed=3).run()
    assert a["leaderboard"] == b["leaderboard"]


def test_run_store_and_resume_rescoring_nothing(tiny, task, tmp_path):
    config = runner.make_config(task="sst2-mini", strategies=["templates", "clarify"], budget={"max_evals": 1500, "max_seconds": None})
    parts = (task, tiny, Scorer(tiny))
    full = runner.run(config, tmp_path / "a", parts=parts)
    # a run cut short: keep the first half of its log, then resume with a cold scorer
    lines = (tmp_path / "a" / "candidates.jsonl").read_text().splitlines()
    cut = tmp_path / "b"
    cut.mkdir()
    (cut / "config.json").write_text((tmp_path / "a" / "config.json").read_text())
    (cut / "candidates.jsonl").write_text("\n".join(lines[: len(lines) // 2]) + "\n" + lines[len(lines) // 2][:20])
    scorer = Scorer(tiny)
    resumed = runner.run(None, cut, resume=True, parts=(task, tiny, scorer))
    assert resumed["leaderboard"] == full["leaderboard"]
    assert resumed["best"] == full["best"]
    logged = sum(len(json.loads(line)["results"]) for line in lines[: len(lines) // 2])
    # the resumed run scored only what the first half had not
    assert scorer.stats["cache_hits"] >= logged
    assert len((cut / "candidates.jsonl").read_text().splitlines()) == len(lines)


def test_unknown_strategy_and_option_are_clear_errors():
    from promptsearch.errors import PromptSearchError

    with pytest.raises(PromptSearchError, match="unknown strategy"):
        make("nope")
    with pytest.raises(PromptSearchError, match="has no option 'bogus'"):
        make("templates", {"bogus": 1})


class FakeClock:
    """A clock that advances a fixed time per example the scorer computes: time budgets tested exactly."""

    def __init__(self, scorer, seconds_per_example: float):
        self.now, self.scorer, self.rate = 0.0, scorer, seconds_per_example

    def __call__(self):
        return self.now + self.scorer.stats["examples_scored"] * self.rate


def test_token_budget_counts_the_scored_texts_and_stops(tiny, task):
    from promptsearch.template import render

    unlimited = Search(task, Scorer(tiny), [ListStrategy(PROMPTS)], Budget(max_evals=100_000), racing=Racing(16, 3))
    unlimited.run()
    # by hand: every scored (candidate, dev example) pair's rendered text, counted by the model's tokenizer
    order = unlimited.dev_order
    by_hand = sum(tiny.count_tokens(render(t.candidate.prompt, ex.input))
                  for t in unlimited.trials.values() for ex in order[:unlimited.scored[t.candidate.id]])
    # and the final check's test texts of the best and the seed prompt (sent too, so counted since issue 31)
    finals = [unlimited.leaderboard()[0].candidate.prompt, task.seed_prompt]
    by_hand += sum(tiny.count_tokens(render(p, ex.input)) for p in finals for ex in task.test)
    assert unlimited.tokens_used == by_hand > 0
    # what every run spends whatever its limit (the seed on all of dev, best and seed on test), then a limit between
    minimum = Search(task, Scorer(tiny), [ListStrategy(PROMPTS)], Budget(max_tokens=1), racing=Racing(16, 3))
    minimum.run()
    assert len(minimum.trials) == 1
    limit = (minimum.tokens_used + unlimited.tokens_used) // 2
    capped = Search(task, Scorer(tiny), [ListStrategy(PROMPTS)], Budget(max_tokens=limit), racing=Racing(16, 3))
    summary = capped.run()
    assert len(capped.trials) < len(unlimited.trials)  # stopped by the token limit, nothing else
    assert summary["budget"]["max_tokens"] == limit and summary["budget_used"]["tokens"] == capped.tokens_used
    # the final check's share is kept back, so the limit holds for the whole run as max_evals does: checked before each
    # rung, it is passed by at most the rung being scored (one prompt on all of dev)
    rung = max(sum(tiny.count_tokens(render(p, ex.input)) for ex in task.dev) for p in [task.seed_prompt, *PROMPTS])
    assert capped.tokens_used <= limit + rung


def test_time_budget_holds_within_a_rung_and_counts_the_final_check(tiny, task, monkeypatch):
    from promptsearch.search import loop as search_module  # the loop reads the clock

    scorer = Scorer(tiny, batch_size=4)  # chunks of 16 examples
    clock = FakeClock(scorer, 0.01)
    monkeypatch.setattr(search_module.time, "monotonic", clock)
    # No racing: every candidate is scored on all 100 dev examples in one rung, so only the chunked
    # check can stop in the middle of a rung. 300 test evals + 3 x 100 dev at the end are reserved.
    search = Search(task, scorer, [ListStrategy(PROMPTS * 3)], Budget(max_seconds=10.0), racing=Racing(10**9, 3))
    summary = search.run()
    total = clock()
    assert total <= 10.0 + 16 * 0.01 + 1e-9  # ends within one chunk of the limit, final check included
    assert total >= 10.0 - 100 * 0.01  # and does not stop a whole rung early
    assert summary["best"]["test"]["n"] == 200 and summary["seed"]["test"]["n"] == 200
    logged_sizes = {t.rung for t in search.trials.values()}
    assert logged_sizes == {100}  # a rung cut by the clock is dropped, never kept half-scored


def test_the_context_tells_strategies_the_seconds_left_and_a_row_s_measured_seconds(tiny, task, monkeypatch):
    from promptsearch.search import loop as search_module

    scorer = Scorer(tiny, batch_size=4)
    clock = FakeClock(scorer, 0.01)  # 0.01 s per example scored
    monkeypatch.setattr(search_module.time, "monotonic", clock)
    unlimited = Search(task, scorer, [], Budget(max_evals=10_000))
    assert unlimited.context(0).seconds_left() == math.inf
    search = Search(task, scorer, [], Budget(max_seconds=100.0), racing=Racing(10**9, 3))
    (trial,) = search.tell([Candidate(PROMPTS[0])])
    ctx = search.context(0)
    assert ctx.row_seconds(trial.candidate) == pytest.approx(0.01)
    assert ctx.row_seconds(Candidate(PROMPTS[1])) == 0.0  # not scored: nothing measured
    assert ctx.seconds_left() == pytest.approx(search.limits[2] - search.seconds)
    assert 0 < ctx.seconds_left() < 100.0


def test_a_resumed_run_keeps_the_measured_seconds_of_a_row(tiny, task, monkeypatch, tmp_path):
    from promptsearch.search import loop as search_module
    from promptsearch.store import RunStore

    # the first run scores at 0.01 s per example; its log says so
    scorer = Scorer(tiny, batch_size=4)
    monkeypatch.setattr(search_module.time, "monotonic", FakeClock(scorer, 0.01))
    first = Search(task, scorer, [], Budget(max_seconds=100.0), racing=Racing(10**9, 3),
                   store=RunStore.create(tmp_path / "run", {}))
    (trial,) = first.tell([Candidate(PROMPTS[0])])
    assert first.measured_row_seconds(trial.candidate) == pytest.approx(0.01)
    # resumed with a warm cache the rung costs nothing to replay; a row still costs what was measured
    scorer = Scorer(tiny, batch_size=4)
    monkeypatch.setattr(search_module.time, "monotonic", FakeClock(scorer, 0.01))
    resumed = Search(task, scorer, [], Budget(max_seconds=100.0), racing=Racing(10**9, 3),
                     store=RunStore.open(tmp_path / "run"))
    resumed.resume_from_log()
    resumed.tell([Candidate(PROMPTS[0])])
    assert scorer.stats["examples_scored"] == 0  # replayed from the log
    assert resumed.measured_row_seconds(Candidate(PROMPTS[0])) == pytest.approx(0.01)
    # a damaged field in the log is not trusted: that rung is timed afresh (here: the cache's zero seconds)
    log = tmp_path / "run" / "candidates.jsonl"
    log.write_text(log.read_text().replace('"row_seconds": [', '"row_seconds": ["x", '))
    damaged = Search(task, scorer, [], Budget(max_seconds=100.0), racing=Racing(10**9, 3),
                     store=RunStore.open(tmp_path / "run"))
    damaged.resume_from_log()
    damaged.tell([Candidate(PROMPTS[0])])
    assert damaged.measured_row_seconds(Candidate(PROMPTS[0])) == 0.0


def test_ask_tell_by_hand_honours_the_budget(tiny, task):
    search = Search(task, Scorer(tiny), [], Budget(max_candidates=2))
    trials = search.tell([Candidate(p) for p in PROMPTS[:5]])
    assert len(trials) == 2 and search.exhausted()
