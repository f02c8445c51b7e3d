"""Served models without a model: the response shapes of each engine (vLLM and SGLang recorded from their
documented formats; the others as llama-cpp-python and OpenAI return them), the on-disk response cache,
and faults against a real misbehaving HTTP server on 127.0.0.1, each ending in one line."""

import math
import sqlite3

import pytest

from promptsearch.errors import PromptSearchError
from promptsearch.models import dialects as d
from promptsearch.models.http_pool import HttpPool, ServerError
from promptsearch.models.response_cache import ResponseCache, request_key
from promptsearch.models.served import ServedModel

from .served_fixture import FakeServer, free_port

# llama-cpp-python 0.3.36, echo + logprobs, prompt "Sentiment: positive": the generated "\n" comes last.
LLAMA_CPP_ECHO = {"choices": [{"text": "Sentiment: positive\n", "index": 0, "logprobs": {
    "tokens": ["Sent", "iment", ":", " positive", "\n"], "text_offset": [0, 4, 9, 10, 19],
    "token_logprobs": [None, -6.2, -11.3, -0.9, -0.5], "top_logprobs": [None, {}, {}, {}, {}]}}],
    "usage": {"prompt_tokens": 4, "completion_tokens": 1}}
# vLLM /v1/completions with prompt_logprobs=0 (vllm.logprobs.Logprob as JSON): None for the first token.
VLLM_PROMPT_LOGPROBS = {"choices": [{"index": 0, "text": "\n", "prompt_logprobs": [
    None, {"1077": {"logprob": -6.2, "rank": 40, "decoded_token": "iment"}},
    {"42": {"logprob": -11.3, "rank": 900, "decoded_token": ":"}},
    {"3967": {"logprob": -0.9, "rank": 1, "decoded_token": " positive"}}]}]}
# SGLang /generate with return_logprob, logprob_start_len=0, return_text_in_logprobs: [logprob, id, text].
SGLANG_GENERATE = {"text": "", "meta_info": {"input_token_logprobs": [
    [None, 9, "Sent"], [-6.2, 1077, "iment"], [-11.3, 42, ":"], [-0.7, 1, " very"], [-0.2, 3967, " positive"]],
    "output_token_logprobs": []}}


def test_echo_finds_the_label_from_the_end_and_skips_the_generated_token():
    tokens = d.prompt_tokens("echo", LLAMA_CPP_ECHO)
    assert d.suffix_logprob(tokens, " positive", trailing=1) == (-0.9, True)
    without = {**LLAMA_CPP_ECHO, "choices": [{"logprobs": {k: v[:4] for k, v in LLAMA_CPP_ECHO["choices"][0]["logprobs"].items()}}]}
    assert d.suffix_logprob(d.prompt_tokens("echo", without), " positive", trailing=1) == (-0.9, True)


def test_vllm_prompt_logprobs_and_sglang_input_logprobs():
    assert d.suffix_logprob(d.prompt_tokens("vllm", VLLM_PROMPT_LOGPROBS), " positive") == (-0.9, True)
    total, clean = d.suffix_logprob(d.prompt_tokens("sglang", SGLANG_GENERATE), " very positive")
    assert math.isclose(total, -0.9) and clean
    path, body, root = d.prompt_request("sglang", "m", "x")
    assert path == "/generate" and root and body["logprob_start_len"] == 0 and body["return_logprob"]
    path, body, root = d.prompt_request("vllm", "m", "x")
    assert body["prompt_logprobs"] == 0 and not root


def test_a_token_merged_across_the_boundary_is_counted_and_flagged():
    tokens = [("Answer", -1.0), (": pos", -2.0), ("itive", -0.5)]
    assert d.suffix_logprob(tokens, "positive") == (-2.5, False)


def test_missing_fields_are_a_bad_answer():
    with pytest.raises(d.BadAnswer, match="logprobs"):
        d.prompt_tokens("echo", {"choices": [{"text": "x"}]})
    with pytest.raises(d.BadAnswer):
        d.suffix_logprob([("a", None)], "a")


