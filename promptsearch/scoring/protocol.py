"""What a search, a strategy or the CLI may ask of a scorer, declared once (``ScorerLike``), and the base of
the scorers that wrap another one (``WrappedScorer``: executors.ChunkedScorer, multitask.MultiScorer,
feedback/blend.BlendedScorer). A wrapper changes ``evaluate`` (and ``preload`` where its results differ
from the inner scorer's); every other call of the protocol is handed on, by name, to the inner scorer."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class ScorerLike(Protocol):
    model: object
    proposer: object
    chat: bool
    batch_size: int
    stats: object

    def evaluate(self, task, candidate, examples) -> list: ...
    def preload(self, task, candidate, results: dict) -> None: ...
    def forget(self, task, candidate, examples) -> None: ...
    def cost(self, candidate) -> int: ...
    def once_costs(self, candidate) -> dict: ...
    def keys(self, task, candidate, example_keys) -> list: ...
    def mode(self, task, candidate) -> tuple: ...
    def render(self, prompt: str, text: str) -> str: ...
    def contexts(self, prompt, examples) -> list[str]: ...
    def max_new_tokens(self, task) -> int: ...
    def classify(self, prompt, examples, label_words, soft=None, verbalizer=()) -> list: ...
    def generate(self, prompt, examples, max_new_tokens: int, soft=None, metric: str = "exact_match") -> list: ...
    def loglikelihoods(self, contexts, continuations, soft=None, ids=None) -> list: ...
    def complete(self, texts: list[str], max_new_tokens: int = 48) -> list[str]: ...
    def register_soft_prompt(self, soft_id: str, embeddings) -> None: ...
    def drop_soft_prompt(self, soft_id: str) -> None: ...
    def soft_vectors(self, soft_id): ...
    def clear_cache(self) -> None: ...


class WrappedScorer:
    """The protocol handed on to ``self.inner``; subclasses override what they change."""

    def __init__(self, inner):
        self.inner = inner

    model = property(lambda self: self.inner.model)
    proposer = property(lambda self: self.inner.proposer)
    chat = property(lambda self: self.inner.chat)
    batch_size = property(lambda self: self.inner.batch_size)
    stats = property(lambda self: self.inner.stats)
    calibration = property(lambda self: self.inner.calibration)  # the driver's bias rows (workers keep their own)

    def evaluate(self, task, candidate, examples):
        return self.inner.evaluate(task, candidate, examples)

    def preload(self, task, candidate, results):
        return self.inner.preload(task, candidate, results)

    def forget(self, task, candidate, examples):
        return self.inner.forget(task, candidate, examples)

    def cost(self, candidate):
        return self.inner.cost(candidate)

    def once_costs(self, candidate):
        return self.inner.once_costs(candidate)

    def keys(self, task, candidate, example_keys):
        return self.inner.keys(task, candidate, example_keys)

    def mode(self, task, candidate):
        return self.inner.mode(task, candidate)

    def render(self, prompt, text):
        return self.inner.render(prompt, text)

    def contexts(self, prompt, examples):
        return self.inner.contexts(prompt, examples)

    def max_new_tokens(self, task):
        return self.inner.max_new_tokens(task)

    def classify(self, prompt, examples, label_words, soft=None, verbalizer=()):
        return self.inner.classify(prompt, examples, label_words, soft=soft, verbalizer=verbalizer)

    def generate(self, prompt, examples, max_new_tokens, soft=None, metric="exact_match"):
        return self.inner.generate(prompt, examples, max_new_tokens, soft=soft, metric=metric)

    def loglikelihoods(self, contexts, continuations, soft=None, ids=None):
        return self.inner.loglikelihoods(contexts, continuations, soft=soft, ids=ids)

    def complete(self, texts, max_new_tokens=48):
        return self.inner.complete(texts, max_new_tokens)

    def register_soft_prompt(self, soft_id, embeddings):
        return self.inner.register_soft_prompt(soft_id, embeddings)

    def drop_soft_prompt(self, soft_id):
        return self.inner.drop_soft_prompt(soft_id)

    def soft_vectors(self, soft_id):
        return self.inner.soft_vectors(soft_id)

    def clear_cache(self):
        return self.inner.clear_cache()

    def prefetch(self, task, requests) -> None:
        """Score several requests' missing pairs in one go, where the inner scorer can (executors)."""
        prefetch = getattr(self.inner, "prefetch", None)
        if prefetch is not None:
            prefetch(task, requests)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
