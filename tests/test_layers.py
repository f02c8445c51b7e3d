"""The scorer's options as layers (calibration, demonstrations, ensembles) and the declared scorer protocol,
on the torch-free FakeModel: what each layer computes, caches and costs, and how the search charges it."""

import math
import subprocess
import sys

import pytest

from promptsearch.candidate import Candidate
from promptsearch.errors import PromptSearchError
from promptsearch.metrics import softmax
from promptsearch.scoring import Scorer, calibration, demos
from promptsearch.scoring.ensemble import make
from promptsearch.scoring.protocol import ScorerLike, WrappedScorer
from promptsearch.search import Budget, Racing, Search
from promptsearch.strategy import Strategy
from promptsearch.task import load_task
from promptsearch.testing import FakeModel

PROMPT = "Review: {input}\nSentiment:"


@pytest.fixture(scope="module")
def task():
    return load_task("sst2-mini")


def test_fake_model_scores_without_torch():
    code = ("import sys\nfrom promptsearch.testing import FakeModel\nfrom promptsearch.scoring import Scorer\n"
            "from promptsearch.task import load_task\nfrom promptsearch.candidate import Candidate\n"
            "t = load_task('sst2-mini')\nr = Scorer(FakeModel()).evaluate(t, Candidate('{input} positive or negative?'), t.dev[:8])\n"
            "print(len(r), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["8", "False"]


def test_fake_model_scripts_loglikelihoods_and_generations():
    model = FakeModel(loglik=lambda c, k: -len(k), answer=lambda t: "Paris\nmore")
    assert model.loglikelihoods(["a"], [[" x", " xyz"]]) == [[-2, -4]]
    assert Scorer(model).complete(["capital?"], 4) == ["Paris"]
    assert model.calls == {"loglikelihoods": 1, "generate": 1}


def test_contextual_calibration_is_the_plain_twin_corrected_by_cached_bias_rows(task):
    model = FakeModel()
    scorer = Scorer(model)
    cand = Candidate(PROMPT, calibrate="contextual")
    got = scorer.evaluate(task, cand, task.dev[:6])
    words = task.label_words
    plain = scorer.evaluate(task, Candidate(PROMPT), task.dev[:6])  # the twin: already cached
    cf = [softmax([model._loglik(scorer.render(PROMPT, t), " " + w) for w in words]) for t in calibration.CONTENT_FREE]
    bias = [math.log(sum(p[j] for p in cf) / len(cf)) for j in range(len(words))]
    for r, p in zip(got, plain):
        assert list(r.label_logprobs) == pytest.approx(calibration.correct(list(p.label_logprobs), bias, "contextual"))
    assert scorer.stats["examples_scored"] == 6 and scorer.stats["cache_hits"] == 6
    scorer.evaluate(task, cand, task.dev[6:10])
    assert scorer.stats["calibration_rows"] == 3  # the bias rows ran once, kept by the layer
    assert len(scorer.calibration.biases) == 1
    scorer.clear_cache()
    assert not scorer.calibration.biases and not scorer.cache


def test_scorer_declares_each_options_cost(task):
    scorer = Scorer(FakeModel())
    a, b, c = Candidate(PROMPT), Candidate("{input} It was"), Candidate("Text: {input}\nLabel:")
    assert scorer.cost(a) == 1 and scorer.cost(make([a, b, c])) == 3
    assert scorer.once_costs(a) == {}
    assert list(scorer.once_costs(Candidate(PROMPT, calibrate="contextual")).values()) == [3]
    assert list(scorer.once_costs(Candidate(PROMPT, calibrate="domain")).values()) == [1]
    # another verbalizer is another bias key
    assert scorer.once_costs(Candidate(PROMPT, calibrate="domain")) != scorer.once_costs(
        Candidate(PROMPT, ("bad", "good"), calibrate="domain"))


class ListStrategy(Strategy):
    name = "list"
    description = "proposes a fixed list"

    def __init__(self, candidates):
        self.candidates = list(candidates)

    def propose(self, context, n):
        out, self.candidates = self.candidates[:n], self.candidates[n:]
        return out


def test_search_charges_what_the_scorer_declares(task):
    calibrated = [Candidate(PROMPT, calibrate="contextual"), Candidate(PROMPT, calibrate="domain")]
    ens = make([Candidate("{input} It was"), Candidate("Text: {input}\nLabel:")])
    search = Search(task, Scorer(FakeModel()), [ListStrategy(calibrated + [ens])], Budget(max_evals=100_000),
                    racing=Racing(16, 3))
    search.run()
    assert search.charged == 3 + 1  # each calibration's bias rows, once
    assert search.per_example[ens.id] == 2
    assert search.evals_used == sum(n * search.per_example.get(cid, 1) for cid, n in search.scored.items()) + 4


def test_demonstration_caches_belong_to_each_scorer(task):
    assert not [name for name, value in vars(demos).items() if isinstance(value, dict) and not name.startswith("__")]
    one, two = Scorer(FakeModel()), Scorer(FakeModel())
    cand = Candidate(PROMPT, demos="similar:2")
    one.evaluate(task, cand, task.dev[:3])
    assert len(one.demos.retrievers) == 1 and not two.demos.retrievers
    assert one.demos.prompts(task, cand, task.dev[:2]) == demos.Demonstrations().prompts(task, cand, task.dev[:2])


def test_a_served_like_model_refuses_soft_prompts_and_chat_loglikelihoods(task):
    with pytest.raises(PromptSearchError, match="soft prompts need"):
        Scorer(FakeModel()).register_soft_prompt("s", object())
    with pytest.raises(PromptSearchError, match="generation tasks only"):
        Scorer(FakeModel(), chat=True).evaluate(task, Candidate(PROMPT), task.dev[:2])


def test_wrappers_implement_the_declared_protocol(task):
    from promptsearch.feedback.blend import BlendedScorer
    from promptsearch.feedback.predictor import RatingModel
    from promptsearch.multitask import MultiScorer
    from promptsearch.scoring.executors import ChunkedScorer, InProcess

    inner = Scorer(FakeModel())
    wrappers = [ChunkedScorer(inner, InProcess(inner)), MultiScorer(inner, None),
                BlendedScorer(inner, RatingModel(), 0.5, [])]
    assert isinstance(inner, ScorerLike)
    for w in wrappers:
        assert isinstance(w, WrappedScorer) and isinstance(w, ScorerLike)
        assert "__getattr__" not in vars(type(w))
        assert w.model is inner.model and w.cost(make([Candidate(PROMPT), Candidate("{input} It was")])) == 2
        with pytest.raises(AttributeError):
            w.no_such_thing  # noqa: B018 - nothing outside the protocol is forwarded
    chunked = wrappers[0]
    assert chunked.evaluate(task, Candidate(PROMPT), task.dev[:5]) == inner.evaluate(task, Candidate(PROMPT), task.dev[:5])


def test_a_demonstrations_rule_is_cached_per_pool(task):
    """One scorer, one candidate, two tasks that differ only in their train rows: a rule's demonstrations come from
    each task's own pool, so the second task is scored, not served the first one's cached results."""
    from dataclasses import replace

    # the model answers with the label its demonstrations show most ("positive" when in doubt)
    model = FakeModel(loglik=lambda c, k: -1.0 + 0.1 * c.count("Sentiment:" + k) - 0.05 * (k.strip() == "negative"))
    negative = [ex for ex in task.train if ex.label == 0]
    positive = [ex for ex in task.train if ex.label == 1]
    scorer, rule = Scorer(model), Candidate(PROMPT, demos="balanced:2")
    rows = list(task.dev[:6])
    only_neg = [r.prediction for r in scorer.evaluate(replace(task, train=tuple(negative)), rule, rows)]
    only_pos = [r.prediction for r in scorer.evaluate(replace(task, train=tuple(positive)), rule, rows)]
    assert set(only_neg) == {"negative"} and set(only_pos) == {"positive"}
    calibrated = Candidate(PROMPT, demos="balanced:2", calibrate="contextual")  # its bias rows show the pool too
    biases = [scorer.calibration.label_bias(scorer, replace(task, train=tuple(t)), calibrated) for t in (negative, positive)]
    assert biases[0] != biases[1]
