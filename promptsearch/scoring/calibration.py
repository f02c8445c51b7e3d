"""Calibration of a classification prompt's label scores: a scoring option of a candidate.

- ``contextual`` (Zhao et al. 2021, "Calibrate Before Use"): the label distribution p(y|x) is the
  softmax of the label words' log-likelihoods; the same prompt filled with content-free inputs
  ("N/A", "" and "[MASK]") gives the prompt's own bias p_cf (the mean of their distributions); the
  corrected distribution is q(y|x) ∝ p(y|x) / p_cf(y).
- ``domain`` (domain-conditional PMI, Holtzman et al. 2021): score(y) = log P(y | prompt, x) -
  log P(y | domain premise). The premise is the template's literal text after its last ``{input}``
  slot, leading white space removed -- the answer cue, e.g. "Sentiment:" -- without demonstrations
  or instruction; when nothing follows the slot it is the whole prompt with an empty input.

- ``batch`` (Batch Calibration, Zhou et al. 2024): as ``contextual``, but p_cf is the mean label distribution
  (the plain twin's; an ensemble's combined one) over the task's own inputs -- the first ``BATCH_ROWS`` rows of
  the demonstration pool (demos.py: train rows, and on a few-label search the rows that choose too), their
  inputs only, never their labels. Real inputs show
  the prompt's bias on this task where three content-free strings may not. It works with either demonstrations
  rule (a ``similar`` one shows each pool row its own neighbours, never itself). The pool travels with an
  exported artifact, so a prediction reads the same bias.

What a calibrated candidate's ``ExampleResult`` holds (logged, resumed and combined like any other):
``label_logprobs`` are the corrected label scores (contextual: log q, normalised over the labels;
domain: the PMI scores), ``logprob`` is the gold label's corrected score, ``prediction`` the argmax.

The plain label scores are the uncalibrated twin's (same cache entries, so a calibrated variant of a
scored prompt costs only its bias rows). The bias rows -- 3 content-free inputs or 1 premise -- run once
per (prompt, label words, soft prompt, demonstration rule) and are cached by the scorer's ``Calibration``
layer; it declares them (``once_costs``) and the search charges them to its budget once per such key,
whether cached or not, so a resumed run counts exactly as the uninterrupted one. Only log-likelihoods are needed: served models work too.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace

from .. import template
from ..errors import PromptSearchError
from ..metrics import softmax
from ..results import ExampleResult
from . import demos

MODES = ("contextual", "domain", "batch")
CONTENT_FREE = ("N/A", "", "[MASK]")
# Inputs the batch bias is the mean over. On the few-label protocol's development split 32 did about as well as 64
# or 256 (within 0.015; benchmarks/results/batch_calibration_adhoc-2026-12-02.txt), and a cap keeps the bias rows
# a small part of an 800-evaluation budget.
BATCH_ROWS = 32


def check(task, candidate) -> None:
    mode = candidate.calibrate
    if mode not in MODES:
        raise PromptSearchError(f"calibrate={mode!r}: use one of {', '.join(MODES)}")
    if task.kind != "classification":
        raise PromptSearchError(f"calibrate={mode}: calibration corrects label scores; task {task.name} is {task.kind}")
    if not usable(task, mode):
        raise PromptSearchError(f"calibrate=batch: task {task.name} has no train rows whose inputs show the prompt's bias")
    if mode != "batch" and demos.per_input(candidate.demos):
        raise PromptSearchError(f"calibrate={mode} with demos={candidate.demos}: a content-free input has no "
                                "similar demonstrations; calibrate fixed demonstrations (balanced:K) instead")


def usable(task, mode: str) -> bool:
    """Whether a strategy may propose the mode on the task (batch calibration needs inputs to average)."""
    return mode != "batch" or bool(task.train or task.demo_rows)


def twin(candidate, mode: str):
    """The candidate with its label scores calibrated by ``mode``: an ensemble's members each (a member calibrated
    already keeps its own); None when there is nothing left to calibrate, or when the mode cannot calibrate it (a
    content-free input has no similar demonstrations: only ``batch`` takes a ``similar`` rule)."""
    todo = [c for c in (candidate.members or (candidate,)) if not c.calibrate]  # what this calibration would change
    if not todo or (mode != "batch" and any(demos.per_input(c.demos) for c in todo)):
        return None
    if candidate.members:
        members = tuple(m if m.calibrate else replace(m, calibrate=mode) for m in candidate.members)
        return replace(candidate, members=members, strategy="final", parents=(candidate.id,),
                       edit=f"members calibrate:{mode}")
    return replace(candidate, calibrate=mode, strategy="final", parents=(candidate.id,), edit=f"calibrate:{mode}")


def extra_rows(candidate) -> int:
    """Forward rows the bias estimate costs (once per ``bias_key``); an ensemble's, its calibrated members'."""
    if candidate.members:
        return sum(extra_rows(m) for m in candidate.members)
    return {"contextual": len(CONTENT_FREE), "domain": 1, "batch": BATCH_ROWS}.get(candidate.calibrate or "", 0)


def bias_rows(task, candidate) -> list:
    """The rows a calibrated candidate's bias is read from, an ensemble's calibrated members' each (what the search
    reserves and counts the tokens of before scoring a twin): batch, the pool's first inputs; contextual, the
    content-free inputs; domain, the one premise (its tokens over-counted as the prompt with an empty input)."""
    from ..task import Example
    from .demos import pool

    rows = []
    for c in candidate.members or (candidate,):
        if c.calibrate == "batch":
            rows += pool(task)[:BATCH_ROWS]
        elif c.calibrate:
            rows += content_free_rows() if c.calibrate == "contextual" else [Example("", "")]
    return rows


def content_free_rows() -> list:
    """The content-free inputs contextual calibration reads the prompt's bias from, as rows to score."""
    from ..task import Example

    return [Example(text, "", id=f"content-free {text!r}") for text in CONTENT_FREE]


