"""Template enumeration: instruction phrasings x input/answer formats x label words.

Searched as coordinate ascent rather than the full product (which racing could not afford):
formats first, then label words on the best formats, then instructions on the best templates.
Label words are themselves searched as in LM-BFF (Gao et al. 2021): for each class, the vocabulary
words the model ranks highest after that class's train examples, relative to all classes. Last, the
best two templates calibrated (contextual and domain; calibration.py), kept if dev agrees.
"""

from __future__ import annotations

import logging

from promptsearch.candidate import Candidate
from promptsearch.scoring import calibration
from promptsearch.strategy import SearchContext, Strategy

from . import library

log = logging.getLogger(__name__)
# The phases in order, by where the label-word search goes: on the seed prompt before anything else, on the best
# formats, or on the best instructed templates. After the formats by default: with a few dozen labelled rows and
# 800 evaluations the last place was never reached (0 label-word candidates in 15 runs of the few-label protocol);
# there it scored +0.006 on the development split (better in 3 task-draws, worse in 1; AG News +0.025, where its
# label words won), and +0.002 on top of similar:16 (a tie: better in 2, worse in 3). At the start, before any
# format, it scored -0.037 (SST-2 -0.095: label words won dev on the seed prompt and did not hold).
# docs/decisions.md, 2026-12-02 (evening).
LABEL_PHASES = {
    "start": ("labels", "formats", "instructions", "calibrations"),
    "after-formats": ("formats", "labels", "instructions", "calibrations"),
    "after-instructions": ("formats", "instructions", "labels", "calibrations"),
}