def test_topk_rule_outside_the_list_is_an_upper_bound():
    entries = {" positive": math.log(0.6), " negative": math.log(0.3)}
    assert math.isclose(d.outside_topk(entries), math.log(0.1))  # 1 - 0.9 is below p_k = 0.3
    chat = {"choices": [{"logprobs": {"content": [{"token": "yes", "logprob": -0.1,
                                                   "top_logprobs": [{"token": "yes", "logprob": -0.1}]}]}}]}
    assert d.topk_entries("topk-chat", chat) == {"yes": -0.1}
    assert d.topk_entries("topk", {"choices": [{"logprobs": {"top_logprobs": []}}]}) == {}


def test_response_cache_is_sqlite_wal_keyed_by_fingerprint_and_request(tmp_path):
    cache = ResponseCache(tmp_path / "r.sqlite")
    k1, k2 = request_key("A", "/completions", {"prompt": "x"}), request_key("B", "/completions", {"prompt": "x"})
    assert k1 != k2
    cache.put(k1, "A", "/completions", {"v": 1})
    cache.put(k2, "B", "/completions", {"v": 2})
    assert cache.get(k1) == {"v": 1} and cache.get("nope") is None
    assert cache.info()["entries"] == 2 and cache.info()["models"] == {"A": 1, "B": 1}
    assert sqlite3.connect(tmp_path / "r.sqlite").execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert cache.clear("A") == 1 and cache.info()["entries"] == 1
    assert cache.clear() == 1 and cache.info()["entries"] == 0


def _connect(url, **kw):
    kw.setdefault("timeout", 2.0)
    kw.setdefault("retries", 1)
    return ServedModel.connect([url], use_cache=False, **kw)


def test_server_down_is_one_line_naming_it():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ServerError) as e:
        _connect(url)
    assert str(e.value).startswith(f"server {url}: cannot connect") and "\n" not in str(e.value)


def test_wrong_model_name_lists_what_the_server_hosts():
    with FakeServer("500", models=("alpha", "beta")) as s:
        with pytest.raises(ServerError, match=r"has no model 'gamma'; it hosts: alpha, beta"):
            _connect(s.url, model_name="gamma")
        with pytest.raises(ServerError, match="hosts 2 models .*--model-name"):
            _connect(s.url)


@pytest.mark.parametrize("mode,message", [
    ("500", r"HTTP 500 on /completions: internal failure \(after 2 tries\)"),
    ("garbage", "not JSON"),
    ("sleep", r"no answer within 0.5 s on /completions \(after 2 tries\)"),
])
def test_http_500_garbage_and_timeout_are_one_line(mode, message):
    with FakeServer(mode, sleep=3) as s, pytest.raises(ServerError, match=message) as e:
        _connect(s.url, timeout=0.5)
    assert "\n" not in str(e.value)


def test_answers_without_the_promised_fields_are_named(tmp_path):
    with FakeServer("nonsense") as s:
        model = ServedModel(HttpPool([s.url], retries=0), "fake-model", "fake", "echo")
        with pytest.raises(ServerError, match="answered /completions with something unexpected: no choices.0.logprobs"):
            model.loglikelihoods(["Review: fine\nSentiment:"], [[" positive"]])
        gen = ServedModel(HttpPool([s.url], retries=0), "fake-model", "fake", "generate")
        with pytest.raises(PromptSearchError, match="generation only"):
            gen.loglikelihoods(["x"], [[" y"]])


def test_api_key_comes_from_the_environment_only(monkeypatch):
    monkeypatch.setenv("PROMPTSEARCH_API_KEY", "sk-test-not-written-anywhere")
    with FakeServer("500") as s, pytest.raises(ServerError):
        _connect(s.url, retries=0)
    assert s.requests[0][1].get("Authorization") == "Bearer sk-test-not-written-anywhere"


def test_replicas_share_the_requests():
    with FakeServer("nonsense") as a, FakeServer("nonsense") as b:
        pool = HttpPool([a.url, b.url], concurrency=2, retries=0)
        pool.map(lambda i: pool.request("/completions", {"i": i}), list(range(6)))
    assert len(a.requests) == 3 and len(b.requests) == 3


