"""The scorer: per-example scores of a candidate on examples, by the task's metric, cached.

Classification reads the log-likelihood of every label word after the rendered prompt; generation
decodes greedily (exact match, contains) or reads the target's log-likelihood. The scorer renders the
texts, picks the mode, keys and caches the results, and applies a candidate's scoring options (the
layers: calibration.py, demos.py, ensemble.py), composed in ``evaluate`` and charged by ``cost``. The
numbers themselves come from the model's two scoring calls, ``loglikelihoods`` and ``generate``: how
they are batched (models/hf_batching.py in process) or requested (models/served.py) is the model's.
Results are cached per (model, chat, mode, prompt, label words, soft prompt, options, demonstrations pool,
example), so no pair is computed twice in a process, and a candidate with a demonstrations rule scored on two
tasks with different train rows is scored on each.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import replace

from .. import template
from ..errors import PromptSearchError, TooLongError
from ..results import ExampleResult, continuation, first_line
from . import verbalizers
from .calibration import Calibration
from .demos import Demonstrations, uses_pool
from .ensemble import Ensemble

__all__ = ["ExampleResult", "Scorer", "continuation", "first_line"]


class Scorer:
    """Scores candidates against one frozen model. ``stats`` counts examples scored, cache hits and the
    rows handed to the model (the model's own ``stats``, where it has them, count how it ran them)."""

    def __init__(self, model, batch_size: int = 16, max_batch_tokens: int = 8192, chat: bool = False, proposer=None):
        self.model = model
        self.proposer = proposer if proposer is not None else model  # writes text for the search (complete)
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        model.set_batching(batch_size, max_batch_tokens)
        model.clear_cache()  # a new scorer starts cold, as it always did: runs on one model compare (benchmarks)
        self.chat = chat
        self.cache: dict[tuple, ExampleResult] = {}
        self.stats: Counter = Counter()
        self._max_new: dict[str, int] = {}
        self._server_chat: bool | None = None  # chat on, and the model applies its template itself
        # The scoring options, each with its own caches (see evaluate and cost for how they compose).
        self.calibration, self.demos, self.ensemble = Calibration(), Demonstrations(), Ensemble()

    # ---- rendering and keys -------------------------------------------------------------------
    def render(self, prompt: str, text: str) -> str:
        rendered = template.render(prompt, text)
        if not self.chat:
            return rendered
        wrapped = self.model.format_chat(rendered)
        return rendered if wrapped is None else wrapped  # None: a server applies its chat template itself

    def contexts(self, prompt: str | list[str], examples) -> list[str]:
        """Each example rendered in the prompt, or in its own prompt when given one per example."""
        prompts = [prompt] * len(examples) if isinstance(prompt, str) else prompt
        return [self.render(p, ex.input) for p, ex in zip(prompts, examples)]

    def mode(self, task, candidate) -> tuple[str, object]:
        """How a candidate is scored on a task: (mode, the setting its results depend on)."""
        if task.kind == "classification":
            return "classify", tuple(candidate.label_words or task.label_words)
        if task.metric == "loglik":
            return "loglik", None
        return "generate", self.max_new_tokens(task)

    def keys(self, task, candidate, example_keys) -> list[tuple]:
        mode, extra = self.mode(task, candidate)
        options = candidate.options()  # calibration, demonstration rule, ensemble members: they change the scores
        options = json.dumps(options, sort_keys=True) if options else None
        pool = self.demos.fingerprint(task) if uses_pool(candidate) else None
        return [(self.model.fingerprint, self.chat, mode, candidate.prompt, extra, candidate.soft, options, pool, k)
                for k in example_keys]

    def max_new_tokens(self, task) -> int:
        """Room for the longest answer in train/dev plus a little, so greedy output is not cut short."""
        if task.name not in self._max_new:
            longest = max(self.model.count_tokens(" " + a) for ex in task.train + task.dev for a in ex.answers)
            self._max_new[task.name] = min(64, longest + 4)
        return self._max_new[task.name]

    def set_max_new_tokens(self, task, n: int) -> None:
        """Decode the task's answers with the limit a search recorded (prompt.py: predicting new inputs has no
        train or dev answers to derive it from)."""
        self._max_new[task.name] = int(n)

    # ---- the cache ----------------------------------------------------------------------------
    def preload(self, task, candidate, results: dict[str, ExampleResult]) -> None:
        """Put results read back from a run log into the cache (resume scores nothing twice)."""
        for key, result in zip(self.keys(task, candidate, list(results)), results.values()):
            self.cache[key] = result

    def forget(self, task, candidate, examples) -> None:
        """Drop a candidate's cached results on examples (a training probe whose vectors change)."""
        for key in self.keys(task, candidate, [ex.key for ex in examples]):
            self.cache.pop(key, None)

    def clear_cache(self) -> None:
        self.cache.clear()
        for layer in (self.calibration, self.demos, self.ensemble):
            layer.clear()
        self.model.clear_cache()

    def register_soft_prompt(self, soft_id: str, embeddings) -> None:
        """Make trained soft-prompt vectors (n_virtual x hidden) usable by candidates naming them (the
        model holds them: a white-box capability). New vectors under a known name drop the scores of the old."""
        if self.model.register_soft_prompt(soft_id, embeddings):
            for key in [k for k in self.cache if k[5] == soft_id]:  # k[5]: candidate.soft, see keys()
                del self.cache[key]
            self.calibration.forget_soft(soft_id)

    def drop_soft_prompt(self, soft_id: str) -> None:
        self.model.drop_soft_prompt(soft_id)

    def soft_vectors(self, soft_id: str | None):
        """The vectors a candidate's soft prompt names (for executors that ship them to replicas)."""
        return self.model.soft_prompt(soft_id)

    # ---- scoring ------------------------------------------------------------------------------
    def evaluate(self, task, candidate, examples) -> list[ExampleResult]:
        """Per-example results of a candidate on examples, by the task's metric; cached. The one place
        the scoring options compose: calibration corrects the plain twin's label scores, an ensemble
        combines its members' results, a demonstration rule changes the prompt the model sees."""
        if candidate.calibrate:
            self.calibration.check(task, candidate)
        keys = self.keys(task, candidate, [ex.key for ex in examples])
        missing = [i for i, k in enumerate(keys) if k not in self.cache]
        self.stats["cache_hits"] += len(examples) - len(missing)
        if missing:
            todo = [examples[i] for i in missing]
            if candidate.calibrate:  # corrected from the plain twin's results (its own cache entries)
                plain = self.evaluate(task, replace(candidate, calibrate=None), todo)
                fresh = self.calibration.correct_results(self, task, candidate, todo, plain)
            elif candidate.members:  # members scored through this scorer (cached), then combined
                fresh = self.ensemble.combine(task, candidate, [self.evaluate(task, m, todo) for m in candidate.members], todo)
            else:
                prompt = self.demos.prompts(task, candidate, todo) if candidate.demos else candidate.prompt
                fresh = self.score(task, candidate, prompt, todo)
            for i, result in zip(missing, fresh):
                self.cache[keys[i]] = result
            if not candidate.calibrate:  # a calibrated result only re-reads its twin's, counted there
                self.stats["examples_scored"] += len(missing)
        return [self.cache[k] for k in keys]

    def cost(self, candidate) -> int:
        """Example-evaluations one example of the candidate costs (an ensemble: one per member)."""
        return self.ensemble.cost(candidate)

    def once_costs(self, candidate) -> dict[tuple, int]:
        """Rows a candidate's options cost once per key whatever the examples (calibration's bias rows):
        the search charges each key once, cached or not, so a resumed run counts as the uninterrupted one."""
        return self.calibration.once_costs(candidate)

    def score(self, task, candidate, prompt: str | list[str], examples) -> list[ExampleResult]:
        """Results of a prompt (or one per example) without the cache, in the candidate's mode."""
        mode, extra = self.mode(task, candidate)
        if mode == "classify":
            return self.classify(prompt, examples, extra, soft=candidate.soft, verbalizer=candidate.verbalizer)
        if mode == "loglik":
            return self.target_loglik(prompt, examples, soft=candidate.soft)
        return self.generate(prompt, examples, extra, soft=candidate.soft, metric=task.metric)

    def classify(self, prompt: str | list[str], examples, label_words, soft: str | None = None,
                 verbalizer=()) -> list[ExampleResult]:
        verbalizers.check(label_words, verbalizer)
        contexts = self.contexts(prompt, examples)
        words = verbalizers.words(label_words, verbalizer)
        conts = [[continuation(c, w) for w in words] for c in contexts]
        scores = self.loglikelihoods(contexts, conts, soft=soft, ids=list(examples))
        scores = [verbalizers.class_scores(lps, label_words, verbalizer) for lps in scores]
        out = []
        for ex, lps in zip(examples, scores):
            best = max(range(len(lps)), key=lps.__getitem__)
            gold = lps[ex.label] if ex.label is not None else math.nan
            out.append(ExampleResult(float(best == ex.label), label_words[best], gold, tuple(lps)))
        return out

    def target_loglik(self, prompt: str | list[str], examples, soft: str | None = None) -> list[ExampleResult]:
        contexts = self.contexts(prompt, examples)
        conts = [[continuation(c, ex.output)] for c, ex in zip(contexts, examples)]
        scores = self.loglikelihoods(contexts, conts, soft=soft, ids=list(examples))
        return [ExampleResult(s[0], "", s[0]) for s in scores]

    def loglikelihoods(self, contexts: list[str], continuations: list[list[str]], soft: str | None = None,
                       ids=None) -> list[list[float]]:
        """log P(continuation | context) for each context and each of its continuations (the model's call);
        ``soft`` names a registered soft prompt."""
        if self.chat and self._chat_by_server():
            raise PromptSearchError("--chat with a served model scores generation tasks only: a chat API "
                                    "returns no log-probabilities of given label words or answers")
        self.stats["rows"] += len(contexts)
        extra = {} if soft is None else {"soft": soft}
        with _owned(ids):
            return self.model.loglikelihoods(contexts, continuations, **extra)

    def generate(self, prompt: str | list[str], examples, max_new_tokens: int, soft: str | None = None,
                 metric: str = "exact_match") -> list[ExampleResult]:
        contexts = self.contexts(prompt, examples)
        self.stats["rows"] += len(contexts)
        extra = {} if soft is None else {"soft": soft}
        with _owned(list(examples)):
            texts = self.model.generate(contexts, max_new_tokens, chat=self.chat and self._chat_by_server(), **extra)
        out = []
        for ex, text in zip(examples, texts):
            pred = first_line(text)
            answers = [a.strip().lower() for a in ex.answers]
            p = pred.lower()
            hit = p in answers if metric == "exact_match" else any(a and a in p for a in answers)
            out.append(ExampleResult(float(hit), pred))
        return out

    def complete(self, texts: list[str], max_new_tokens: int = 48) -> list[str]:
        """Free greedy continuation of raw texts (no template): the first line of each, stripped.
        Used by strategies that ask a model for paraphrases and edits: the proposer, by default the
        scored model."""
        return [first_line(t) for t in self.proposer.generate(texts, max_new_tokens)]

    def _chat_by_server(self) -> bool:
        if self._server_chat is None:
            self._server_chat = self.model.format_chat("") is None
        return self._server_chat


class _owned:
    """Name the example in a model's too-long error (the model knows only its row number)."""

    def __init__(self, ids):
        self.ids = ids

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        row = getattr(error, "row", None)
        if isinstance(error, TooLongError) and row is not None:
            item = row if self.ids is None else self.ids[row]  # an Example (the scorer's calls) or an id
            took = f"take {error.length} tokens" if error.length else "take more tokens than fit"  # a server may not say
            named = TooLongError(f"example {getattr(item, 'id', item)}: prompt and answer {took}, over the model's "
                                 f"context" + (f" of {error.limit}" if error.limit else ""))
            named.example = item  # the row itself: evaluate_fitting finds it by its key (ids may repeat)
            raise named from None
        return False


def evaluate_fitting(scorer, task, candidate, examples) -> tuple[list[ExampleResult], list]:
    """``scorer.evaluate``, except that a row whose prompt (its demonstrations, the input, the answer) does not fit
    the model's context is scored as wrong -- score 0, no answer -- instead of ending the call: where a run reports
    (test, held-out rows) or an export scores a prompt, one long input must not lose a finished search. Returns
    the results, in order, and the rows that did not fit. A loglik task has no "wrong" score: it still raises, as
    does a row that is not one of ``examples`` (a calibration's bias rows)."""
    # by content key: a Ray worker's error holds a copy of the row, and identical rows fit or not alike
    mine, too_long = {ex.key for ex in examples}, set()

    def row_of(error: TooLongError) -> str:
        """The key of the row the error names, where it is one of ours to score as wrong; else the error stands."""
        owner = getattr(getattr(error, "example", None), "key", None)
        if task.metric == "loglik" or owner not in mine or owner in too_long:
            raise error
        return owner

    def fits(rows) -> list:
        """The rows' results, the ones that do not fit left out (added to ``too_long``); a call's lengths are
        checked before any of its rows is scored, so each retry scores the rest once."""
        while True:
            todo = [ex for ex in rows if ex.key not in too_long]
            try:
                return list(zip(todo, scorer.evaluate(task, candidate, todo))) if todo else []
            except TooLongError as e:
                too_long.add(row_of(e))

    try:  # the common case: one call, batched as always
        return scorer.evaluate(task, candidate, examples), []
    except TooLongError as e:
        too_long.add(row_of(e))
    # some row does not fit: the rest a batch at a time, so many long rows cost a few short retries each
    size, found = max(1, int(getattr(scorer, "batch_size", 16) or 16)), {}
    for start in range(0, len(examples), size):
        found.update((ex.key, r) for ex, r in fits(examples[start: start + size]))
    return [ExampleResult(0.0, "") if ex.key in too_long else found[ex.key] for ex in examples], \
        [ex for ex in examples if ex.key in too_long]


CHUNK = 64  # rows per scorer call where a progress bar is shown: it moves between them


def evaluate_rows(scorer, task, candidate, examples, progress: bool = False) -> tuple[list[ExampleResult], list]:
    """``evaluate_fitting`` over many rows (eval, predict) in chunks, with a progress bar when ``progress``:
    the results in order and the rows too long for the model's context."""
    from tqdm.auto import tqdm

    results, too_long = [], []
    with tqdm(total=len(examples), disable=not progress, unit="ex", leave=False) as bar:
        for start in range(0, len(examples), CHUNK):
            chunk = examples[start: start + CHUNK]
            got, over = evaluate_fitting(scorer, task, candidate, chunk)
            results += got
            too_long += over
            bar.update(len(chunk))
    return results, too_long
