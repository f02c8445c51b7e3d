import math

import pytest
import torch

from promptsearch.candidate import Candidate
from promptsearch.scoring import Scorer, continuation
from promptsearch.task import Example, Task
from promptsearch.testing import naive_loglik

INPUTS = ["great movie", "a terrible , boring film", "fun", "i really love this story and the acting is good",
          "not quite", "the plot was dull and the acting awful , really awful", "yes", "the worst"]


def _task(label_words=("negative", "positive"), kind="classification", metric="accuracy"):
    exs = tuple(Example(t, label_words[i % 2] if kind == "classification" else "good", (), i % 2 if kind == "classification" else None, str(i))
                for i, t in enumerate(INPUTS))
    return Task("t", kind, exs, exs, exs, metric, "Review: {input}\nSentiment:", tuple(label_words) if kind == "classification" else ())


@pytest.mark.parametrize("batch_size", [1, 3, 16])
@pytest.mark.parametrize("prompt", ["Review: {input}\nSentiment:", "{input} It was", "The following review is a movie review . {input} label:"])
def test_batched_equals_naive(tiny, batch_size, prompt):
    scorer = Scorer(tiny, batch_size=batch_size)
    words = ["negative", "positive", "very good", "not quite bad"]  # one- and multi-token label words
    contexts = [scorer.render(prompt, t) for t in INPUTS]
    conts = [[continuation(c, w) for w in words] for c in contexts]
    got = scorer.loglikelihoods(contexts, conts)
    for c, ks, row in zip(contexts, conts, got):
        for k, v in zip(ks, row):
            assert v == pytest.approx(naive_loglik(tiny, c, k), abs=1e-5)


def test_padding_side_of_tokenizer_does_not_matter(tiny):
    scorer = Scorer(tiny, batch_size=4)
    contexts = [scorer.render("Review: {input}\nSentiment:", t) for t in INPUTS]
    conts = [[" positive", " negative"]] * len(contexts)
    before = scorer.loglikelihoods(contexts, conts)
    old = tiny.tokenizer.padding_side
    tiny.tokenizer.padding_side = "left" if old == "right" else "right"
    try:
        after = scorer.loglikelihoods(contexts, conts)
    finally:
        tiny.tokenizer.padding_side = old
    assert before == after


def test_multi_token_label_words_sum_token_logprobs(tiny):
    scorer = Scorer(tiny)
    assert len(tiny.encode(" very good")) == 2
    got = scorer.loglikelihoods(["Review: fun\nSentiment:"], [[" very good"]])[0][0]
    assert got == pytest.approx(naive_loglik(tiny, "Review: fun\nSentiment:", " very good"), abs=1e-5)
    assert got < 0


def test_classify_picks_argmax_and_reports_per_example(tiny):
    task = _task()
    scorer = Scorer(tiny)
    results = scorer.evaluate(task, Candidate(task.seed_prompt), task.dev)
    assert len(results) == len(task.dev)
    for ex, r in zip(task.dev, results):
        assert r.prediction == task.label_words[max(range(2), key=r.label_logprobs.__getitem__)]
        assert r.score == float(r.prediction == ex.output)
        assert r.logprob == r.label_logprobs[ex.label]


def test_cache_hits_and_no_recompute(tiny):
    task = _task()
    scorer = Scorer(tiny)
    c = Candidate(task.seed_prompt)
    first = scorer.evaluate(task, c, task.dev[:4])
    rows = scorer.stats["rows"]
    again = scorer.evaluate(task, c, task.dev)
    assert again[:4] == first
    assert scorer.stats["cache_hits"] == 4
    assert scorer.stats["examples_scored"] == len(task.dev)
    assert scorer.stats["rows"] == rows + len(task.dev) - 4
    other = scorer.evaluate(task, Candidate(task.seed_prompt, label_words=("bad", "good")), task.dev[:2])
    assert scorer.stats["examples_scored"] == len(task.dev) + 2  # another verbalizer is another key
    assert other[0].prediction in ("bad", "good")


