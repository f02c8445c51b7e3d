"""AutoPrompt: gradient-guided trigger swaps. Unit tests on the tiny random Llama; one CLI run on SmolLM2."""

import copy
import dataclasses
import itertools
import json
import math
import random

import pytest
import torch
from promptsearch.strategies.autoprompt import AutoPrompt

from promptsearch import runner
from promptsearch.errors import PromptSearchError
from promptsearch.models.local import FrozenModel
from promptsearch.scoring import Scorer
from promptsearch.search import Budget, Racing, Search
from promptsearch.strategy import SearchContext, make
from promptsearch.task import Example, Task, load_task


@pytest.fixture(scope="module")
def task():
    full = load_task("sst2-mini")
    return dataclasses.replace(full, dev=full.dev[:32], test=full.test[:16])


def context(task, scorer, seed=0):
    return SearchContext(task=task, scorer=scorer, rng=random.Random(seed), leaderboard=list,
                         charge=lambda n: None, remaining_evals=lambda: math.inf)


def started(task, scorer, **options):
    strategy = AutoPrompt(**options)
    ctx = context(task, scorer)
    strategy.start(ctx)
    return strategy, ctx


def test_template_from_seed_and_explicit_template(tiny, task):
    s, _ = started(task, Scorer(tiny), n_triggers=3)
    assert s.current.prompt == "{input} the the the\nIs this positive or negative?"
    s, _ = started(task, Scorer(tiny), n_triggers=2, position="before_input")
    assert s.current.prompt == " the the {input}\nIs this positive or negative?"
    s, _ = started(task, Scorer(tiny), template="Review: {input} [T][T] sentiment {{x}}:", init="movie was")
    assert s.n == 2 and s.current.prompt == "Review: {input} movie was sentiment {{x}}:"
    assert s.trigger_tokens[s.current.prompt] == s.triggers
    s, _ = started(task, Scorer(tiny), n_triggers=2, init="seed")  # words of the starting prompt
    assert s.current.prompt == "{input} this positive\nIs this positive or negative?"
    with pytest.raises(PromptSearchError, match="no \\[T\\]"):  # when the run is set up, before anything is written
        make("autoprompt", {"template": "{input} Sentiment:"})
    with pytest.raises(PromptSearchError, match="not a single token"):
        started(task, Scorer(tiny), init="zzzqqq")
    with pytest.raises(PromptSearchError, match="position must be"):
        make("autoprompt", {"position": "middle"})
    with pytest.raises(PromptSearchError, match="has no option 'triggers'"):
        make("autoprompt", {"triggers": 3})


def test_readable_vocabulary_is_whole_words(tiny, task):
    s, _ = started(task, Scorer(tiny))
    readable = s.vocab_mask(tiny, tiny.model.get_input_embeddings().weight.shape[0])
    words = [tiny.decode([i]) for i in readable.nonzero().flatten().tolist()]
    assert words and all(w[0] == " " and w[1:].isalpha() for w in words)
    s2, _ = started(task, Scorer(tiny), readable=False)
    free = s2.vocab_mask(tiny, readable.shape[0])
    assert free.sum() > readable.sum() and bool((free | ~readable).all())  # a superset
    for i in free.nonzero().flatten().tolist():  # every allowed token re-encodes to itself
        assert tiny.encode(tiny.decode([i])) == [i]


def _ce(label_logprobs, gold):
    return torch.logsumexp(torch.tensor(label_logprobs), 0).item() - label_logprobs[gold]


@pytest.mark.parametrize("words", [None, ("Negative", "Positive great")])
def test_objective_matches_scorer_label_loss(tiny, task, words):
    """The loss the strategy minimises is the cross-entropy over the label words' log-likelihoods the
    scorer reads (multi-token words summed), example by example."""
    scorer = Scorer(tiny)
    s, ctx = started(task, scorer, n_triggers=3, search_labels=False)
    if words:
        s.label_words = words
        assert all(len(tiny.encode(" " + w)) > 1 for w in words)
    batch = task.train[:6]
    rows = s.rows(ctx, s.triggers, batch)
    assert sum(r["fluent"] for r in rows) == 6
    mine = s.objective(ctx, rows)
    ref = scorer.classify(s.current.prompt, batch, words or task.label_words)
    expected = [_ce(r.label_logprobs, ex.label) for r, ex in zip(ref, batch)]
    assert mine == pytest.approx(expected, abs=1e-4)


