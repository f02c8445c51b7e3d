"""Fakes shipped with the package so tests need no weights file (a tiny random Llama; a torch-free scripted
``FakeModel``), and the naive reference the scorer is checked against."""

from __future__ import annotations

import hashlib
from collections import Counter

from .models.base import Capabilities, Model


def tiny_model(seed: int = 0, vocab_words: int = 200, layers: int = 2):
    """A FrozenModel of a randomly initialised few-layer Llama with a word-level tokenizer.

    The tokenizer knows lowercase ASCII words seen in ``WORDS`` plus letters and punctuation, so
    any text encodes (unknown words fall back to characters)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from .models.local import FrozenModel

    chars = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;!?'\"-()[]{}/") + ["Ċ"]
    words = sorted(set(WORDS.split()))[:vocab_words]
    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2}
    for piece in chars + ["Ġ" + c for c in chars] + ["Ġ" + w for w in words] + words:
        vocab.setdefault(piece, len(vocab))
    bpe = models.WordPiece(vocab=vocab, unk_token="<unk>", max_input_chars_per_word=100, continuing_subword_prefix="")
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=True, pad_token_id=0, eos_token_id=1, bos_token_id=None)
    model = LlamaForCausalLM(config)
    return FrozenModel(model, fast, name=f"tiny-llama-{seed}")


def naive_loglik(model, context: str, continuation: str) -> float:
    """Reference log P(continuation | context): one sequence per forward pass, full logits, no batching,
    no caching. What the scorer's fast paths are checked against (tests, benchmarks/bench_scorer.py)."""
    import torch

    ctx, cont = model.encode_context(context), model.encode(continuation)
    ids = torch.tensor([ctx + cont], device=model.device)
    with torch.inference_mode():
        logprobs = torch.log_softmax(model.model(ids).logits[0].float(), -1)
    return sum(logprobs[len(ctx) - 1 + i, t].item() for i, t in enumerate(cont))


WORDS = """
the a an and or of to in is it was this that movie film review great good bad terrible awful
positive negative neutral yes no label sentiment answer input output text word words sentence
classify following question opposite antonym write one with only respond concisely best worst
fun boring love hate funny dull story acting plot character film's really very not quite
"""


def llama_cpp_loglik(llm, text: str, suffix: str) -> float:
    """Reference log P(suffix | the text before it) from ``llama_cpp.Llama`` in this process (built with
    ``logits_all=True``): the whole text in one evaluation, the suffix's tokens found from the end by their
    text, as the served client finds them. What the served scores are checked against."""
    import numpy as np

    tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    llm.reset()
    llm.eval(tokens)
    logits = np.asarray(llm.scores[: len(tokens)], dtype=np.float64)
    logprobs = logits - logits.max(-1, keepdims=True)
    logprobs -= np.log(np.exp(logprobs).sum(-1, keepdims=True))
    total, got, i = 0.0, 0, len(tokens)
    while got < len(suffix):
        i -= 1
        got += len(llm.detokenize([tokens[i]], prev_tokens=tokens[:i]).decode("utf-8", "ignore"))
        total += logprobs[i - 1, tokens[i]]
    return float(total)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` on a loopback port; ``kill`` is a real SIGKILL, ``start`` again reuses the port."""

    def __init__(self, gguf: str, port: int | None = None, log_path: str | None = None):
        import os

        self.gguf = gguf
        self.port = port or free_port()
        self.log_path = log_path or os.devnull
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, wait: float = 120.0) -> LlamaServer:
        import subprocess
        import sys
        import time
        import urllib.request

        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", self.gguf, "--host", "127.0.0.1",
             "--port", str(self.port), "--n_threads", "1"], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.death()} (log: {self.log_path})")
            try:
                with urllib.request.urlopen(self.url + "/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer /v1/models within {wait:g} s")

    def death(self) -> str | None:
        """None while the process runs (or was never started); else how it ended and its log's last lines,
        so a test that then fails to connect says the server died rather than "connection refused"."""
        if self.proc is None or self.proc.poll() is None:
            return None
        import signal

        code = self.proc.returncode
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        tail = ""
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read()[-4000:].decode("utf-8", "replace").strip().splitlines()[-5:]
            tail = "; last log lines: " + " | ".join(line.strip() for line in lines) if lines else ""
        except OSError:
            pass
        return f"llama_cpp.server process exited ({how}){tail}"

    def kill(self) -> None:
        import signal

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        import subprocess

        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class FakeModel(Model):
    """A torch-free model whose numbers are scripted: for search, bandit, objective and scorer-layer tests.

    ``loglik(context, continuation)`` gives each log-likelihood; by default a fixed function of the two
    texts (the same in every process) that favours a continuation whose word is in the context, so a
    prompt naming the right words scores better. ``answer(text)`` gives each greedy generation (by
    default the context's last word). ``calls`` counts the rows asked for, per method."""

    def __init__(self, name: str = "fake", loglik=None, answer=None, context_length: int = 4096):
        self.name = name
        self._loglik = loglik or _default_loglik
        self._answer = answer or (lambda text: (text.split() or [""])[-1])
        self.calls: Counter = Counter()
        self.capabilities = Capabilities(prompt_logprobs=True, top_k_only=False, token_ids=False,
                                         chat_template=False, context_length=context_length, white_box=False)

    @property
    def fingerprint(self) -> str:
        return f"fake:{self.name}"

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def loglikelihoods(self, contexts, continuations):
        self.calls["loglikelihoods"] += len(contexts)
        return [[self._loglik(c, k) for k in ks] for c, ks in zip(contexts, continuations)]

    def generate(self, texts, max_new_tokens, chat=False):
        self.calls["generate"] += len(texts)
        return [self._answer(t) for t in texts]


def _default_loglik(context: str, continuation: str) -> float:
    digest = hashlib.sha1(f"{context}\x00{continuation}".encode()).digest()
    noise = int.from_bytes(digest[:4], "big") / 2**32  # in [0, 1)
    word = continuation.strip().lower()
    return -2.0 - noise + (1.0 if word and word in context.lower() else 0.0)


class ScriptedServer:
    """A real HTTP server on 127.0.0.1 for fault and security tests: ``answer(path)`` returns (status, headers,
    body) for every GET and POST; ``seen`` records each request's path and headers. Content-Length is added
    unless the script sets it or a ``Connection`` header (a body that runs to the connection's end)."""

    def __init__(self, answer):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.seen: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                outer.seen.append((self.path, dict(self.headers)))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, headers, body = answer(self.path)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in headers and "Connection" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:  # the client stopped reading (a capped answer)
                    pass

            do_GET = do_POST = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

