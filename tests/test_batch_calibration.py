"""Batch calibration (calibration.py, ``calibrate="batch"``) on the tiny random model: the corrected scores against
a hand computation over the pool's first inputs, its cost, its use with demonstrations rules, and where it is
refused."""

import math

import pytest

from promptsearch.candidate import Candidate
from promptsearch.errors import PromptSearchError
from promptsearch.scoring import Scorer, calibration, continuation, demos
from promptsearch.search import Budget, Search
from promptsearch.task import Example, Task, load_task
from promptsearch.testing import naive_loglik

PROMPT = "Review: {input}\nSentiment:"


@pytest.fixture(scope="module")
def sst2():
    return load_task("sst2-mini")


def _softmax(xs):
    e = [math.exp(x - max(xs)) for x in xs]
    return [v / sum(e) for v in e]


def _probs(model, prompt, text, words):
    context = prompt.replace("{input}", text)
    return _softmax([naive_loglik(model, context, continuation(context, w)) for w in words])


def test_batch_calibration_divides_by_the_mean_distribution_over_the_pools_first_inputs(tiny, sst2, monkeypatch):
    monkeypatch.setattr(calibration, "BATCH_ROWS", 6)
    words = sst2.label_words
    rows = demos.pool(sst2)[:6]
    assert len(demos.pool(sst2)) > 6  # the cap binds: only the first six inputs count
    bias = [sum(p[j] for p in (_probs(tiny, PROMPT, ex.input, words) for ex in rows)) / 6 for j in range(len(words))]
    assert max(bias) - min(bias) > 1e-3  # the tiny model has a label bias to correct
    examples = sst2.dev[:5]
    results = Scorer(tiny).evaluate(sst2, Candidate(PROMPT, calibrate="batch"), examples)
    for ex, r in zip(examples, results):
        q = [p / b for p, b in zip(_probs(tiny, PROMPT, ex.input, words), bias)]
        q = [v / sum(q) for v in q]
        assert r.label_logprobs == pytest.approx([math.log(v) for v in q], abs=1e-4)
        best = max(range(len(q)), key=q.__getitem__)
        assert r.prediction == words[best] and r.score == float(best == ex.label)
    # another train split, another bias: the cache keys carry the pool
    rest = tuple(ex for ex in sst2.train if ex.key not in {r.key for r in rows})
    other = Task(sst2.name, sst2.kind, rest, sst2.dev, sst2.test, sst2.metric, sst2.seed_prompt, words)
    scorer = Scorer(tiny)
    a = scorer.evaluate(sst2, Candidate(PROMPT, calibrate="batch"), examples)
    b = scorer.evaluate(other, Candidate(PROMPT, calibrate="batch"), examples)
    assert [x.label_logprobs for x in a] != [x.label_logprobs for x in b]


def test_batch_bias_rows_are_read_once_and_charged_once(tiny, sst2, monkeypatch):
    monkeypatch.setattr(calibration, "BATCH_ROWS", 5)
    scorer = Scorer(tiny)
    cand = Candidate(PROMPT, calibrate="batch")
    scorer.evaluate(sst2, cand, sst2.dev[:3])
    scorer.evaluate(sst2, cand, sst2.dev[:6])
    assert scorer.stats["calibration_rows"] == 5
    search = Search(sst2, Scorer(tiny), [], Budget(max_evals=10_000))
    search.tell([Candidate(PROMPT), cand])
    assert search.charged == 5
    assert search.evals_used == sum(search.scored.values()) + 5


def test_batch_calibration_takes_a_similar_rule_showing_each_pool_row_its_neighbours(tiny, sst2, monkeypatch):
    monkeypatch.setattr(calibration, "BATCH_ROWS", 4)
    words = sst2.label_words
    cand = Candidate(PROMPT, calibrate="batch", demos="similar:2")
    scorer = Scorer(tiny)
    rows = [Example(ex.input, "") for ex in demos.pool(sst2)[:4]]
    prompts = scorer.demos.prompts(sst2, cand, rows)
    for row, prompt in zip(rows, prompts):  # never a row's own input among its demonstrations
        assert prompt.count(row.input) == 0
    bias = [sum(p[j] for p in (_probs(tiny, pr, r.input, words) for pr, r in zip(prompts, rows))) / 4 for j in range(2)]
    ex = sst2.dev[0]
    shown = scorer.demos.prompts(sst2, cand, [ex])[0]
    q = [p / b for p, b in zip(_probs(tiny, shown, ex.input, words), bias)]
    got = scorer.evaluate(sst2, cand, [ex])[0]
    assert got.label_logprobs == pytest.approx([math.log(v / sum(q)) for v in q], abs=1e-4)


def test_batch_calibration_is_refused_without_inputs_to_average_and_on_generation(tiny, sst2):
    bare = Task("bare", "classification", (), sst2.dev, sst2.test, "accuracy", PROMPT, sst2.label_words)
    with pytest.raises(PromptSearchError, match="calibrate=batch: task bare has no train rows"):
        Scorer(tiny).evaluate(bare, Candidate(PROMPT, calibrate="batch"), sst2.dev[:2])
    rows = (Example("hot", "cold"), Example("up", "down"))
    gen = Task("antonyms", "generation", rows, rows, rows, "exact_match", "{input} ->")
    with pytest.raises(PromptSearchError, match="task antonyms is generation"):
        Scorer(tiny).evaluate(gen, Candidate(gen.seed_prompt, calibrate="batch"), gen.dev)