def test_start_token_models_keep_triggers_in_place_and_match_the_scorer(task):
    """With a <bos>-first tokenizer (Gemma) every row starts with it, triggers are found after it, and
    the loss still equals the scorer's."""
    from promptsearch.testing import tiny_model

    model = tiny_model()
    model.start_ids = [2]  # <unk> stands in for <bos>
    scorer = Scorer(model)
    s, ctx = started(task, scorer, n_triggers=3, search_labels=False)
    batch = task.train[:6]
    rows = s.rows(ctx, s.triggers, batch)
    assert len(rows) == 6 and all(r["ids"][0] == 2 for r in rows)
    assert all([r["ids"][p] for p in r["pos"]] == s.triggers for r in rows)
    ref = scorer.classify(s.current.prompt, batch, task.label_words)
    assert s.objective(ctx, rows) == pytest.approx([_ce(r.label_logprobs, ex.label) for r, ex in zip(ref, batch)],
                                                   abs=1e-4)


def test_objective_for_generation_is_target_nll(tiny):
    rows = [Example(input=w, output=o) for w, o in [("good", "bad"), ("love", "hate movie"), ("fun", "boring")]]
    gen = Task(name="gen", kind="generation", train=tuple(rows), dev=tuple(rows), test=tuple(rows),
               metric="exact_match", seed_prompt="Word: {input}\nOpposite:")
    scorer = Scorer(tiny)
    s, ctx = started(gen, scorer, n_triggers=2)
    mine = s.objective(ctx, s.rows(ctx, s.triggers, rows))
    ref = scorer.target_loglik(s.current.prompt, rows)
    assert mine == pytest.approx([-r.logprob for r in ref], abs=1e-4)
    assert s.current.label_words is None
    proposals = s.propose(ctx, 8)  # generation: no label search, goes straight to the triggers
    assert proposals[0].edit == "initial triggers"


def test_fluency_term_is_the_trigger_loglikelihood(tiny, task):
    scorer = Scorer(tiny)
    s0, ctx = started(task, scorer, n_triggers=3)
    s1, _ = started(task, scorer, n_triggers=3, fluency=2.0)
    batch = task.train[:4]
    rows = s0.rows(ctx, s0.triggers, batch)
    _, fluent, _, _ = s0._forward(ctx, rows)
    # reference: log P(trigger token | everything before it), read one sequence at a time
    for e, r in enumerate(rows):
        ids = torch.tensor([r["ids"]])
        with torch.no_grad():
            lp = torch.log_softmax(tiny.model(ids).logits[0].float(), -1)
        ref = sum(lp[p - 1, r["ids"][p]].item() for p in r["pos"]) / len(r["pos"])
        assert fluent[e].item() == pytest.approx(ref, abs=1e-4)
    diff = [a - b for a, b in zip(s1.objective(ctx, rows), s0.objective(ctx, rows))]
    assert diff == pytest.approx((-2.0 * fluent).tolist(), abs=1e-4)


@pytest.mark.parametrize("fluency", [0.0, 0.5])
def test_candidate_ranking_matches_brute_force_first_order(tiny, task, fluency):
    """The ranking score of token v at trigger j is -(e_v - e_cur) . grad; here checked against a
    central finite difference of the batch loss along (e_v - e_cur), token by token, in float64
    (with fluency: plus the exact change of the trigger's own log-likelihood term)."""
    model = FrozenModel(copy.deepcopy(tiny.model).double(), tiny.tokenizer, "tiny-double")
    scorer = Scorer(model)
    s, ctx = started(task, scorer, n_triggers=3, fluency=fluency)
    batch = task.train[:4]
    rows = s.rows(ctx, s.triggers, batch)
    j = 1
    scores, loss = s.first_order(ctx, rows, j)
    assert loss == pytest.approx(sum(s.objective(ctx, rows)) / len(batch), abs=1e-9)
    emb = model.input_embeddings().weight
    cur = s.triggers[j]
    base = emb[torch.tensor(s.triggers)].detach().clone()
    vocab = s.vocab_mask(model, emb.shape[0]).nonzero().flatten().tolist()[:40]
    h = 1e-2  # Llama RMSNorm computes in float32, so a smaller step only adds rounding noise
    brute = []
    for v in vocab:
        d = emb[v] - emb[cur]
        plus, minus = base.clone(), base.clone()
        plus[j] += h * d
        minus[j] -= h * d
        slope = (sum(s.objective(ctx, rows, plus)) - sum(s.objective(ctx, rows, minus))) / (2 * h * len(batch))
        estimate = -slope
        if fluency:  # the swapped token's own log-likelihood changes exactly, not to first order
            swapped = list(s.triggers)
            swapped[j] = v
            ids = [dict(r, ids=[v if p == r["pos"][j] else t for p, t in enumerate(r["ids"])]) for r in rows]
            with torch.no_grad():
                f_new = s._forward(ctx, ids, base)[1]  # inputs unchanged, only the read token differs
                f_old = s._forward(ctx, rows, base)[1]
            estimate += fluency * float((f_new - f_old).mean())
        brute.append(estimate)
    brute = torch.tensor(brute, dtype=torch.float64)
    mine = scores[vocab].double()
    assert torch.allclose(mine, brute, rtol=1e-3, atol=1e-6)
    assert torch.argsort(mine, descending=True)[:10].tolist() == torch.argsort(brute, descending=True)[:10].tolist()