def bias_key(candidate) -> tuple:
    return (candidate.calibrate, candidate.prompt, candidate.label_words, candidate.soft, candidate.demos,
            candidate.verbalizer)


def bias_entry(fingerprint: str, chat: bool, task, candidate, demonstrations) -> tuple:
    """What a bias row depends on: the model (weights and dtype), chat mode, the candidate's ``bias_key``, its label
    words, and for a demonstrations rule or batch calibration the pool's hash (``Demonstrations.fingerprint``)."""
    words = tuple(candidate.label_words or task.label_words)
    # a balanced rule's rows are in the prompt; batch calibration reads the pool's inputs
    pool = demonstrations.fingerprint(task) if candidate.demos or candidate.calibrate == "batch" else None
    return (fingerprint, chat, bias_key(candidate), words, pool)


def digest(entry: tuple) -> str:
    """A bias entry as one string (an artifact's key for the bias it stores). The label words are the entry's
    fourth part, the ones scored; the candidate's own field is left out, as an artifact's candidate names the
    task's words where the search's left them to the task."""
    fingerprint, chat, (mode, prompt, _, soft, rule, verbalizer), words, pool = entry
    text = json.dumps([fingerprint, chat, [mode, prompt, soft, rule, verbalizer], words, pool], ensure_ascii=False,
                      separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def member_entries(fingerprint: str, chat: bool, task, candidate, demonstrations):
    """Each calibrated member's bias entry and its digest (an ensemble's members, else the candidate itself): the
    biases an artifact stores (export.stored_biases) and a prediction takes back (``Calibration.adopt``)."""
    for c in candidate.members or (candidate,):
        if c.calibrate:
            entry = bias_entry(fingerprint, chat, task, c, demonstrations)
            yield entry, digest(entry)


def domain_premise(prompt: str) -> str:
    """The text the label's prior is read after: the template after its last ``{input}`` slot."""
    tail = template.parse(prompt)[-1].lstrip()
    return tail if tail else template.render(prompt, "")


def correct(raw: list[float], bias: list[float], mode: str) -> list[float]:
    """Corrected label scores from the plain label log-likelihoods and the bias row (see ``label_bias``)."""
    if mode == "domain":
        return [r - b for r, b in zip(raw, bias)]
    # contextual and batch: divide by the mean label distribution
    p = softmax(raw)
    q = [pi / math.exp(b) for pi, b in zip(p, bias)]
    total = sum(q)
    return [math.log(x / total) if x > 0 else -math.inf for x in q]


class Calibration:
    """The calibration layer of a scorer: it owns the bias rows' cache and declares their cost."""

    check = staticmethod(check)

    def __init__(self):
        self.biases: dict[tuple, list[float]] = {}  # (model, chat, bias_key, label words) -> bias row

    def clear(self) -> None:
        self.biases.clear()

    def forget_soft(self, soft_id: str) -> None:
        """A soft prompt's vectors changed: its bias rows were read with the old ones."""
        for key in [k for k in self.biases if k[2][3] == soft_id]:  # bias_key: (mode, prompt, words, soft, demos, verbalizer)
            del self.biases[key]

    def recorded(self, fingerprint: str) -> dict[str, list[float]]:
        """The bias rows read for ``fingerprint``'s model, by ``digest``: what a run's summary keeps, so an artifact
        can carry the biases its prompt was scored with."""
        return {digest(key): list(bias) for key, bias in self.biases.items() if key[0] == fingerprint}

    def adopt(self, scorer, task, candidate, stored: dict) -> int:
        """Take the biases ``stored`` holds (``recorded``'s form) for the candidate's calibrated members on this
        scorer; returns how many it took. An entry matches only the same model, dtype, chat mode, prompt, label
        words and pool: for anything else it is absent and the bias is read again."""
        taken = 0
        for key, stored_as in member_entries(scorer.model.fingerprint, scorer.chat, task, candidate, scorer.demos):
            found = stored.get(stored_as)
            if key not in self.biases and found is not None and len(found) == len(key[3]):
                self.biases[key] = list(found)
                taken += 1
        return taken

    def once_costs(self, candidate) -> dict[tuple, int]:
        # an ensemble's calibrated members each (a member raced alone before has paid its key already)
        return {("calibration",) + bias_key(c): extra_rows(c) for c in candidate.members or (candidate,) if c.calibrate}

    def label_bias(self, scorer, task, candidate) -> list[float]:
        """contextual: log p_cf(y), the mean content-free label distribution; batch: the mean over the pool's
        first inputs; domain: log P(y | premise)."""

        mode, words = candidate.calibrate, tuple(candidate.label_words or task.label_words)
        key = bias_entry(scorer.model.fingerprint, scorer.chat, task, candidate, scorer.demos)
        if key not in self.biases:
            if mode == "domain":  # the premise scored as a row of the template "{input}", as any row is classified
                from ..task import Example

                premise = domain_premise(candidate.prompt)
                rows = [Example(premise, "", id=f"domain premise {premise!r}")]
                bias = list(scorer.classify("{input}", rows, words, soft=candidate.soft,
                                            verbalizer=candidate.verbalizer)[0].label_logprobs)
            else:
                if mode == "contextual":
                    prompt = scorer.demos.fixed_prompt(task, candidate) if candidate.demos else candidate.prompt
                    rows = content_free_rows()
                    raw = [r.label_logprobs for r in scorer.classify(prompt, rows, words, soft=candidate.soft,
                                                                     verbalizer=candidate.verbalizer)]
                else:  # batch: the plain twin's results on those rows; labels unused
                    rows = list(scorer.demos.pool(task)[:BATCH_ROWS])
                    raw = [r.label_logprobs for r in self.fresh(scorer, task, replace(candidate, calibrate=None), rows)]
                mean = [sum(p[j] for p in map(softmax, raw)) / len(raw) for j in range(len(words))]
                bias = [math.log(m) for m in mean]
            scorer.stats["calibration_rows"] += len(rows)
            self.biases[key] = bias
        return list(self.biases[key])

    def fresh(self, scorer, task, candidate, rows) -> list[ExampleResult]:
        """A candidate's results on rows computed in one call, never read from the cache: the same rows in the same
        batches give the same floats when the search scores and when an artifact predicts, whatever was scored
        before (a cached result may come from a batch padded otherwise). A similar rule shows each row its own
        neighbours, never itself; an ensemble combines its members' fresh results."""
        if candidate.members:
            return scorer.ensemble.combine(task, candidate, [self.fresh(scorer, task, m, rows) for m in candidate.members], rows)
        if candidate.calibrate:
            return self.correct_results(scorer, task, candidate, rows,
                                        self.fresh(scorer, task, replace(candidate, calibrate=None), rows))
        prompt = scorer.demos.prompts(task, candidate, rows) if candidate.demos else candidate.prompt
        return scorer.score(task, candidate, prompt, rows)

    def correct_results(self, scorer, task, candidate, examples, plain) -> list[ExampleResult]:
        """A calibrated candidate's results from its plain twin's on the same examples."""
        bias = self.label_bias(scorer, task, candidate)
        words = candidate.label_words or task.label_words
        out = []
        for ex, r in zip(examples, plain):
            scores = correct(list(r.label_logprobs), bias, candidate.calibrate)
            best = max(range(len(scores)), key=scores.__getitem__)
            gold = scores[ex.label] if ex.label is not None else math.nan
            out.append(ExampleResult(float(best == ex.label), words[best], gold, tuple(scores)))
        return out
