"""The contract every registered strategy keeps, checked on each (tiny model, a small slice of sst2-mini):
at most ``n`` proposals per ``propose`` call, and randomness only from the context's rng (the same seed
gives the same proposals, in the same order; another seed may differ)."""

import pytest

from promptsearch.scoring import Scorer
from promptsearch.search import Budget, Racing, Search
from promptsearch.strategy import available, make
from promptsearch.task import load_task

from .conftest import sst2_slice

# Strategies that propose something in this setting (ape needs answers the tiny model does not write, ensemble
# several prompts raced on all of dev, refine ratings): for them the check is not vacuous.
PROPOSING = {"autoprompt", "clarify", "evolution", "soft-prompt", "templates"}
# Options that keep the gradient strategies to a few steps on the tiny model.
FAST = {"autoprompt": {"steps": 1}, "soft-prompt": {"epochs": 1, "n_virtual_tokens": 2}}


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return load_task(str(sst2_slice(tmp_path_factory.mktemp("contract"), train=24, dev=12, test=4)))


def proposals(name, task, tiny, seed: int, n: int, calls: int = 2) -> list[list[str]]:
    options = {k: v for k, v in FAST.get(name, {}).items() if k in _parameters(name)}
    strategy = make(name, options)
    search = Search(task, Scorer(tiny), [strategy], Budget(max_evals=2_000), seed=seed, racing=Racing(4, 3))
    search.tell([search.start_candidate()])
    ctx = search.context(0)
    strategy.start(ctx)
    out = []
    for _ in range(calls):
        got = strategy.propose(ctx, n) or []
        assert len(got) <= n, f"{name} proposed {len(got)} > {n}"
        out.append([c.id for c in got])
        if got:
            search.tell(got)  # what a run does between calls
    return out


def _parameters(name) -> set:
    import inspect

    return set(inspect.signature(available()[name].__init__).parameters)


@pytest.mark.parametrize("name", sorted(available()))
def test_strategy_proposes_at_most_n_and_only_from_the_contexts_rng(name, task, tiny):
    first = proposals(name, task, tiny, seed=3, n=3)
    again = proposals(name, task, tiny, seed=3, n=3)
    assert first == again
    assert any(first) == (name in PROPOSING)
