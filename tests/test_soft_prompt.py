import json
import math
import random
import shutil
import warnings

import pytest
import torch
from promptsearch.strategies.soft_prompt import EVALS_PER_TRAIN_EXAMPLE, SoftPromptTuning, load_trained, nearest_tokens

from promptsearch import runner
from promptsearch.candidate import Candidate
from promptsearch.errors import PromptSearchError
from promptsearch.scoring import Scorer
from promptsearch.scoring.calibration import BATCH_ROWS
from promptsearch.strategy import SearchContext, make
from promptsearch.task import Example, Task, load_task

PROMPT = "Review: {input}\nSentiment:"


@pytest.fixture(scope="module")
def task():
    full = load_task("sst2-mini")
    # small splits keep the tiny-model tests fast
    return Task(full.name, full.kind, full.train[:24], full.dev[:16], full.test[:20], full.metric, PROMPT,
                full.label_words, full.description)


def _ctx(task, scorer, charges=None, remaining=math.inf, artifacts=None):
    charges = [] if charges is None else charges
    return SearchContext(task=task, scorer=scorer, rng=random.Random(0), leaderboard=list,
                         charge=charges.append, remaining_evals=lambda: remaining - sum(charges), artifacts=artifacts)


def _state(model):
    return {k: v.detach().clone() for k, v in model.model.state_dict().items()}


def test_training_changes_only_the_prompt_and_lowers_train_loss(task):
    from promptsearch.testing import tiny_model

    tiny = tiny_model()
    scorer = Scorer(tiny)
    hard = Candidate("Text: {input}\nLabel:")
    before_results = scorer.evaluate(task, hard, task.dev)
    before = _state(tiny)
    strategy = SoftPromptTuning(n_virtual_tokens=4, init="vocab", lr=0.1, epochs=4, batch_size=8, patience=100)
    ctx = _ctx(task, scorer)
    base = Candidate(PROMPT)
    init = strategy.initial_embeddings(_ctx(task, scorer), torch.Generator().manual_seed(ctx.rng.getrandbits(63)))
    result = strategy.train(ctx, base, list(task.dev))

    after = _state(tiny)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # base weights bit-identical
    assert all(not p.requires_grad and p.grad is None for p in tiny.model.parameters())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in tiny.model.modules())  # no PEFT leftovers
    assert not tiny.model.training
    # only the prompt changed: it moved away from its initialisation
    assert result.embeddings.shape == (4, tiny.model.config.hidden_size)
    assert not torch.allclose(result.embeddings, init)
    # training lowered the train loss (patience is large, so the best-on-dev vectors are trained ones)
    assert strategy.train_loss(ctx, base, result.embeddings) < strategy.train_loss(ctx, base, init) - 1e-3
    # a hard prompt scores bit-identically after training, on a cold cache
    scorer.clear_cache()
    assert scorer.evaluate(task, hard, task.dev) == before_results
    assert "soft-prompt-training" not in " ".join(tiny.soft_prompts)  # the probe is gone


def test_training_loss_reads_the_scorers_label_loglikelihoods(tiny, task):
    scorer = Scorer(tiny)
    strategy = SoftPromptTuning(n_virtual_tokens=3)
    torch.manual_seed(0)
    soft = torch.randn(3, tiny.model.config.hidden_size) * 0.05
    scorer.register_soft_prompt("s", soft)
    examples = task.train[:8]
    results = scorer.evaluate(task, Candidate(PROMPT, soft="s"), examples)
    expected = sum(-r.label_logprobs[ex.label] + math.log(sum(math.exp(v) for v in r.label_logprobs))
                   for r, ex in zip(results, examples)) / len(examples)
    assert strategy.train_loss(_ctx(task, scorer), Candidate(PROMPT), soft, examples) == pytest.approx(expected, abs=1e-4)


def test_multi_token_label_words_and_generation_losses(tiny, task):
    scorer = Scorer(tiny)
    strategy = SoftPromptTuning(n_virtual_tokens=2)
    soft = torch.zeros(2, tiny.model.config.hidden_size)
    scorer.register_soft_prompt("z", soft)
    words = ("very bad", "good")
    cand = Candidate(PROMPT, words, soft="z")
    results = scorer.evaluate(task, cand, task.train[:4])
    expected = sum(-r.label_logprobs[ex.label] + math.log(sum(math.exp(v) for v in r.label_logprobs))
                   for r, ex in zip(results, task.train[:4])) / 4
    got = strategy.train_loss(_ctx(task, scorer), Candidate(PROMPT, words), soft, task.train[:4])
    assert got == pytest.approx(expected, abs=1e-4)

    gen = Task("gen", "generation", (Example("great movie", "good"), Example("awful plot", "very bad")),
               (Example("fun", "good"),), (Example("dull", "bad"),), "loglik", "Input: {input}\nOutput:")
    results = scorer.evaluate(gen, Candidate(gen.seed_prompt, soft="z"), gen.train)
    lengths = [len(tiny.encode(" " + ex.output)) for ex in gen.train]
    expected = sum(-r.logprob / n for r, n in zip(results, lengths)) / 2
    got = strategy.train_loss(_ctx(gen, scorer), Candidate(gen.seed_prompt), soft)
    assert got == pytest.approx(expected, abs=1e-4)


