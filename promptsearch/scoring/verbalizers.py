"""A verbalizer of several words per class (label-word expansion, as in knowledgeable prompt-tuning, Hu et al. 2022):
besides its label word, a class may name more words, and its score is the log of the summed probability of them all.
A small model spreads a class over many words ("Apple", "software", "Internet" for technology); one word reads a
slice of that mass. The label word stays what a prediction prints."""

from __future__ import annotations

import math

from ..errors import PromptSearchError


def check(label_words, verbalizer) -> None:
    """One word list per class (or none at all)."""
    if verbalizer and len(verbalizer) != len(label_words):
        raise PromptSearchError(f"verbalizer: {len(verbalizer)} word lists for {len(label_words)} classes; give one per "
                                "class, in label order")


def words(label_words, verbalizer) -> list[str]:
    """Every word scored: the label words in class order, then each class's extra words."""
    return list(label_words) + [w for extra in verbalizer for w in extra]


def class_scores(logprobs: list[float], label_words, verbalizer) -> list[float]:
    """One score per class from the scores of ``words(label_words, verbalizer)``: log of the summed probabilities."""
    if not verbalizer:
        return list(logprobs)
    n = len(label_words)
    out, at = [], n
    for c, extra in enumerate(verbalizer):
        group = [logprobs[c]] + list(logprobs[at:at + len(extra)])
        at += len(extra)
        top = max(group)
        out.append(top if top == -math.inf else top + math.log(sum(math.exp(x - top) for x in group)))
    return out
