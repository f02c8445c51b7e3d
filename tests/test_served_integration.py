"""Against a real server: llama-cpp-python's server on the embedded SmolLM2 GGUF (tests/served_fixture.py),
checked against the same GGUF run by llama_cpp in this process."""

import json
import random
import threading
import time

import pytest

from promptsearch import runner
from promptsearch.errors import PromptSearchError, RunInterrupted
from promptsearch.models.served import ServedModel
from promptsearch.scoring import Scorer
from promptsearch.task import load_task

from .conftest import sst2_slice

pytestmark = pytest.mark.integration
SECRET = "sk-promptsearch-test-secret-0123456789"


@pytest.fixture(scope="module")
def mini_task(tmp_path_factory):
    """16/8/8 rows of the bundled SST-2 sample: a search on the server stays short."""
    return str(sst2_slice(tmp_path_factory.mktemp("served-task"), 16, 8, 8))


@pytest.fixture(scope="module")
def in_process_llama():
    from llama_cpp import Llama

    from promptsearch.models.local import embedded_gguf

    return Llama(str(embedded_gguf()), logits_all=True, n_threads=1, n_ctx=1024, verbose=False)


def test_label_loglikelihoods_match_llama_cpp_in_process(llama_server, in_process_llama, tmp_cache):
    from promptsearch.testing import llama_cpp_loglik

    model = ServedModel.connect([llama_server.url], concurrency=2)
    assert model.capabilities.prompt_logprobs and model.late_echo  # the measured pitfall: echo pairs one late
    task = load_task(None)
    scorer = Scorer(model)
    words = (" negative", " positive", " not positive at all")  # the last: several tokens, never top-k
    examples = task.dev[:4]
    prompt = "Review: {input}\nSentiment:"
    # the second prompt: the model would end the text right after it, and the server then lists no next tokens
    contexts = [scorer.render(p, ex.input) for p in (prompt, "{input}\nIs this positive or negative?") for ex in examples]
    served = scorer.loglikelihoods(contexts, [list(words)] * len(contexts))
    for ctx, row in zip(contexts, served):
        for word, value in zip(words, row):
            ref = llama_cpp_loglik(in_process_llama, ctx + word, word)  # the prompt as it is, nothing in front
            assert abs(value - ref) < 1e-4, (ctx, word, value, ref)
    # the same numbers again, from the disk cache: nothing sent
    sent = model.stats["requests"]
    again = ServedModel.connect([llama_server.url]).loglikelihoods(contexts, [list(words)] * len(contexts))
    assert again == served and model.stats["requests"] == sent


def test_topk_scoring_states_its_rule_and_agrees_where_the_label_is_listed(llama_server, in_process_llama, tmp_cache):
    from promptsearch.models import dialects as d
    from promptsearch.testing import llama_cpp_loglik

    exact = ServedModel.connect([llama_server.url])
    topk = ServedModel.connect([llama_server.url], scoring="topk")
    assert topk.capabilities.top_k_only and not topk.capabilities.prompt_logprobs and not topk.late_echo
    context = "Review: a wonderful, moving film.\nSentiment:"
    listed, rare = topk.loglikelihoods([context], [[" positive", " zxqv"]])[0]
    # " positive" is in the top 20 here, so its top-k value is exact (top-k pairs right without a start token)
    assert abs(listed - llama_cpp_loglik(in_process_llama, context + " positive", " positive")) < 1e-4
    entries = topk._ask(*d.topk_request(
        "topk", topk.model_id, context, topk.top_k), lambda a: d.topk_entries("topk", a))
    assert rare <= d.outside_topk(entries) + 1e-9 and topk.stats["outside_topk"] >= 1
    assert topk.fingerprint != exact.fingerprint  # the two scorings never share cached numbers


def test_generation_plain_and_chat(llama_server, tmp_cache):
    model = ServedModel.connect([llama_server.url])
    plain, chat = model.generate(["The capital of France is"], 8)[0], model.generate(["Name the capital of France."], 8, chat=True)[0]
    assert "Paris" in plain and "\n" not in plain and isinstance(chat, str) and "\n" not in chat