def test_compute_is_charged_and_the_budget_is_respected(tiny, task):
    scorer = Scorer(tiny)
    charges = []
    strategy = SoftPromptTuning(n_virtual_tokens=2, epochs=2, batch_size=8, patience=100)
    result = strategy.train(_ctx(task, scorer, charges), Candidate(PROMPT), list(task.dev))
    n_train, n_dev = len(task.train), len(task.dev)
    assert sum(charges) == result.record["evals_charged"] == 2 * EVALS_PER_TRAIN_EXAMPLE * n_train + 3 * n_dev
    assert result.record["steps"] == 6 and [h["step"] for h in result.record["history"]] == [0, 3, 6]
    # a small budget stops training early but leaves room (reserve) to score the result
    charges = []
    result = strategy.train(_ctx(task, scorer, charges, remaining=100), Candidate(PROMPT), list(task.dev), reserve=33)
    assert result.record["steps"] == 1 and sum(charges) <= 100 - 33


def test_nearest_tokens_projects_a_token_embedding_to_itself(tiny):
    ids = tiny.encode(" great movie")
    table = tiny.input_embeddings().weight.detach()
    near = nearest_tokens(tiny, table[ids] * 3.0)  # cosine ignores the scale
    assert near["nearest_ids"] == ids
    assert near["nearest_text"] == " great movie"
    assert all(c == pytest.approx(1.0, abs=1e-5) for c in near["nearest_cosine"])


def test_options_are_validated():
    with pytest.raises(PromptSearchError, match="init must be one of"):
        make("soft-prompt", {"init": "zeros"})
    with pytest.raises(PromptSearchError, match="option soft-prompt.n_virtual_tokens: 0 is out of range"):
        make("soft-prompt", {"n_virtual_tokens": 0})
    with pytest.raises(PromptSearchError, match="no {input} slot"):
        make("soft-prompt", {"template": "no slot"})
    assert make("soft-prompt", {"lr": 0.01, "init": "random"}).lr == 0.01


def test_search_scores_soft_and_text_candidates_saves_peft_and_resumes(task, tmp_path, monkeypatch):
    from peft import PeftModel

    from promptsearch.testing import tiny_model

    tiny = tiny_model()
    options = {"soft-prompt": {"n_virtual_tokens": 3, "epochs": 2, "init": "vocab"}}
    config = runner.make_config(task="sst2-mini", strategies=["soft-prompt"], options=options,
                                budget={"max_evals": 5000, "max_seconds": None}, racing={"min_examples": 8})
    full = runner.run(config, tmp_path / "a", parts=(task, tiny, Scorer(tiny)))
    board = full["leaderboard"]
    soft = [r for r in board if r["soft"] and r["strategy"] != "final"]  # "final": the winner's calibrated twin
    assert len(soft) == 1 and soft[0]["strategy"] == "soft-prompt" and soft[0]["prompt"] == PROMPT
    text = [r for r in board if r["strategy"] == "soft-prompt" and not r["soft"]]
    assert len(text) == 1 and text[0]["parents"] == [soft[0]["id"]] and text[0]["prompt"].endswith(PROMPT)
    assert full["budget_used"]["charged"] > 0

    folder = tmp_path / "a" / "artifacts" / f"soft-prompt-{soft[0]['soft']}"
    record = json.loads((folder / "training.json").read_text())
    assert record["nearest_text"] + PROMPT == text[0]["prompt"]
    # the strategy's own charge, and the bias rows of the winner's calibration after the search (final_calibration)
    assert full["best"]["strategy"] == "final"
    assert full["budget_used"]["charged"] == record["evals_charged"] + BATCH_ROWS * len(full["best"].get("members") or [1])
    # PEFT loads the saved prompt onto a (separate) copy of the base model
    other = tiny_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' deprecation note inside PEFT
        peft_model = PeftModel.from_pretrained(other.model, str(folder))
    loaded = peft_model.get_prompt(1)[0].detach()
    assert torch.equal(loaded, load_trained(folder).embeddings)

    # resume a run cut after its first record: the soft prompt is loaded, not retrained
    lines = (tmp_path / "a" / "candidates.jsonl").read_text().splitlines()
    cut = tmp_path / "b"
    cut.mkdir()
    (cut / "config.json").write_text((tmp_path / "a" / "config.json").read_text())
    (cut / "candidates.jsonl").write_text(lines[0] + "\n")
    (cut / "artifacts").mkdir()
    shutil.copytree(folder, cut / "artifacts" / folder.name)

    def no_training(*args, **kwargs):
        raise AssertionError("retrained on resume")

    monkeypatch.setattr(SoftPromptTuning, "train", no_training)
    resumed = runner.run(None, cut, resume=True, parts=(task, tiny, Scorer(tiny)))
    assert resumed["leaderboard"] == full["leaderboard"]
    assert resumed["budget_used"]["evals"] == full["budget_used"]["evals"]