def test_shared_prefix_runs_once_and_matches(tiny):
    scorer = Scorer(tiny, batch_size=2)
    tiny.clear_cache()  # the model keeps prefixes and counts its work (models/hf_batching.py)
    tiny.stats.clear()
    prompt = "the following sentence is a movie review . classify the review . " * 4 + "{input} label:"
    contexts = [scorer.render(prompt, t) for t in INPUTS]
    got = scorer.loglikelihoods(contexts, [[" positive"]] * len(contexts))
    assert tiny.stats["prefix_tokens"] >= 40  # the instruction ran once, not per batch
    for c, row in zip(contexts, got):
        assert row[0] == pytest.approx(naive_loglik(tiny, c, " positive"), abs=1e-5)


def test_soft_prompt_prefix_matches_manual_embeddings(tiny):
    scorer = Scorer(tiny, batch_size=3)
    torch.manual_seed(1)
    soft = torch.randn(3, tiny.model.config.hidden_size) * 0.1
    scorer.register_soft_prompt("s1", soft)
    contexts = [scorer.render("Review: {input}\nSentiment:", t) for t in INPUTS[:4]]
    got = scorer.loglikelihoods(contexts, [[" positive", " very good"]] * 4, soft="s1")
    for c, row in zip(contexts, got):
        for k, v in zip([" positive", " very good"], row):
            ids = tiny.encode(c) + tiny.encode(k)
            emb = torch.cat([soft, tiny.input_embeddings()(torch.tensor(ids))]).unsqueeze(0)
            with torch.no_grad():
                lp = torch.log_softmax(tiny.model(inputs_embeds=emb).logits[0], -1)
            n_ctx = 3 + len(tiny.encode(c))
            ref = sum(lp[n_ctx - 1 + i, t].item() for i, t in enumerate(tiny.encode(k)))
            assert v == pytest.approx(ref, abs=1e-5)


def test_generation_is_greedy_first_line(tiny):
    task = _task(kind="generation", metric="exact_match")
    scorer = Scorer(tiny, batch_size=3)
    prompt = "Input: {input}\nOutput:"
    results = scorer.evaluate(task, Candidate(prompt), task.dev)
    for ex, r in zip(task.dev, results):
        ids = torch.tensor([tiny.encode(scorer.render(prompt, ex.input))])
        with torch.no_grad():
            ref = tiny.model.generate(ids, max_new_tokens=scorer.max_new_tokens(task), do_sample=False, pad_token_id=0)
        text = tiny.decode(ref[0, ids.shape[1]:].tolist()).strip()
        assert r.prediction == (text.splitlines()[0].strip() if text else "")
        assert r.score == float(r.prediction.lower() == "good")


def test_target_loglik_mode(tiny):
    task = _task(kind="generation", metric="loglik")
    scorer = Scorer(tiny)
    r = scorer.evaluate(task, Candidate("Input: {input}\nOutput:"), task.dev[:2])
    assert r[0].score == pytest.approx(naive_loglik(tiny, "Input: great movie\nOutput:", " good"), abs=1e-5)
    assert math.isfinite(r[1].logprob)


def test_too_long_input_is_a_clear_error(tiny):
    from promptsearch.errors import PromptSearchError

    scorer = Scorer(tiny)
    ex = Example("word " * (tiny.max_length + 10), "positive", (), 1, "long-1")
    task = _task()
    with pytest.raises(PromptSearchError, match="example long-1.*context"):
        scorer.evaluate(task, Candidate(task.seed_prompt), (ex,))


@pytest.mark.parametrize("batch_size", [1, 4])
def test_label_words_of_any_length_share_one_row_per_example(tiny, batch_size):
    scorer = Scorer(tiny, batch_size=batch_size)
    # one-token words, two multi-token words where one starts the other, and a word repeated
    words = ["positive", "very good", "very good really", "not quite bad", "positive"]
    contexts = [scorer.render("Review: {input}\nSentiment:", t) for t in INPUTS]
    conts = [[continuation(c, w) for w in words] for c in contexts]
    got = scorer.loglikelihoods(contexts, conts)
    assert scorer.stats["rows"] == len(contexts)  # not one more row per longer word
    for c, ks, row in zip(contexts, conts, got):
        for k, v in zip(ks, row):
            assert v == pytest.approx(naive_loglik(tiny, c, k), abs=1e-5)


