"""Integration tests on the real embedded SmolLM2-135M-Instruct (no mocks)."""

import json

import pytest
from click.testing import CliRunner

from promptsearch import runner
from promptsearch.candidate import Candidate
from promptsearch.cli import main
from promptsearch.metrics import summarize
from promptsearch.scoring import Scorer
from promptsearch.store import RunStore
from promptsearch.task import load_task

from .conftest import SHARED_DATA

pytestmark = pytest.mark.integration


def test_review_template_scores_sst2(smollm):
    task = load_task(f"{SHARED_DATA}/sst2")
    examples = task.test[:200]
    results = Scorer(smollm).evaluate(task, Candidate("Review: {input}\nSentiment:"), examples)
    score = summarize("accuracy", results, examples)
    assert score.score >= 0.75  # measured 0.84
    assert score.n == 200 and score.ci_low < score.score < score.ci_high


def test_gguf_cache_roundtrip(tmp_cache, smollm):
    import torch

    from promptsearch.models.local import FrozenModel

    cold = FrozenModel.load()  # dequantises into the empty temporary cache
    assert list(tmp_cache.glob("models/*/model.safetensors"))
    warm = FrozenModel.load()
    ids = torch.tensor([smollm.encode("Review: a gem of a film\nSentiment:")])
    with torch.no_grad():
        a, b, c = (m.model(ids).logits for m in (cold, warm, smollm))
    assert torch.equal(a, b) and torch.equal(b, c)
    assert not any(p.requires_grad for p in warm.model.parameters())


def test_generation_task_exact_match_and_demonstrations(smollm):
    task = load_task(f"{SHARED_DATA}/instruction_induction/singular_to_plural")
    scorer = Scorer(smollm)
    demos = "Write the plural form of the word.\nInput: cat\nOutput: cats\n\nInput: box\nOutput: boxes\n\nInput: city\nOutput: cities\n\n"
    zero = scorer.evaluate(task, Candidate(task.seed_prompt), task.test[:20])
    few = scorer.evaluate(task, Candidate(demos + "Input: {input}\nOutput:"), task.test[:20])
    assert sum(r.score for r in few) >= 15  # measured 19/20; zero-shot got 0/10
    assert sum(r.score for r in few) > sum(r.score for r in zero)
    assert all("\n" not in r.prediction for r in few + zero)


def test_run_templates_and_clarify_beats_seed(smollm, tmp_path):
    task = load_task("sst2-mini")
    # dev alone chooses (nothing held out): with a quarter held out, this run's winner on 73 dev rows ("{input} It
    # was", dev 0.781) scored 0.533 held out and 0.54 on test, under the seed's 0.55 -- the held-out estimate said so
    # 400 evaluations, the winner alone, and 8 and 16 nearest demonstrations only after 4 helped: the float32 suite
    # spent 6 to 12 minutes here at 1,200 with the final ensemble; 400 and 600 evaluations with the winner alone both
    # gave 0.84 against the seed's 0.55 on this task's test rows (float32, 2026-12-06)
    config = runner.make_config(task="sst2-mini", strategies=["templates", "clarify"], budget={"max_evals": 400, "max_seconds": None},
                                selection="dev", final_ensemble=1, options={"clarify": {"demo_ladder": True}})
    summary = runner.run(config, tmp_path / "run", parts=(task, smollm, Scorer(smollm)))
    assert summary["best"]["test"]["score"] > summary["seed"]["test"]["score"]
    assert summary["best"]["test"]["n"] == 200
    # the budget, the final check (top 3 on all of dev), and the winner's calibrated twin on dev with its bias rows
    assert summary["budget_used"]["evals"] <= 400 + 3 * 100 + (100 + 32)


def test_cli_show_tasks_strategies_on_a_real_run(smollm, tmp_path):
    task = load_task("sst2-mini")
    config = runner.make_config(task="sst2-mini", strategies=["templates"], budget={"max_evals": 200, "max_seconds": None},
                                final_ensemble=1)
    runner.run(config, tmp_path / "run", parts=(task, smollm, Scorer(smollm)))
    cli = CliRunner()
    shown = json.loads(cli.invoke(main, ["show", str(tmp_path / "run"), "--json"]).stdout)
    run_task = runner.load_task_of(runner.read_config(RunStore.open(tmp_path / "run")))  # selection.py: some held out
    assert shown["finished"] and shown["leaderboard"][0]["dev"]["n"] == len(run_task.dev) < 100
    text = cli.invoke(main, ["show", str(tmp_path / "run")]).output
    assert "best prompt:" in text and "test" in text


@pytest.mark.real_model
def test_cli_eval_on_the_embedded_model():
    r = CliRunner().invoke(main, ["eval", "--prompt", "Review: {input}\\nSentiment:", "--split", "test", "--limit", "40", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["n"] == 40 and out["score"] >= 0.6 and out["model"].startswith("embedded:")


def test_real_model_tests_run_on_the_hosts_threads(smollm):
    """Module fixtures of the tiny model set one thread (tests/conftest.py's `one_thread`); a real-model test after
    them must not inherit it. Every one did, and the suite ran its real model on one core of two (43 min in float32)."""
    import torch

    from .conftest import HOST_THREADS

    assert torch.get_num_threads() == HOST_THREADS