def test_no_budget_left_proposes_nothing(tiny, task):
    scorer = Scorer(tiny)
    strategy = SoftPromptTuning()
    strategy.start(_ctx(task, scorer))
    assert strategy.propose(_ctx(task, scorer, remaining=10), 8) == []


@pytest.mark.integration
def test_soft_prompt_on_the_real_model_lands_on_the_leaderboard(smollm, tmp_path):
    task = load_task("sst2-mini")
    task = Task(task.name, task.kind, task.train[:16], task.dev[:16], task.test[:24], task.metric,
                "Review: {input}\nSentiment:", task.label_words, task.description)
    options = {"soft-prompt": {"n_virtual_tokens": 4, "epochs": 1, "batch_size": 8, "dev_examples": 8}}
    config = runner.make_config(task="sst2-mini", strategies=["soft-prompt"], options=options,
                                budget={"max_evals": 2000, "max_seconds": None}, racing={"min_examples": 16},
                                selection="dev")  # all 16 train rows train it, as the counts below say
    summary = runner.run(config, tmp_path / "run", parts=(task, smollm, Scorer(smollm)))
    board = summary["leaderboard"]
    soft = [r for r in board if r["soft"] and r["strategy"] == "soft-prompt"]
    text = [r for r in board if r["strategy"] == "soft-prompt" and not r["soft"]]
    assert len(soft) == 1 and len(text) == 1
    assert text[0]["parents"] == [soft[0]["id"]]
    assert soft[0]["dev"]["n"] == 16 and text[0]["dev"]["n"] == 16
    record = json.loads((tmp_path / "run" / "artifacts" / f"soft-prompt-{soft[0]['soft']}" / "training.json").read_text())
    assert record["steps"] == 2 and len(record["nearest_tokens"]) == 4
    assert record["evals_charged"] == 2 * EVALS_PER_TRAIN_EXAMPLE * 8 + 2 * 8
    # and the bias rows of the winner's calibration after the search (final_calibration), when there is one
    calibrated = summary["best"]["strategy"] == "final"
    members = len(summary["best"].get("members") or [1])  # the final ensemble's each (search/loop.py)
    assert summary["budget_used"]["charged"] == record["evals_charged"] + (BATCH_ROWS * members if calibrated else 0)
    # the soft prompt's dev score is the scorer's, on the same dev rows as every hard prompt
    assert 0.0 <= soft[0]["dev"]["score"] <= 1.0 and summary["best"]["test"]["n"] == 24


def test_reregistering_other_vectors_under_a_name_drops_their_cached_scores(tiny, task):
    scorer = Scorer(tiny)
    hidden = tiny.model.config.hidden_size
    scorer.register_soft_prompt("v", torch.zeros(2, hidden))
    first = scorer.evaluate(task, Candidate(PROMPT, soft="v"), task.dev[:4])
    scorer.register_soft_prompt("v", torch.zeros(2, hidden))  # same vectors: cache kept
    assert scorer.evaluate(task, Candidate(PROMPT, soft="v"), task.dev[:4]) == first
    assert scorer.stats["cache_hits"] == 4
    scorer.register_soft_prompt("v", torch.ones(2, hidden))
    second = scorer.evaluate(task, Candidate(PROMPT, soft="v"), task.dev[:4])
    assert scorer.stats["cache_hits"] == 4 and [r.label_logprobs for r in second] != [r.label_logprobs for r in first]


def test_a_soft_prompt_runs_winner_is_an_artifact_that_predicts_as_scored(tiny_dir, small_task_dir, tmp_path):
    """An artifact carries one soft prompt's vectors, not an ensemble member's: the final ensemble and the ensemble
    strategy leave soft prompts out, so the winner of a soft-prompt run always exports (it was refused when the
    final ensemble took the soft prompt in) and predicts its recorded test answers one by one."""
    import promptsearch as ps
    from promptsearch.store import RunStore

    model = ps.load_model(tiny_dir, device="cpu", dtype="float32")
    task = ps.load_task(small_task_dir)
    result = ps.search(task, model, budget=ps.Budget(max_evals=400), run_dir=tmp_path / "run", seed=0, selection="dev",
                       strategies=["soft-prompt", "ensemble"], options={"soft-prompt": {"n_virtual_tokens": 3, "epochs": 2}})
    board = RunStore.open(tmp_path / "run").leaderboard()
    assert any(row["soft"] for row in board)
    assert not any(m.get("soft") for row in board for m in row.get("members") or [])
    for rank in range(1, len(board) + 1):
        result.export(tmp_path / f"p{rank}.json", rank=rank)
        art = json.loads((tmp_path / f"p{rank}.json").read_text())
        predicted = ps.load_prompt(tmp_path / f"p{rank}.json").predict([ex.input for ex in task.test], model)
        assert [p.prediction for p in predicted] == [art["label_words"][i] for i in art["test_outcomes"]["preds"]]