def test_cli_errors_are_one_line_without_traceback(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from promptsearch.cli import main

    monkeypatch.setenv("PROMPTSEARCH_CACHE", str(tmp_path / "cache"))
    down = f"http://127.0.0.1:{free_port()}/v1"
    with FakeServer("500", models=("alpha",)) as s:
        for args, message in ((["--model", down], f"error: server {down}: cannot connect"),
                              (["--model", s.url, "--model-name", "beta"], "has no model 'beta'; it hosts: alpha"),
                              (["--model-name", "beta"], "--model-name picks a model on a server")):
            r = CliRunner().invoke(main, ["eval", "--limit", "2", "--timeout", "1", *args])
            assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output
            assert len(r.output.strip().splitlines()) == 1


def test_a_proposer_model_writes_what_the_search_asks_for(tiny):
    from promptsearch.scoring import Scorer
    from promptsearch.testing import tiny_model

    other = tiny_model(seed=1)
    texts = ["Write a better instruction: classify the review", "Paraphrase: the movie was good"]
    scorer = Scorer(tiny, proposer=other)
    by_proposer = scorer.complete(texts, max_new_tokens=6)
    assert by_proposer == Scorer(other).complete(texts, max_new_tokens=6)
    other.stats.clear()
    tiny.stats.clear()
    scorer.complete(texts, max_new_tokens=6)
    assert tiny.stats["rows"] == 0 and other.stats["rows"] == 2  # the scored model ran nothing
    assert tiny.capabilities.white_box and tiny.generate(texts, 6) == Scorer(tiny).complete(texts, 6)


def test_retry_after_is_waited_before_the_next_try():
    """A rate-limited server's Retry-After (seconds) is waited, not the shorter backoff; then the answer is read."""
    import time

    from promptsearch.testing import ScriptedServer

    answers = iter([(429, {"Retry-After": "1"}, b'{"error": "slow down"}'), (200, {}, b'{"data": []}')])
    server = ScriptedServer(lambda path: next(answers))
    try:
        start = time.monotonic()
        _, answer = HttpPool([server.url], backoff=0.01).request("/models")
        assert answer == {"data": []} and len(server.seen) == 2
        assert time.monotonic() - start >= 1.0
    finally:
        server.close()


def test_a_retry_after_past_the_cap_is_reported_at_once():
    from promptsearch.testing import ScriptedServer

    server = ScriptedServer(lambda path: (503, {"Retry-After": "3600"}, b'{"error": "maintenance"}'))
    try:
        with pytest.raises(PromptSearchError, match=r"HTTP 503 on /models.*asks to wait 3600 s"):
            HttpPool([server.url], backoff=0.01).request("/models")
        assert len(server.seen) == 1  # no try wasted before the time it named
    finally:
        server.close()


@pytest.mark.parametrize("value, expected", [("7", 7.0), ("0", 0.0), ("-5", None), ("abc", None), ("nan", None),
                                             ("inf", None), ("", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_retry_after_values(value, expected):
    from promptsearch.models.http_pool import retry_after

    assert retry_after(value) == expected


@pytest.mark.parametrize("detail, length, limit", [
    # llama-cpp-python and vLLM (OpenAI's wording), SGLang's
    (("This model's maximum context length is 2048 tokens, however you requested 3019 tokens (3018 in your prompt; "
      "1 for the completion)."), 3019, 2048),
    (("This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4999 in the messages, "
      "1 in the completion)."), 5000, 4096),
    ("The input (9000 tokens) is longer than the model's context length (8192 tokens).", 9000, 8192),
    ('{"error": {"code": "context_length_exceeded", "message": "too long"}}', None, None),
])
def test_a_servers_refusal_of_a_long_prompt_is_a_row_too_long(detail, length, limit):
    from promptsearch.models.http_pool import ServerError
    from promptsearch.models.served import too_long

    named = too_long(ServerError("http://h/v1", f"HTTP 400 on /completions: {detail}"), 3)
    assert (named.row, named.length, named.limit) == (3, length, limit)
    assert too_long(ServerError("http://h/v1", f"HTTP 500 on /completions: {detail}"), 3) is None
    assert too_long(ServerError("http://h/v1", "HTTP 400 on /completions: unknown field 'echo'"), 3) is None
