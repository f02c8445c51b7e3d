"""A model behind an OpenAI-compatible server (vLLM, SGLang, llama-cpp-python, llama.cpp, Ollama, hosted).

``connect`` asks ``/v1/models`` which model to use, then probes how the server can score: exact prompt
log-probabilities (echo, vLLM's prompt_logprobs, SGLang's /generate), only the top-k next tokens, or
generation only. Every answer is kept in the on-disk response cache under this model's fingerprint.

A measured pitfall: llama-cpp-python's server (0.3.36) pairs each echoed prompt token with the NEXT
position's distribution when the model adds no start token of its own (the embedded SmolLM2 GGUF has
``add_bos_token=false``). The probe finds out by scoring the alphabet: where each token's listed
most-likely token is the token itself the pairing is right, where it is the next token it is late. Its plain
completions (no echo) pair right either way, so on such a server a word is scored by teacher forcing through
the top-k next-token lists of plain completions (k = 5000 there: exact for every token in that list) and the
prompt is sent as it is -- no start text in front that would change what is measured.
"""

from __future__ import annotations

import logging
import re
from collections import Counter

from ..errors import PromptSearchError, TooLongError
from . import dialects as d
from .base import Capabilities, Model
from .http_pool import HttpPool, ServerError
from .response_cache import ResponseCache, request_key

log = logging.getLogger(__name__)

# How servers refuse a prompt past their context (HTTP 400): OpenAI's wording, which vLLM and llama-cpp-python
# follow ("This model's maximum context length is 2048 tokens, however you requested 3019 tokens"), its error
# code, and SGLang's ("The input (3019 tokens) is longer than the model's context length (2048 tokens)").
CONTEXT_REFUSAL = re.compile(r"maximum context length|context_length_exceeded|longer than the model's context length"
                             r"|exceeds? (the )?context window", re.IGNORECASE)
_LIMIT = re.compile(r"maximum context length is (\d+)|context length \((\d+)|context window of (\d+)", re.IGNORECASE)
_ASKED = re.compile(r"requested (\d+) tokens|input \((\d+) tokens", re.IGNORECASE)


def too_long(error: ServerError, row: int) -> TooLongError | None:
    """The server's refusal of a prompt past its context as the scorer's TooLongError for ``row`` (the scorer
    names the example, and scores it wrong where a run reports); None for any other error."""
    text = str(error)
    if "HTTP 400" not in text or not CONTEXT_REFUSAL.search(text):
        return None

    def number(pattern):
        found = pattern.search(text)
        return int(next(g for g in found.groups() if g)) if found else None

    length, limit = number(_ASKED), number(_LIMIT)
    named = TooLongError(f"row {row}: the server refused the prompt: over its context" + (f" of {limit}" if limit else ""))
    named.row, named.length, named.limit = row, length, limit
    return named

PROBE = " red green blue" * 4
# Every token here differs from the next and is easy to predict, so a position whose listed most-likely token
# is its own token pairs right, and one whose most-likely token is the next one pairs late.
PAIRING_PROBE = " a b c d e f g h i j k l m n o p q r s t"
SCORING = ("auto",) + d.ALL
TOP_K = 20
SHORTCUT_K = 5000  # llama-cpp-python answers 5000 as fast as 20 (it sorts the whole vocabulary either way)


