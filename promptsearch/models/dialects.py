"""Request bodies and response readers for the ways servers give log-probabilities.

- ``echo``: OpenAI legacy completions with ``echo`` + ``logprobs`` (llama-cpp-python's server, vLLM):
  ``choices[0].logprobs`` has ``tokens`` and ``token_logprobs`` for the prompt, then the generated token.
- ``vllm``: vLLM's ``prompt_logprobs`` extension: ``choices[0].prompt_logprobs``, one entry per prompt token
  (``None`` first), each ``{token_id: {"logprob", "rank", "decoded_token"}}``.
- ``sglang``: SGLang's native ``/generate`` with ``return_logprob`` and ``logprob_start_len: 0``:
  ``meta_info.input_token_logprobs``, each ``[logprob, token_id, text]`` (``None`` first).
- ``topk`` / ``topk-chat``: only the k most likely next tokens (llama.cpp's llama-server, Ollama, chat APIs).
Every reader returns plain values or raises ``BadAnswer`` naming what was missing.
"""

from __future__ import annotations

import functools
import math

EXACT = ("echo", "vllm", "sglang")
TOPK = ("topk", "topk-chat")
ALL = EXACT + TOPK + ("generate",)


class BadAnswer(ValueError):
    """A response without the fields its dialect promises (a garbage answer)."""


