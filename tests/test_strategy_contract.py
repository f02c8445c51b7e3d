"""The contract every registered strategy keeps, checked on each (tiny model, a small slice of sst2-mini):
at most ``n`` proposals per ``propose`` call, randomness only from the context's rng (the same seed
gives the same proposals, in the same order; another seed may differ), and a killed run that resumes ends
exactly where the uninterrupted one did."""

import pytest

from promptsearch import runner
from promptsearch.scoring import Scorer
from promptsearch.search import Budget, Racing, Search
from promptsearch.strategy import available, make
from promptsearch.task import load_task

from .conftest import cut_run, sst2_slice

# Strategies that propose something in this setting (ape needs answers the tiny model does not write, ensemble
# several prompts raced on all of dev, refine ratings): for them the check is not vacuous.
PROPOSING = {"autoprompt", "clarify", "evolution", "soft-prompt", "templates"}
# Options that keep the gradient strategies to a few steps on the tiny model.
FAST = {"autoprompt": {"steps": 1}, "soft-prompt": {"epochs": 1, "n_virtual_tokens": 2}}


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    return str(sst2_slice(tmp_path_factory.mktemp("contract"), train=24, dev=12, test=4))


@pytest.fixture(scope="module")
def task(task_dir):
    return load_task(task_dir)


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


@pytest.mark.parametrize("name", sorted(PROPOSING))
def test_a_killed_run_resumes_to_the_same_end(name, task_dir, tiny, tmp_path):
    """Half the log kept (as a kill leaves it), the run resumed: same best, same leaderboard."""
    options = {k: v for k, v in FAST.get(name, {}).items() if k in _parameters(name)}
    config = runner.make_config(task=task_dir, strategies=[name], options={name: options} if options else {},
                                budget={"max_evals": 160, "max_seconds": None}, racing={"min_examples": 4, "eta": 3})
    full = runner.run(config, tmp_path / "full", parts=(load_task(task_dir), tiny, Scorer(tiny)))
    cut = cut_run(tmp_path / "full", tmp_path / "cut")
    resumed = runner.run(config, cut, resume=True, parts=(load_task(task_dir), tiny, Scorer(tiny)))
    assert len(full["leaderboard"]) > 1  # a search happened: not only the seed
    assert resumed["best"]["id"] == full["best"]["id"]
    assert [r["id"] for r in resumed["leaderboard"]] == [r["id"] for r in full["leaderboard"]]