class ServedModel(Model):
    """Use ``ServedModel.connect``; the constructor only stores what connect found."""

    def __init__(self, pool: HttpPool, model_id: str, engine: str, dialect: str, late_echo: bool = False,
                 cache: ResponseCache | None = None, top_k: int = TOP_K, context_length: int | None = None,
                 server_report: dict | None = None):
        self.pool = pool
        self.model_id = model_id
        self.engine = engine
        self.dialect = dialect
        self.late_echo = late_echo  # echo pairs late: words are teacher-forced through plain top-k requests
        self.cache = cache
        self.top_k = top_k
        self.server_report = server_report or {}  # what /models says about the chosen model (see _pick_model)
        self.name = f"{pool.urls[0]}#{model_id}" if len(pool.urls) == 1 else f"{len(pool.urls)} servers#{model_id}"
        self.stats: Counter = Counter()
        self.capabilities = Capabilities(
            prompt_logprobs=dialect in d.EXACT, top_k_only=dialect in d.TOPK, token_ids=False, chat_template=True,
            context_length=context_length, white_box=False)

    @property
    def fingerprint(self) -> str:
        return f"served|{self.engine}|{self.model_id}|{self.dialect}" + ("|late-echo" if self.late_echo else "")

    @property
    def cache_identity(self) -> str:
        """What the response cache keys answers by: the fingerprint, plus which servers answered and what they
        report about the model's weights. Two deployments serving different weights under one model id must
        not share cached numbers; the fingerprint alone (engine, id, dialect) cannot tell them apart."""
        import hashlib
        import json

        report = json.dumps([sorted(self.pool.urls), self.server_report], sort_keys=True, default=str)
        return f"{self.fingerprint}|server:{hashlib.sha256(report.encode()).hexdigest()[:16]}"

    # ---- connecting ------------------------------------------------------------------------------
    @classmethod
    def connect(cls, urls: list[str], model_name: str | None = None, concurrency: int = 4, scoring: str = "auto",
                timeout: float = 120.0, retries: int = 3, use_cache: bool = True, cache_path=None) -> ServedModel:
        if scoring not in SCORING:
            raise PromptSearchError(f"unknown scoring {scoring!r}; use one of {', '.join(SCORING)}")
        pool = HttpPool(urls, concurrency=concurrency, timeout=timeout, retries=retries)
        model_id, engine, context_length, report = _pick_model(pool, model_name)
        model = cls(pool, model_id, engine, "generate", cache=ResponseCache(cache_path) if use_cache else None,
                    context_length=context_length, server_report=report)
        dialect = scoring if scoring != "auto" else model._probe_dialect()
        late = model._probe_late_echo() if dialect == "echo" else False
        top_k = model._probe_top_k() if dialect == "echo" else TOP_K
        if late and not top_k:
            raise PromptSearchError(f"{pool.urls[0]} pairs prompt log-probabilities with the wrong positions and "
                                    "lists no top-k next tokens; score with --scoring topk instead")
        probes = model.stats["probe_requests"]
        model = cls(pool, model_id, engine, dialect, late, model.cache, top_k=top_k, context_length=context_length,
                    server_report=report)
        model.stats["probe_requests"] = probes
        from .scoring_note import describe

        log.info("model %s on %s: %s", model_id, ", ".join(pool.urls), describe(model))
        if dialect not in d.EXACT or late:  # the README's promise: one line when scoring is less than exact
            log.warning("scoring: %s", describe(model))
        return model

    def _probe_dialect(self) -> str:
        """The best scoring this server offers. A probe it declines (4xx, fields missing) tries the next; a 5xx
        too, but if every probe failed on a 5xx the server is broken, and that first 5xx is the error."""
        broken = None
        asks = [(x, d.prompt_request(x, self.model_id, PROBE)) for x in d.EXACT]
        asks += [(x, d.topk_request(x, self.model_id, PROBE, self.top_k)) for x in d.TOPK]
        for dialect, (path, body, root) in asks:
            try:
                answer = self._probe(path, body, root)
                if dialect in d.EXACT:
                    if sum(v is not None for _, v in d.prompt_tokens(dialect, answer)) >= 3:
                        return dialect
                elif d.topk_entries(dialect, answer):
                    return dialect
            except d.BadAnswer:
                continue
            except ServerError as e:
                if "HTTP 4" in str(e):
                    continue
                if "HTTP 5" not in str(e):
                    raise
                broken = broken or e
        if broken is not None:
            raise broken
        return "generate"

    def _probe_late_echo(self) -> bool:
        """Whether the server pairs each echoed prompt token with the next position's distribution."""
        path, body, root = d.prompt_request("echo", self.model_id, PAIRING_PROBE)
        answer = self._probe(path, body, root)
        try:
            own, late = _pairing_votes(answer)
        except d.BadAnswer as e:
            raise ServerError(self.pool.urls[0], f"answered {path} with something unexpected: {e}") from None
        if own == late:
            raise PromptSearchError(f"{self.pool.urls[0]}: cannot tell how it pairs prompt log-probabilities with "
                                    "positions; score with --scoring topk (top-k next tokens) instead")
        if late > own:
            log.info("server pairs echoed prompt log-probabilities one position late; words are scored by "
                     "teacher forcing through top-%d lists instead", SHORTCUT_K)
        return late > own

    def _probe_top_k(self) -> int:
        """How long a top-k list the echo shortcut may ask for: 5000 where the server allows it (the longer the
        list, the more label words it answers), else 20 (vLLM's default cap), else 0 (no shortcut)."""
        for k in (SHORTCUT_K, TOP_K):
            try:
                path, body, root = d.topk_request("topk", self.model_id, PROBE, k)
                if d.topk_entries("topk", self._probe(path, body, root)):
                    return k
            except (ServerError, d.BadAnswer) as e:
                if isinstance(e, ServerError) and "HTTP 4" not in str(e):
                    raise
        return 0

    def _probe(self, path, body, root):
        self.stats["probe_requests"] += 1
        return self.pool.request(path, body, root)[1]

    # ---- the model interface -------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """An estimate (the server's tokenizer is not here): about 3 characters a token, rounded up."""
        return max(1, -(-len(text.encode("utf-8")) // 3))

    def _map_rows(self, fn, items: list, contexts: list) -> list:
        """``pool.map`` where each item is one of ``contexts`` (or starts with it): a refusal of a context past
        the server's context is the scorer's TooLongError naming that row, as a local model's is."""
        row = {c: i for i, c in reversed(list(enumerate(contexts)))}

        def one(item):
            try:
                return fn(item)
            except ServerError as e:
                named = too_long(e, row.get(item if isinstance(item, str) else item[0], 0))
                if named is None:
                    raise
                raise named from None

        return self.pool.map(one, items)

    def loglikelihoods(self, contexts, continuations):
        pairs = [(c, k) for c, ks in zip(contexts, continuations) for k in ks]
        if self.dialect == "echo":
            # A shortcut with the same numbers: one cheap top-k request per context serves every word that is
            # one listed token (llama-cpp-python's echo costs ~1 s a request, its top-k ~0.2 s: it sorts the
            # vocabulary once per returned token). Other words take the echo request.
            words = {}
            for c, k in pairs:
                words.setdefault(c, []).append(k)
            asks = list(words.items())
            tops = dict(zip(words, self._map_rows(lambda a: self._top(*a), asks, contexts) if self.top_k else [{}] * len(asks)))
            rest = self._forced if self.late_echo else self._exact
            values = self._map_rows(lambda p: tops[p[0]].get(p[1]) if p[1] in tops[p[0]] else rest(*p), pairs, contexts)
        elif self.dialect in d.EXACT:
            values = self._map_rows(lambda p: self._exact(*p), pairs, contexts)
        elif self.dialect in d.TOPK:
            values = self._map_rows(lambda p: self._topk(*p), pairs, contexts)
        else:
            raise PromptSearchError(f"{self.name} gives no log-probabilities (generation only): it can score "
                                    "generation tasks, not label words or log-likelihoods")
        out, it = [], iter(values)
        for ks in continuations:
            out.append([next(it) for _ in ks])
        return out

    def next_token_tables(self, contexts: list[str], keep, keep_name: str) -> list[tuple[dict[str, float], float]] | None:
        """The top-k next tokens after each context that ``keep(token_text)`` accepts (text -> log-probability),
        and the bound for any token outside the list: what label-word search reads from a served model (in
        process it reads the whole distribution). ``keep_name`` names the filter in the cache key. None where
        the server lists no next tokens."""
        if self.dialect in ("generate", "topk-chat") or not self.top_k:
            return None

        def one(context):
            kept = self._listing(context, lambda entries: {
                "kept": {t: v for t, v in entries.items() if keep(t)}, "bound": d.outside_topk(entries)},
                ["tables", keep_name])
            return kept["kept"], kept["bound"]

        return self.pool.map(one, contexts)

    def generate(self, texts, max_new_tokens, chat=False):
        def one(text):
            path, body, root = d.generate_request(self.model_id, text, max_new_tokens, chat)
            return self._ask(path, body, root, lambda a: d.generated_text(a, chat))

        return self._map_rows(one, texts, texts)

    # ---- internals -------------------------------------------------------------------------------
    def _exact(self, context: str, cont: str) -> float:
        if not context:
            raise PromptSearchError("a rendered prompt is empty; the template needs some text")
        path, body, root = d.prompt_request(self.dialect, self.model_id, context + cont)
        value, clean = self._ask(path, body, root, lambda a: d.suffix_logprob(d.prompt_tokens(self.dialect, a), cont,
                                                                             trailing=1 if self.dialect == "echo" else 0))
        if not clean:
            self.stats["merged_boundaries"] += 1
        return value

    def _listing(self, context: str, keep, key_extra):
        """``keep(entries)`` of the top-k next tokens after the context, through the cache (which holds only
        what ``keep`` returned; ``key_extra`` names it). A server that ends the text at once lists nothing
        (llama-cpp-python drops the end-of-text token's list), so then it is asked again with ``min_tokens``
        1, which bars the end token from the one generated token but not from the log-probabilities listed."""
        if not context:
            raise PromptSearchError("a rendered prompt is empty; the template needs some text")
        path, body, root = d.topk_request("topk", self.model_id, context, self.top_k)

        def reduce(answer):
            entries = d.topk_entries("topk", answer)
            return {"listed": bool(entries), "kept": keep(entries)}

        got = self._ask(path, body, root, lambda kept: kept, keep=reduce, key_extra=key_extra)
        if not got["listed"]:
            try:
                got = self._ask(path, {**body, "min_tokens": 1}, root, lambda kept: kept, keep=reduce, key_extra=key_extra)
            except ServerError as e:
                if "HTTP 4" not in str(e):  # a server that knows no min_tokens: keep the empty list's bound
                    raise
        return got["kept"]

    def _top(self, context: str, words: list[str]) -> dict[str, float]:
        """Which of these words are one of the top-k next tokens after the context, with their
        log-probabilities (a 5000-long list is ~140 KB; the cache keeps just these)."""
        return self._listing(context, lambda entries: {w: entries[w] for w in words if w in entries},
                             ["words", *sorted(set(words))])

    def _forced(self, context: str, cont: str) -> float:
        """A late-pairing echo server: teacher forcing through its plain completions' long top-k lists (the
        rule of ``_topk``); of each list the cache keeps the tokens the rest of the word starts with and the
        outside-the-list bound."""
        total, rest = 0.0, cont
        while rest:
            kept = self._listing(context, lambda entries, rest=rest: {
                "fits": {t: v for t, v in entries.items() if t and rest.startswith(t)},
                "bound": d.outside_topk(entries)}, ["forced", rest])
            if not kept["fits"]:
                self.stats["outside_topk"] += 1
                return total + kept["bound"]
            token = max(kept["fits"], key=len)
            total += kept["fits"][token]
            context, rest = context + token, rest[len(token):]
        return total

    def _topk(self, context: str, cont: str) -> float:
        """Teacher forcing through the top-k lists: take the longest listed token the rest of the word starts
        with, append it, ask again; once none fits, add the outside-the-top-k bound and stop."""
        total, rest = 0.0, cont
        while rest:
            path, body, root = d.topk_request(self.dialect, self.model_id, context, self.top_k)
            entries = self._ask(path, body, root, lambda a: d.topk_entries(self.dialect, a))
            self.stats["listed"] += bool(entries)
            if not entries:  # the text ended at once (no list), or a server that lists nothing: asked as _listing does
                entries = self._empty_list(path, body, root)
            fits = [t for t in entries if t and rest.startswith(t)]
            if not fits:
                self.stats["outside_topk"] += 1
                return total + d.outside_topk(entries)
            token = max(fits, key=len)
            total += entries[token]
            context, rest = context + token, rest[len(token):]
        return total

    def _empty_list(self, path: str, body: dict, root: bool) -> dict[str, float]:
        """An answer without a top-k list, asked again with ``min_tokens`` 1 (no end of text at once). A server
        that never lists a token (top_logprobs null or empty in every answer) gives nothing to score label words
        with: every word would get the same bound and every prediction tie, a run that searches nothing. So
        once two answers listed nothing and none ever listed anything, that is one line, not a score."""
        try:
            entries = self._ask(path, {**body, "min_tokens": 1}, root, lambda a: d.topk_entries(self.dialect, a))
        except ServerError as e:
            if "HTTP 4" not in str(e):  # a server that knows no min_tokens: keep the empty list's bound
                raise
            entries = {}
        if entries:
            self.stats["listed"] += 1
            return entries
        self.stats["empty_lists"] += 1
        if self.stats["empty_lists"] >= 2 and not self.stats["listed"]:
            raise ServerError(self.pool.urls[0], f"answered {path} with no top-k token list (top_logprobs null or "
                                                 "empty) every time, with min_tokens 1 too: it gives no "
                                                 "log-probabilities to score label words with; try another --scoring")
        return entries

    def _ask(self, path: str, body: dict, root: bool, read, keep=None, key_extra=None):
        """One request through the cache: answers are read (and so checked) before they are kept. ``keep``
        reduces a large answer to what ``read`` needs (``key_extra`` then names what it was reduced for)."""
        key = request_key(self.cache_identity, path, body if key_extra is None else {**body, "promptsearch_kept": key_extra})
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.stats["cache_hits"] += 1
                return read(hit)
        url, answer = self.pool.request(path, body, root)
        self.stats["requests"] += 1
        usage = answer.get("usage") if isinstance(answer, dict) else None
        billed = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        if isinstance(billed, int) and not isinstance(billed, bool) and billed >= 0:
            self.stats["prompt_tokens"] += billed
        try:
            if keep is not None:
                answer = keep(answer)
            value = read(answer)
        except (d.BadAnswer, TypeError, ValueError, AttributeError, KeyError, IndexError) as e:
            raise ServerError(url, f"answered {path} with something unexpected: {str(e)[:120]}") from None
        if self.cache is not None:
            self.cache.put(key, self.fingerprint, path, answer)
        return value


@d.reader
def _pairing_votes(answer) -> tuple[int, int]:
    """How many echoed positions list their own token as most likely, and how many the next token."""
    tokens = [t for t, _ in d.prompt_tokens("echo", answer)]
    tops = d._get(answer, "choices", 0, "logprobs", "top_logprobs")
    if not isinstance(tops, list):
        raise d.BadAnswer("logprobs.top_logprobs is not a list")
    own = late = 0
    for i, top in enumerate(tops[: len(tokens) - 1]):
        if isinstance(top, dict) and top:
            best = max(top, key=lambda t: d.logprob(top[t]))
            own += best == tokens[i]
            late += best == tokens[i + 1]
    return own, late


# What a server reports about a model's weights in /models (vLLM: root, the weights' path; llama.cpp: meta, with
# parameter count and file size): kept in the response cache's key. Not "created": vLLM stamps it per request.
REPORTED = ("id", "owned_by", "root", "parent", "meta", "max_model_len", "context_length")


def _pick_model(pool: HttpPool, model_name: str | None) -> tuple[str, str, int | None, dict]:
    url, listing = pool.request("/models")
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list) or not all(isinstance(m, dict) and isinstance(m.get("id"), str) for m in data):
        raise ServerError(url, "answered /models without a list of models with text ids; is this an OpenAI-compatible "
                               "/v1 URL?")
    ids = [m["id"] for m in data]
    if model_name is None:
        if len(ids) != 1:
            raise ServerError(url, f"hosts {len(ids)} models ({', '.join(ids[:5]) or 'none'}); pick one with --model-name")
        chosen = data[0]
    else:
        found = [m for m in data if m["id"] == model_name]
        if not found:
            raise ServerError(url, f"has no model {model_name!r}; it hosts: {', '.join(ids[:5]) or 'none'}")
        chosen = found[0]
    context = chosen.get("max_model_len") or chosen.get("context_length")
    if context is not None and (isinstance(context, bool) or not isinstance(context, int) or context < 1):
        raise ServerError(url, f"answered /models with a context length that is not a positive whole number: {context!r:.40}")
    report = {k: chosen[k] for k in REPORTED if k in chosen}
    return chosen["id"], str(chosen.get("owned_by") or "unknown")[:100], context or None, report