def reader(fn):
    """A reader of server answers raises only BadAnswer: a field of the wrong type (a list where text belongs,
    null where a table belongs) is a bad answer like a missing one, never a traceback."""
    @functools.wraps(fn)
    def read(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BadAnswer:
            raise
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as e:
            raise BadAnswer(f"a field of the wrong type ({type(e).__name__}: {str(e)[:80]})") from None
    return read


# The least log-probability a server may give: far below any real token's (float32 logits give at most a few
# hundred below 0; OpenAI floors at -9999). -Infinity, or -1e308 that two tokens' sum turns into -inf, would
# make calibration's differences NaN (-inf - -inf) and print NaN into JSON.
LEAST_LOGPROB = -1e5


def logprob(value, what: str = "a log-probability") -> float:
    """A log-probability as a server must give it: a finite number from LEAST_LOGPROB to 0 (rounding aside)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value > 1e-4 \
            or value < LEAST_LOGPROB:
        raise BadAnswer(f"{what} is {value!r:.40}, not a log-probability")
    return float(value)


def _get(obj, *path):
    for step in path:
        try:
            obj = obj[step]
        except (KeyError, IndexError, TypeError):
            raise BadAnswer(f"no {'.'.join(map(str, path))} in the answer") from None
    return obj


# ---- exact prompt log-probabilities: one request per (context + continuation) -----------------------
def prompt_request(dialect: str, model: str, text: str) -> tuple[str, dict, bool]:
    """(path, body, path is at the server root) asking for the log-probability of every token of text."""
    if dialect == "echo":
        # max_tokens 1, not 0: llama-cpp-python reads 0 as "no limit".
        return "/completions", {"model": model, "prompt": text, "echo": True, "logprobs": 1, "max_tokens": 1,
                                "temperature": 0}, False
    if dialect == "vllm":
        return "/completions", {"model": model, "prompt": text, "prompt_logprobs": 0, "max_tokens": 1,
                                "temperature": 0}, False
    if dialect == "sglang":
        return "/generate", {"text": text, "sampling_params": {"max_new_tokens": 0, "temperature": 0},
                             "return_logprob": True, "logprob_start_len": 0, "return_text_in_logprobs": True}, True
    raise ValueError(dialect)


@reader
def prompt_tokens(dialect: str, answer) -> list[tuple[str, float | None]]:
    """(token text, log-probability) for each prompt token; with ``echo`` the list may end with the
    generated token (llama-cpp-python leaves it out, OpenAI and vLLM keep it): see ``suffix_logprob``."""
    if dialect == "echo":
        lp = _get(answer, "choices", 0, "logprobs")
        tokens, values = _get(lp, "tokens"), _get(lp, "token_logprobs")
        if not isinstance(tokens, list) or not isinstance(values, list) or len(tokens) != len(values):
            raise BadAnswer("logprobs.tokens and logprobs.token_logprobs do not match")
        return [(_text(t), None if v is None else logprob(v)) for t, v in zip(tokens, values)]
    if dialect == "vllm":
        rows = _get(answer, "choices", 0, "prompt_logprobs")
        out = []
        for row in rows or []:
            if row is None:
                out.append(("", None))
                continue
            entry = next(iter(row.values()))  # prompt_logprobs=0: the prompt token only
            value = entry.get("logprob")
            out.append((_text(entry.get("decoded_token") or ""), None if value is None else logprob(value)))
        return out
    if dialect == "sglang":
        rows = _get(answer, "meta_info", "input_token_logprobs")
        return [(_text(r[2]) if len(r) > 2 and r[2] is not None else "", None if r[0] is None else logprob(r[0]))
                for r in rows]
    raise ValueError(dialect)


def suffix_logprob(tokens: list[tuple[str, float | None]], suffix: str, trailing: int = 0) -> tuple[float, bool]:
    """Sum of the log-probabilities of the last tokens that spell ``suffix`` (located by text, from the
    end, so whatever the server did at the start cannot shift it), after dropping up to ``trailing``
    generated tokens at the very end. Returns (sum, clean): not clean when the first of those tokens also
    holds text before the suffix (the tokenizer merged across the boundary; that token is counted)."""
    texts = [t for t, _ in tokens]
    end = len(tokens)  # when no cut spells the suffix (text split inside a character), count from the end
    for drop in range(min(trailing, len(tokens)) + 1):
        if "".join(texts[: len(tokens) - drop]).endswith(suffix):
            end = len(tokens) - drop
            break
    need, got, total = len(suffix), 0, 0.0
    i = end
    while got < need:
        i -= 1
        if i < 0:
            raise BadAnswer(f"the answer's tokens do not spell the continuation {suffix!r}")
        text, value = tokens[i]
        if value is None or not isinstance(value, (int, float)) or math.isnan(value):
            raise BadAnswer(f"no log-probability for the token {text!r} of {suffix!r}")
        got += len(text)
        total += float(value)
    return total, got == need


# ---- top-k only ------------------------------------------------------------------------------------
def topk_request(dialect: str, model: str, text: str, k: int) -> tuple[str, dict, bool]:
    if dialect == "topk":
        return "/completions", {"model": model, "prompt": text, "max_tokens": 1, "logprobs": k, "temperature": 0}, False
    return "/chat/completions", {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 1,
                                 "logprobs": True, "top_logprobs": k, "temperature": 0}, False


def _text(value) -> str:
    if not isinstance(value, str):
        raise BadAnswer(f"a token is {type(value).__name__}, not text")
    return value


@reader
def topk_entries(dialect: str, answer) -> dict[str, float]:
    """token text -> log-probability of the k most likely next tokens; {} when the model ended the text
    at once (an end-of-text token comes with no list)."""
    if dialect == "topk":
        lp = _get(answer, "choices", 0, "logprobs")
        tops = _get(lp, "top_logprobs") if lp is not None else []
        if not tops:
            return {}
        if not isinstance(tops, list) or not isinstance(tops[0], dict):
            raise BadAnswer("top_logprobs holds no token table")
        return {_text(t): logprob(v) for t, v in tops[0].items()}
    lp = _get(answer, "choices", 0, "logprobs")
    rows = _get(lp, "content") if lp is not None else []
    if not rows:
        return {}
    return {_text(r["token"]): logprob(r["logprob"]) for r in _get(rows, 0, "top_logprobs")}


def outside_topk(entries: dict[str, float]) -> float:
    """The stated rule for a word outside the top k: the most it could be, log min(p_k, 1 - sum of top k);
    log 1e-12 when the server listed nothing (the model ended the text there)."""
    if not entries:
        return math.log(1e-12)
    probs = [math.exp(v) for v in entries.values()]
    rest = max(1.0 - sum(probs), 1e-12)
    return math.log(min(min(probs), rest))


# ---- generation -----------------------------------------------------------------------------------
def generate_request(model: str, text: str, max_tokens: int, chat: bool) -> tuple[str, dict, bool]:
    common = {"model": model, "max_tokens": max_tokens, "temperature": 0, "stop": ["\n"]}
    if chat:
        return "/chat/completions", {**common, "messages": [{"role": "user", "content": text}]}, False
    return "/completions", {**common, "prompt": text}, False


@reader
def generated_text(answer, chat: bool) -> str:
    text = _get(answer, "choices", 0, "message", "content") if chat else _get(answer, "choices", 0, "text")
    if text is None:
        return ""
    if not isinstance(text, str):
        raise BadAnswer("the generated text is not a string")
    return text