def test_white_box_strategies_refuse_a_served_model(llama_server, mini_task, tmp_path, tmp_cache):
    parts = None
    for strategy, needs in (("autoprompt", "gradients"), ("soft-prompt", "embeddings")):
        config = runner.make_config(task=mini_task, model=llama_server.url, strategies=[strategy], budget={"max_evals": 10})
        parts = parts or runner.load_parts(config)
        with pytest.raises(PromptSearchError, match=f"{strategy} needs .*{needs}.*served over HTTP") as e:
            runner.run(config, tmp_path / strategy, parts=parts)
        assert "\n" not in str(e.value)


def _board(summary):
    return [(r["id"], r["dev"]["score"], r["dev"]["n"]) for r in summary["leaderboard"]]


def test_server_killed_mid_run_then_resume_gives_the_same_run(llama_server, mini_task, tmp_path, monkeypatch):
    """SIGKILL the server at a seeded random moment of a search, restart it, resume: the same leaderboard as an
    uninterrupted run, and every request answered exactly once across the two halves."""
    monkeypatch.setenv("PROMPTSEARCH_API_KEY", SECRET)
    config = runner.make_config(task=mini_task, model=llama_server.url, strategies=["templates"], top_k=1,
                                budget={"max_evals": 24, "max_candidates": 6, "max_seconds": 10**6},
                                racing={"min_examples": 4}, served={"concurrency": 2, "timeout": 30})
    monkeypatch.setenv("PROMPTSEARCH_CACHE", str(tmp_path / "cache-full"))
    started = time.monotonic()
    parts = runner.load_parts(config)
    full = runner.run(config, tmp_path / "full", parts=parts)
    took = time.monotonic() - started

    monkeypatch.setenv("PROMPTSEARCH_CACHE", str(tmp_path / "cache-cut"))
    parts = runner.load_parts(config)
    killer = threading.Timer(random.Random(14).uniform(0.3, 0.7) * took, llama_server.kill)
    killer.start()
    try:
        with pytest.raises(PromptSearchError) as e:
            runner.run(config, tmp_path / "cut", parts=parts)
    finally:
        killer.join()
        llama_server.start()
    message = str(e.value)
    assert message.startswith(f"server {llama_server.url}: ") and "\n" not in message
    assert isinstance(e.value, RunInterrupted) and message.endswith("nothing scored is lost")  # the CLI adds the resume command
    before = parts[1].stats["requests"]

    resumed_parts = runner.load_parts(json.loads((tmp_path / "cut" / "config.json").read_text()))
    resumed = runner.run(None, tmp_path / "cut", resume=True, parts=resumed_parts)
    assert _board(resumed) == _board(full)
    assert resumed["best"]["test"] == full["best"]["test"]
    assert before > 0 and before + resumed_parts[1].stats["requests"] == full["served"]["requests"]
    for path in (tmp_path / "cut").rglob("*"):  # the API key is never written to the run
        assert not path.is_file() or SECRET not in path.read_text(errors="ignore")


def test_label_word_search_reads_the_served_top_k_lists(llama_server, in_process_llama, tmp_cache):
    """LM-BFF label search on a served model: words come from the top-k lists, with the values llama_cpp gives."""
    from promptsearch.strategies.templates import TemplateEnumeration, _is_label_word

    from promptsearch.strategy import SearchContext
    from promptsearch.testing import llama_cpp_loglik

    model = ServedModel.connect([llama_server.url], concurrency=2)
    task = load_task(None)
    scorer, charged = Scorer(model), []
    ctx = SearchContext(task, scorer, random.Random(0), leaderboard=list, charge=charged.append, remaining_evals=lambda: 1e9)
    prompt = "Review: {input}\nSentiment:"
    options = TemplateEnumeration(label_examples=4).label_words(ctx, prompt)
    assert options and charged == [8]  # 4 train rows per class, one request each
    for words in options:
        assert len(words) == 2 and len({w.lower() for w in words}) == 2 and all(_is_label_word(" " + w, True) for w in words)
    assert any(w not in task.label_words for words in options for w in words)
    context = scorer.render(prompt, next(ex for ex in task.train if ex.label == 0).input)
    listed, _ = model.next_token_tables([context], lambda t: _is_label_word(t, True), "label words, space=True")[0]
    word = max(listed, key=listed.get)
    assert abs(listed[word] - llama_cpp_loglik(in_process_llama, context + word, word)) < 1e-4