def test_run_keeps_weights_frozen_and_only_lowers_batch_loss(tiny, task):
    before = {k: v.detach().clone() for k, v in tiny.model.state_dict().items()}
    strategy = AutoPrompt(n_triggers=3, iterations=4, batch_size=4, top_k=4)
    summary = Search(task, Scorer(tiny), [strategy], Budget(max_evals=5000), racing=Racing(8, 2)).run()
    after = tiny.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not p.requires_grad and p.grad is None for p in tiny.model.parameters())
    assert len(strategy.history) == 4
    for h in strategy.history:
        if "swap" in h:
            assert h["best_candidate_loss"] < h["loss"]
    ours = [r for r in summary["leaderboard"] if r["strategy"] == "autoprompt"]
    assert ours and all("{input}" in r["prompt"] for r in ours)
    assert any(r["edit"].startswith("swap") for r in ours)
    for r in ours:  # every proposed prompt's triggers re-encode to the tokens they were chosen as
        assert r["prompt"] in strategy.trigger_tokens


def test_budget_is_charged_and_respected(tiny, task):
    charged = []
    strategy = AutoPrompt(n_triggers=2, iterations=50, batch_size=4, top_k=3, search_labels=False)
    scorer = Scorer(tiny)
    ctx = SearchContext(task=task, scorer=scorer, rng=random.Random(0), leaderboard=list,
                        charge=charged.append, remaining_evals=lambda: 200 - sum(charged))
    strategy.start(ctx)
    proposals = []
    while True:
        got = strategy.propose(ctx, 8)
        if not got:
            break
        proposals += got
    cost = 3 * 4 + 3 * 4
    assert sum(charged) <= 200 and sum(charged) > 200 - cost
    assert len(strategy.history) >= 1 and all(h["candidates"] <= 3 for h in strategy.history)
    assert proposals[0].edit == "initial triggers" and proposals[0].strategy == "autoprompt"


def test_resume_mid_search_gives_the_same_result(tiny, task, tmp_path):
    config = runner.make_config(task="sst2-mini", strategies=["autoprompt"],
                                options={"autoprompt": {"n_triggers": 3, "iterations": 4, "batch_size": 4, "top_k": 4}},
                                budget={"max_evals": 5000, "max_seconds": None}, racing={"min_examples": 8, "eta": 2})
    full = runner.run(config, tmp_path / "a", parts=(task, tiny, Scorer(tiny)))
    again = runner.run(config, tmp_path / "a2", parts=(task, tiny, Scorer(tiny)))
    assert again["leaderboard"] == full["leaderboard"]  # same seed, same result
    lines = (tmp_path / "a" / "candidates.jsonl").read_text().splitlines()
    assert len(lines) >= 6
    cut = tmp_path / "b"
    cut.mkdir()
    (cut / "config.json").write_text((tmp_path / "a" / "config.json").read_text())
    half = len(lines) // 2
    (cut / "candidates.jsonl").write_text("\n".join(lines[:half]) + "\n" + lines[half][:25])
    scorer = Scorer(tiny)
    resumed = runner.run(None, cut, resume=True, parts=(task, tiny, scorer))
    assert resumed["leaderboard"] == full["leaderboard"]
    assert resumed["best"] == full["best"]
    assert scorer.stats["cache_hits"] >= sum(len(json.loads(x)["results"]) for x in lines[:half])
    key = lambda text: [(r["candidate"], r["size"], r["score"]) for r in map(json.loads, text.splitlines())]
    assert key((cut / "candidates.jsonl").read_text()) == key("\n".join(lines))  # the same rungs, in order