def test_multi_token_words_without_a_shared_prefix(tiny):
    scorer = Scorer(tiny, batch_size=3)
    contexts = [t + " It was" for t in INPUTS]  # nothing shared: no prefix cache, mask over the rows alone
    got = scorer.loglikelihoods(contexts, [[" very good", " bad"]] * len(contexts))
    for c, row in zip(contexts, got):
        assert row[0] == pytest.approx(naive_loglik(tiny, c, " very good"), abs=1e-5)
        assert row[1] == pytest.approx(naive_loglik(tiny, c, " bad"), abs=1e-5)


def test_shared_prefix_is_kept_across_calls_and_extended(tiny):
    scorer = Scorer(tiny, batch_size=4)
    tiny.clear_cache()
    tiny.stats.clear()
    head = "the following sentence is a movie review . classify the review . " * 3
    contexts = [scorer.render(head + "{input} label:", t) for t in INPUTS]
    scorer.loglikelihoods(contexts[:4], [[" positive"]] * 4)
    ran = tiny.stats["prefix_tokens"]
    assert ran >= 30
    # the same prompt on other examples (the next racing rung): the prefix is not run again
    second = scorer.loglikelihoods(contexts[4:], [[" positive"]] * 4)
    assert tiny.stats["prefix_tokens"] == ran and tiny.stats["prefix_hits"] == 1
    # a longer prompt that starts with the kept one runs only its extra tokens
    longer = [scorer.render(head + "answer with one word . {input} label:", t) for t in INPUTS[:3]]
    third = scorer.loglikelihoods(longer, [[" positive", " very good"]] * 3)
    assert tiny.stats["prefix_tokens"] - ran == len(tiny.encode(head + "answer with one word .")) - ran
    for c, row in zip(contexts[4:], second):
        assert row[0] == pytest.approx(naive_loglik(tiny, c, " positive"), abs=1e-5)
    for c, row in zip(longer, third):
        assert row[0] == pytest.approx(naive_loglik(tiny, c, " positive"), abs=1e-5)
        assert row[1] == pytest.approx(naive_loglik(tiny, c, " very good"), abs=1e-5)
    kept = tiny.batching.kept_prefixes
    for i in range(2 * kept):  # only the last few prefixes are kept
        scorer.loglikelihoods([f"{i} " + c for c in contexts[:2]], [[" positive"]] * 2)
    assert len(tiny.batching.prefixes) == kept
    scorer.clear_cache()
    assert not tiny.batching.prefixes


def test_soft_prompt_prefixes_are_never_kept(tiny):
    scorer = Scorer(tiny, batch_size=4)
    tiny.clear_cache()
    soft = torch.zeros(2, tiny.model.config.hidden_size)
    contexts = [scorer.render("Review: {input}\nSentiment:", t) for t in INPUTS[:4]]
    first = tiny.batching.loglikelihoods(contexts, [[" positive"]] * 4, soft=soft)
    soft += 1.0  # changed in place, as a training loop does to its parameter
    second = tiny.batching.loglikelihoods(contexts, [[" positive"]] * 4, soft=soft)
    assert not tiny.batching.prefixes and first != second


def test_start_tokens_precede_every_context_once():
    """A tokenizer that puts <bos> before a text (Gemma's) gets it before each context, not twice, and
    not before continuations; SmolLM2's and the tiny model's put nothing there."""
    from tokenizers import processors

    from promptsearch.models.local import tokenizer_start_ids as _start_ids
    from promptsearch.testing import tiny_model

    model = tiny_model()
    assert model.start_ids == []
    model.tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<unk> $A", special_tokens=[("<unk>", 2)])  # <unk> stands in for <bos>
    assert _start_ids(model.tokenizer) == [2]
    model.start_ids = [2]
    context = "Review: great fun\nSentiment:"
    assert model.encode_context(context) == [2] + model.encode(context)
    assert model.encode_context("<unk>" + context) == model.encode("<unk>" + context)  # already there
    got = Scorer(model).loglikelihoods([context], [[" positive", " very good"]])[0]
    for value, word in zip(got, [" positive", " very good"]):
        assert value == pytest.approx(naive_loglik(model, context, word), abs=1e-5)  # <unk> first, see above