class TemplateEnumeration(Strategy):
    name = "templates"
    description = "Enumerate instruction phrasings x input/answer formats x label words (LM-BFF label search)."

    def __init__(self, top: int = 3, label_candidates: int = 4, label_examples: int = 16, search_labels: bool = True,
                 calibrations: tuple = ("contextual", "domain"), labels_at: str = "after-formats",
                 verbalizer_size: int = 1):
        self.top = top
        self.label_candidates = label_candidates
        self.label_examples = label_examples
        self.search_labels = search_labels
        library.check_calibrations(calibrations)
        self.calibrations = tuple(calibrations)  # last phase: calibrated variants of the best templates
        # where the label-word phase goes: a small budget may never reach a late phase
        if labels_at not in LABEL_PHASES:
            raise ValueError(f"labels_at must be one of {sorted(LABEL_PHASES)}, not {labels_at!r}")
        self.phases = LABEL_PHASES[labels_at]
        # words per class of the verbalizer proposed first in the label-word phase (1: none); off by default, as in
        # clarify (its comment has the measurement)
        self.verbalizer_size = verbalizer_size
        self._scores: dict = {}  # prompt -> the word scores after it (label words and verbalizers)
        self._masks: dict = {}  # per vocabulary: which tokens can be label words (label_words works before start)

    def start(self, context: SearchContext) -> None:
        self._phase = 0
        self._queue: list[Candidate] = []
        self._scores: dict = {}  # prompt -> the word scores after it (label words and verbalizers)

    def propose(self, context: SearchContext, n: int) -> list[Candidate]:
        while not self._queue and self._phase < len(self.phases):
            self._queue = self._next_phase(context, self.phases[self._phase])
            self._phase += 1
        batch, self._queue = self._queue[:n], self._queue[n:]
        return batch

    def _next_phase(self, ctx: SearchContext, phase: str) -> list[Candidate]:
        task = ctx.task
        best = ctx.best(self.top)
        if phase == "formats":  # bare formats
            out = []
            for fmt in library.formats(task):
                out.append(Candidate(fmt, strategy=self.name, edit="format"))
            return out
        if phase == "instructions":  # instructions on the best templates so far
            out = []
            for base in best:
                for instruction in library.instructions(task):
                    if instruction in base.prompt:
                        continue
                    out.append(Candidate(instruction + "\n" + base.prompt, base.label_words, strategy=self.name,
                                         parents=(base.id,), edit="instruction"))
            return out
        if task.kind != "classification" or not task.label_words:
            return []  # no label words of its own (a multi-task run: each task keeps its own): nothing to search
        if phase == "calibrations":  # calibrated variants of the best plain templates (calibration.py)
            return [Candidate(base.prompt, base.label_words, strategy=self.name, parents=(base.id,),
                              edit=f"calibrate:{mode}", calibrate=mode)
                    for base in [b for b in best if not b.calibrate and not b.demos][:2] for mode in self.calibrations]
        if not self.search_labels:  # the one phase left: label words on the best two
            return []
        out = []
        for base in best[:2]:  # first a verbalizer of many words per class on each, batch-calibrated
            extra = self.verbalizer(ctx, base.prompt, base.label_words or task.label_words)
            if extra and calibration.usable(task, "batch"):
                out.append(Candidate(base.prompt, base.label_words, strategy=self.name, parents=(base.id,),
                                     edit="verbalizer", calibrate="batch", verbalizer=extra))
        for base in best[:2]:
            for words in self.label_words(ctx, base.prompt):
                out.append(Candidate(base.prompt, words, strategy=self.name, parents=(base.id,), edit="label words"))
        return out

    def label_words(self, ctx: SearchContext, prompt: str) -> list[tuple[str, ...]]:
        """LM-BFF: per class, words whose log-probability after the prompt is highest for that
        class's train examples relative to the mean over classes; candidates combine the top ones."""
        found = self._word_scores(ctx, prompt)
        if found is None:
            return []
        score, decode = found
        task = ctx.task
        n_classes = len(task.label_words)
        n_top = min(self.label_candidates, score.shape[1])  # a served model may list few words
        tops = [score[c].topk(n_top).indices.tolist() for c in range(n_classes)]
        options = []
        for rank in range(n_top):
            words = tuple(decode(tops[c][rank]) for c in range(n_classes))
            if len({w.lower() for w in words}) == n_classes:
                options.append(words)
        # also the best word of each class paired with the task's own words for the others
        for c in range(n_classes):
            words = list(task.label_words)
            words[c] = decode(tops[c][0])
            if len({w.lower() for w in words}) == n_classes:
                options.append(tuple(words))
        return [w for i, w in enumerate(options) if w not in options[:i] and w != tuple(task.label_words)]

    def verbalizer(self, ctx: SearchContext, prompt: str, label_words) -> tuple[tuple[str, ...], ...]:
        """Per class, the ``verbalizer_size - 1`` words (besides its label word) ranked highest for it by the same
        score, each word given only to the class it scores highest for; () when nothing can be mined."""
        found = self._word_scores(ctx, prompt) if self.verbalizer_size >= 2 else None
        if found is None:
            return ()
        score, decode = found
        owner = score.argmax(0)
        taken = {w.lower() for w in label_words}
        out = []
        for c in range(len(label_words)):
            mine = score[c].clone()
            mine[owner != c] = -float("inf")
            ranked = [decode(i) for i in mine.topk(min(4 * self.verbalizer_size, mine.shape[0])).indices.tolist()
                      if mine[i] > -float("inf")]
            extra = []
            for w in ranked:
                if w.lower() not in taken and w not in extra:
                    extra.append(w)
                if len(extra) == self.verbalizer_size - 1:
                    break
            out.append(tuple(extra))
        return tuple(out) if all(out) else ()

    def _word_scores(self, ctx: SearchContext, prompt: str):
        """(class x vocabulary scores, id -> word) after the prompt over the train rows, or None. Computed once per
        prompt (label words and the verbalizer read the same scores) but charged at every call, as when each call
        computed them: the budget a search spends stays what it was before the cache."""
        import torch

        task, scorer = ctx.task, ctx.scorer
        n_classes = len(task.label_words)
        by_class = [[ex for ex in task.train if ex.label == c][: self.label_examples] for c in range(n_classes)]
        if any(not exs for exs in by_class):
            return None
        examples = [ex for exs in by_class for ex in exs]
        if prompt in self._scores:
            if self._scores[prompt] is not None:
                ctx.charge(len(examples))
            return self._scores[prompt]
        contexts = [scorer.render(prompt, ex.input) for ex in examples]
        space = not (contexts[0][-1:].isspace())
        # in process: the whole distribution (every token listed); served: its top-k lists, kept words only
        found = scorer.model.next_token_logprobs(contexts, lambda token: _is_label_word(token, space),
                                                 f"label words, space={space}")
        if found is None:
            log.info("label-word search skipped: the model lists no next tokens")
            self._scores[prompt] = None
            return None
        logprobs, vocabulary = found
        mask = self._word_mask(vocabulary, space)
        ctx.charge(len(contexts))
        class_mean = torch.stack([logprobs[[i for i, ex in enumerate(examples) if ex.label == c]].mean(0) for c in range(n_classes)])
        relative = class_mean - class_mean.mean(0, keepdim=True)
        score = relative + 0.5 * class_mean  # discriminative, but still a word the model says here
        score[:, ~mask] = -float("inf")
        self._scores[prompt] = (score, lambda i: vocabulary[i].strip())
        return self._scores[prompt]

    def _word_mask(self, vocabulary: list[str], leading_space: bool):
        """Listed tokens that are one ASCII alphabetic word of 3+ letters, not a function word (kept per
        vocabulary: the in-process one is the same list every call)."""
        import torch

        key = (id(vocabulary), len(vocabulary), leading_space)
        if key not in self._masks:
            self._masks[key] = (vocabulary, torch.tensor([_is_label_word(t, leading_space) for t in vocabulary],
                                                         dtype=torch.bool))
        return self._masks[key][1]


def _is_label_word(token: str, leading_space: bool) -> bool:
    """One ASCII alphabetic word of 3+ letters, not a function word, with a leading space where one is due."""
    w = token.strip()
    return (token.startswith(" ") == leading_space and w.isalpha() and w.isascii() and len(w) >= 3
            and w.lower() not in library.STOPWORDS)