def test_a_verbalizer_mined_and_scored_on_the_server_agrees_with_llama_cpp(llama_server, in_process_llama, tmp_cache):
    """The verbalizer option on a served model: words mined from the served top-k lists, and a class scored as the
    log of its words' summed probability, with the values llama_cpp gives in process."""
    import math

    from promptsearch.strategies.templates import TemplateEnumeration, _is_label_word

    from promptsearch.candidate import Candidate
    from promptsearch.scoring import continuation
    from promptsearch.strategy import SearchContext
    from promptsearch.testing import llama_cpp_loglik

    model = ServedModel.connect([llama_server.url], concurrency=2)
    task = load_task(None)
    scorer, charged = Scorer(model), []
    ctx = SearchContext(task, scorer, random.Random(0), leaderboard=list, charge=charged.append, remaining_evals=lambda: 1e9)
    prompt = "Review: {input}\nSentiment:"
    extra = TemplateEnumeration(label_examples=4, verbalizer_size=3).verbalizer(ctx, prompt, task.label_words)
    assert charged == [8] and len(extra) == 2 and all(len(words) == 2 for words in extra)
    mined = [w for words in extra for w in words]
    assert len(set(mined)) == 4 and all(_is_label_word(" " + w, True) for w in mined)
    assert not {w.lower() for w in mined} & {w.lower() for w in task.label_words}
    results = scorer.evaluate(task, Candidate(prompt, verbalizer=extra), task.dev[:3])
    for ex, r in zip(task.dev[:3], results):
        context = scorer.render(prompt, ex.input)
        expected = []
        for label, words in zip(task.label_words, extra):
            each = [llama_cpp_loglik(in_process_llama, context + continuation(context, w), continuation(context, w))
                    for w in (label, *words)]
            expected.append(math.log(sum(math.exp(x) for x in each)))
        assert list(r.label_logprobs) == pytest.approx(expected, abs=1e-4)
        assert r.prediction == task.label_words[max(range(2), key=expected.__getitem__)]


def test_a_prompt_past_the_servers_context_is_a_row_too_long_not_a_lost_run(llama_server, tmp_cache):
    """llama-cpp-python answers HTTP 400 ("This model's maximum context length is 2048 tokens, however you requested
    ..."): the row is the scorer's TooLongError, named and scored wrong where a run reports, as in process; generation
    too. Other rows of the call are answered."""
    import promptsearch as ps
    from promptsearch.errors import TooLongError

    model = ps.load_model(llama_server.url)
    task = load_task("sst2-mini")
    long_prompt = "Review: " + "a very long and winding review " * 500 + "{input}\nSentiment:"
    found = ps.evaluate(task, model, long_prompt, split="test", limit=2)
    assert found.too_long == 2 and found.score == 0.0
    rows = [ex if i != 1 else type(ex)(ex.input * 400, ex.output, label=ex.label, id=ex.id) for i, ex in enumerate(task.test[:3])]
    from promptsearch.candidate import Candidate
    from promptsearch.scoring.scorer import evaluate_fitting

    scorer = Scorer(model)
    with pytest.raises(TooLongError, match=r"example \S+: prompt and answer take \d+ tokens, over the model's context of 2048"):
        scorer.evaluate(task, Candidate("Review: {input}\nSentiment:"), rows)
    results, over = evaluate_fitting(scorer, task, Candidate("Review: {input}\nSentiment:"), rows)
    assert over == [rows[1]] and results[0].prediction in task.label_words and results[2].prediction in task.label_words
    answers = model.generate(["Q: 2+2?\nA:", "Q: " + "word " * 3000 + "\nA:"][:1], 4)
    assert len(answers) == 1
    with pytest.raises(TooLongError, match="row 1: the server refused the prompt: over its context of 2048"):
        model.generate(["Q: 2+2?\nA:", "Q: " + "word " * 3000 + "\nA:"], 4)