def test_label_search_proposes_verbalizers_and_tunes_for_the_best(tiny, task):
    scorer = Scorer(tiny)
    strategy = AutoPrompt(n_triggers=2, iterations=1, batch_size=4, top_k=3, label_examples=8, search_labels=True)
    search = Search(task, scorer, [strategy], Budget(max_evals=5000), racing=Racing(8, 2))
    search.run()
    label_cands = [t.candidate for t in search.trials.values() if t.candidate.edit == "label words"]
    assert label_cands and all(c.label_words and len(c.label_words) == 2 for c in label_cands)
    chosen = next(t for t in search.leaderboard() if t.candidate.edit in ("label words", "initial triggers"))
    assert tuple(strategy.label_words) == (chosen.candidate.label_words or task.label_words)


@pytest.mark.integration
@pytest.mark.real_model
def test_cli_run_autoprompt_on_smollm(tmp_path):
    from click.testing import CliRunner

    from promptsearch.cli import main

    src = load_task("sst2-mini")
    task_dir = tmp_path / "task"
    task_dir.mkdir()
    (task_dir / "task.json").write_text(json.dumps({"name": "sst2-tiny", "label_words": list(src.label_words),
                                                    "seed_prompt": "Review: {input}\nSentiment:"}))
    for split, rows in (("train", src.train[:40]), ("dev", src.dev[:16]), ("test", src.test[:16])):
        (task_dir / f"{split}.jsonl").write_text("".join(json.dumps({"input": e.input, "label": e.label}) + "\n" for e in rows))
    out = tmp_path / "run"
    args = ["run", "--task", str(task_dir), "--strategy", "autoprompt", "-o", "autoprompt.iterations=1",
            "-o", "autoprompt.batch_size=4", "-o", "autoprompt.top_k=3", "-o", "autoprompt.n_triggers=3",
            "-o", "autoprompt.search_labels=false", "--max-evals", "120", "--out", str(out), "--json", "-q",
            "--selection", "dev", "--final-ensemble", "1"]  # all 16 dev rows choose (nothing held out), as the counts
    # below say; the winner calibrated alone, so that it is autoprompt's (the final ensemble: test_final_calibration.py)
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    best = summary["best"]
    for part in ("dev", "test"):
        assert 0.0 <= best[part]["score"] <= 1.0 and best[part]["n"] == 16
    # the search's winner (the best, or the prompt it calibrated after the search: final_calibration)
    assert best["strategy"] == "final" and best["calibrate"] == "batch"
    winner = next(r for r in summary["leaderboard"] if r["id"] == best["parents"][0])
    assert winner["strategy"] in ("autoprompt", "seed")
    assert winner["dev"]["score"] >= summary["seed"]["dev"]["score"]
    strategies = {r["strategy"] for r in summary["leaderboard"]}
    assert "autoprompt" in strategies
    assert summary["budget_used"]["charged"] > 0
    logged = [json.loads(x) for x in (out / "candidates.jsonl").read_text().splitlines()]
    assert any(rec["candidate"]["edit"] == "initial triggers" for rec in logged)


@pytest.mark.parametrize("labels_at, order", [("start", ["labels", "formats", "instructions"]),
                                               ("after-formats", ["formats", "labels", "instructions"]),
                                               ("after-instructions", ["formats", "instructions", "labels"])])
def test_templates_search_label_words_in_the_phase_asked(tiny, task, labels_at, order):
    from promptsearch.strategies.templates import TemplateEnumeration

    strategy = TemplateEnumeration(labels_at=labels_at, label_examples=8, calibrations=())
    search = Search(task, Scorer(tiny), [strategy], Budget(max_evals=100_000), racing=Racing(8, 2))
    search.run()
    edits = [t.candidate.edit for t in sorted(search.trials.values(), key=lambda t: t.order) if t.candidate.edit]
    phase_edits = {"formats": "format", "labels": "label words", "instructions": "instruction"}
    at = {phase: [i for i, e in enumerate(edits) if e == edit] for phase, edit in phase_edits.items()}
    assert all(at.values())  # every phase proposed something
    assert all(max(at[a]) < min(at[b]) for a, b in itertools.pairwise(order))  # one phase after another, in order
    with pytest.raises(ValueError, match="labels_at"):
        TemplateEnumeration(labels_at="sometime")
