"""What the scorer, the strategies and the CLI may ask of a model, whatever runs it.

Two kinds implement it: the in-process Hugging Face model (models/local.py: white-box; it batches with
models/hf_batching.py, holds soft prompts, and gradient strategies train against it) and a model behind
an OpenAI-compatible server (models/served.py). Each computes its own numbers: the scorer hands it
rendered texts and never branches on the kind. Callers ask ``capabilities``, never the class.
No heavy imports here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..errors import PromptSearchError


@dataclass(frozen=True)
class Capabilities:
    prompt_logprobs: bool  # exact log P(continuation | context) for any continuation
    top_k_only: bool  # only the k most likely next tokens: labels are scored by a stated rule
    token_ids: bool  # accepts prompts as token ids
    chat_template: bool  # can render a chat conversation (in process, or the server's /chat endpoint)
    context_length: int | None  # tokens, where known
    white_box: bool  # weights in this process: embeddings, gradients, full next-token distributions

    def describe(self) -> str:
        if self.white_box:
            return "in process: exact label log-likelihoods, embeddings and gradients"
        if self.prompt_logprobs:
            return "served: exact label log-likelihoods from prompt log-probabilities"
        if self.top_k_only:
            return "served, top-k only: labels scored from the top-k next tokens (rule in README)"
        return "served, generation only: classification tasks cannot be scored"


class Model(ABC):
    """The one interface: identity, capabilities, token counts, log-likelihoods, greedy generation."""

    name: str
    capabilities: Capabilities

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """Engine, model name/revision and numeric format: part of every cache key, so scores from two
        engines (or two quantisations) never mix."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of a text (served models without a tokenizer may estimate)."""

    @abstractmethod
    def loglikelihoods(self, contexts: list[str], continuations: list[list[str]]) -> list[list[float]]:
        """log P(continuation | context) for each context and each of its continuations."""

    @abstractmethod
    def generate(self, texts: list[str], max_new_tokens: int, chat: bool = False) -> list[str]:
        """Greedy continuation of each text, stopping at the first line end."""

    # ---- capabilities with a default: a model that has them overrides ---------------------------
    def set_batching(self, batch_size: int, max_batch_tokens: int) -> None:
        """Rows per forward pass and tokens per batch, where the model batches itself (in process)."""

    def format_chat(self, text: str) -> str | None:
        """``text`` as one user turn in the model's chat template, or None when the model applies its
        template itself on ``generate(..., chat=True)`` (a server's /chat endpoint)."""

    def register_soft_prompt(self, soft_id: str, embeddings) -> bool:
        """Make trained soft-prompt vectors usable under ``soft_id`` (``soft=`` of the scoring calls);
        True when they replace different vectors under that name. White-box only."""
        raise PromptSearchError(f"soft prompts need the model's embeddings in process; {self.name} is served")

    def drop_soft_prompt(self, soft_id: str) -> None:
        """Forget a soft prompt's vectors (a training probe's)."""

    def soft_prompt(self, soft_id: str | None):
        """The vectors registered under ``soft_id`` (None for None)."""
        if soft_id is not None:
            raise PromptSearchError(f"soft prompt {soft_id!r}: {self.name} holds no soft prompts (it is served)")

    def clear_cache(self) -> None:
        """Drop what the model keeps between calls to run faster (in process: shared-prefix caches)."""

    def next_token_logprobs(self, contexts: list[str], keep=None, purpose: str = ""):
        """The next-token log-probabilities after each context as (matrix N x V, the V token texts), or
        None when the model gives none. In process: the whole distribution over the vocabulary. Served
        top-k: the tokens listed for any context that ``keep(token)`` accepts, a token missing from a
        context's list at that list's outside bound (the most it could be); ``purpose`` names the
        request in its cache."""
        tables = getattr(self, "next_token_tables", None)
        found = tables(contexts, keep or (lambda token: True), purpose) if tables else None
        if not found:
            return None
        words = sorted({w for listed, _ in found for w in listed})
        if not words:
            return None
        import torch

        index = {w: i for i, w in enumerate(words)}
        logprobs = torch.empty(len(contexts), len(words))
        for row, (listed, bound) in enumerate(found):
            logprobs[row].fill_(bound)
            for w, v in listed.items():
                logprobs[row, index[w]] = v
        return logprobs, words


def require_chat_template(model) -> None:
    """Refuse, in one line, --chat on a model whose tokenizer has no chat template (nothing to render with)."""
    caps = getattr(model, "capabilities", None)
    if caps is not None and not caps.chat_template:
        raise PromptSearchError(f"--chat: {getattr(model, 'name', 'this model')} has no chat template; drop --chat")


def require_white_box(model, who: str, needs: str) -> None:
    """Refuse, in one line, a strategy that needs the weights in process (embeddings, gradients)."""
    caps = getattr(model, "capabilities", None)
    if caps is None or not caps.white_box:
        raise PromptSearchError(
            f"{who} needs {needs}, which only an in-process model gives; {getattr(model, 'name', 'this model')} "
            "is served over HTTP. Use --model PATH (a local model) for it, or another strategy")
