"""Which labelled rows choose the prompt and which estimate it: the winner's score honest on few labels.

A user with a few dozen labelled rows has them split into train (demonstrations) and dev (scoring). With 32 dev
rows a 95% interval is +-15 points, and a search that picks the best of a hundred prompts on them reports the
luckiest: its dev score overstates what it will do on new rows. Two changes, both decided here, before the search:

- **Train rows score too.** When dev is small (fewer than ``SMALL_DEV`` rows), train rows join the rows racing
  and the final pick score on (as many as dev has, class-balanced, seeded): twice the rows for the same task.
  Train rows are still where demonstrations come from, so a prompt is never scored on a row it shows (the
  Objective drops those rows for that prompt: ``shows``): cross-fitting, an example is never shown its own answer.
- **Demonstrations from every labelled row.** A demonstrations rule (scoring/demos.py) draws from train and the
  rows that choose (``Task.demo_rows``): ``similar`` never shows a row to itself, and a ``balanced`` draw's rows
  leave that prompt's score (cross-fitting, as above). With 16 rows per class the pool doubles.
- **A held-out slice estimates the winner.** ``HOLDOUT_SHARE`` of the labelled rows (class-balanced, seeded, at
  least ``HOLDOUT_MIN``) are taken out of train and dev before the search: no rung, final pick or demonstration
  ever sees them. The winner (and the seed) are scored on them once; that score, with its interval, is the run's
  estimate of the winner, unbiased by the choice among many. The selection score stays in the summary, named as
  what it is.

``mode`` (config ``selection``): ``auto`` (the default: ``holdout-dev`` when dev is small -- ``holdout`` when fewer
than ``FEW_CHOOSING`` dev rows would be left to choose on, ``labelled`` when fewer than ``4 * HOLDOUT_MIN`` labelled
rows leave none to hold out and fewer than ``FEW_CHOOSING`` dev rows -- ``dev`` otherwise),
``holdout-dev`` (the held-out slice; what is left of dev alone chooses), ``holdout`` (the slice, and train rows
score too), ``labelled`` (train rows score, nothing held out), ``dev`` (dev alone, as before 2026-12-02; what a run
made before then resumes with). The task records the mode it was prepared with, so preparing twice is a no-op.

Measured on the few-label protocol (benchmarks/fewshot.py; 800 evaluations, SST-2, AG News, TREC, 16 rows per
class, the development split deciding; docs/decisions.md, 2026-12-02): letting train rows score did not help on
average at that budget -- more rows to score on leave the search fewer candidates (TREC: 144-192 rows, 800
evaluations, the search never reached clarify's demonstration rules in some draws) -- so ``auto`` holds a slice
out and lets dev alone choose, which chose as well as dev did and estimates the winner without the upward bias.
Where that leaves a dozen rows to choose on (the instruction-induction draws: 16 train and 16 dev rows, 12 left),
the choice is close to luck; there the extra rows cost little and train rows score too (``FEW_CHOOSING``).
"""

from __future__ import annotations

import random
from dataclasses import replace
from functools import cached_property

from .errors import PromptSearchError

MODES = ("auto", "holdout", "holdout-dev", "labelled", "dev")
SMALL_DEV = 200  # below this many dev rows, selection noise (+-7 points at 200, +-15 at 32) is worth the extra rows
HOLDOUT_SHARE = 0.25
HOLDOUT_MIN = 8
HOLDOUT_MAX = 200  # beyond this an estimate's interval is tight enough; the rest choose
# ``auto``: when fewer than this many dev rows are left to choose on after the slice is held out, train rows score
# too (``holdout``). On the induction tasks (12 rows left) that chose +0.030 better on the development split (16
# task-draws, better in 6, worse in 4); every classification task of the protocol keeps 24 or more and is unchanged.
FEW_CHOOSING = 16
DEMOS_FROM_DEV = True  # prepared tasks: the choosing rows join the demonstrations pool (a switch for the benchmark)


def resolve(mode: str, task) -> str:
    """The mode a run uses on this task (``auto`` decided by dev's size; ``prepare`` then turns ``holdout-dev`` into
    ``holdout`` when fewer than ``FEW_CHOOSING`` dev rows are left after the held-out slice)."""
    if mode not in MODES:
        raise PromptSearchError(f"selection {mode!r}: use one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    small = len(task.dev) < SMALL_DEV and task.kind in ("classification", "generation")
    if not small:
        return "dev"
    if len(task.train) + len(task.dev) >= 4 * HOLDOUT_MIN:
        return "holdout-dev"
    # too few labelled rows to hold any out: where fewer than FEW_CHOOSING dev rows would choose, train rows score
    # too (cross-fitted), as ``prepare`` does after a held-out slice -- the point is the rows left to choose on
    return "labelled" if len(task.dev) < FEW_CHOOSING and task.train else "dev"


def prepare(task, mode: str = "auto", seed: int = 0):
    """The task as the search sees it: ``dev`` the rows that choose, ``train`` the demonstration pool,
    ``holdout`` the rows that only estimate. Idempotent (a prepared task is returned as it is)."""
    if task.selection:
        return task
    asked, mode = mode, resolve(mode, task)
    if mode == "dev" or not task.train:
        return replace(task, selection="dev")
    rng = random.Random(f"selection:{seed}")
    train, dev, holdout = list(task.train), list(task.dev), []
    if mode in ("holdout", "holdout-dev"):
        labelled = _balanced_order(train + dev, rng)
        size = min(HOLDOUT_MAX, max(HOLDOUT_MIN, round(HOLDOUT_SHARE * len(labelled))))
        held = {id(ex) for ex in labelled[:size]}
        holdout = [ex for ex in train + dev if id(ex) in held]
        train = [ex for ex in train if id(ex) not in held]
        dev = [ex for ex in dev if id(ex) not in held]
    if asked == "auto" and mode == "holdout-dev" and len(dev) < FEW_CHOOSING:
        mode = "holdout"  # too few rows left to choose on: train rows score too
    if len(task.dev) < SMALL_DEV and mode != "holdout-dev":  # holdout-dev: what is left of dev alone chooses
        known = {ex.key for ex in dev}
        extra = [ex for ex in _balanced_order(train, rng) if ex.key not in known][: max(len(dev), HOLDOUT_MIN)]
        dev = dev + extra
    shown = len({ex.key for ex in train + dev}) if DEMOS_FROM_DEV else len(train)
    pool = f"{shown} train and choosing rows" if DEMOS_FROM_DEV else f"{shown} train rows"
    notes = tuple(task.notes) + ((f"selection {mode}: {len(dev)} rows choose ({len(task.dev)} dev"
                                  f"{' incl. held-out' if holdout else ''} and train rows), {len(holdout)} held out "
                                  f"to estimate the winner, demonstrations from {pool}"),)
    return replace(task, train=tuple(train), dev=tuple(dev), holdout=tuple(holdout), selection=mode, notes=notes,
                   demo_rows=tuple(dev) if DEMOS_FROM_DEV else ())


def _balanced_order(rows: list, rng: random.Random) -> list:
    """A seeded order in which classes take turns (generation rows: shuffled), so any prefix is balanced."""
    rows = list(rows)
    rng.shuffle(rows)
    groups: dict = {}
    for ex in rows:
        groups.setdefault(ex.label, []).append(ex)
    queues = [groups[k] for k in sorted(groups, key=lambda k: (k is None, k if k is not None else 0))]
    return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]


# ---- cross-fitting: a prompt is never scored on a row it shows -------------------------------------------------

def kept(task, candidate, examples, shown: Shown | None = None) -> list[int]:
    """Indices of the examples the candidate is scored on: all, but the train rows it shows (prepared tasks)."""
    if task.selection in ("", "dev"):
        return list(range(len(examples)))
    flags = (shown or Shown(task)).rows(candidate, examples)
    return [i for i, f in enumerate(flags) if not f]


class Shown:
    """Which labelled rows a candidate shows (in its text, or through a fixed ``balanced`` demonstrations rule), so
    the objective leaves them out of that candidate's score. ``similar`` rules never pick a row with the input
    being scored (scoring/demos.py), so they show nothing here."""

    def __init__(self, task):
        self.task = task
        self._balanced: dict[str, set] = {}

    @cached_property
    def pool_keys(self) -> set:
        """The rows a prompt can show (train, and the demonstrations pool's other rows). Computed on first use: a
        run that scores dev alone (``kept`` returns early) never hashes them."""
        return {ex.key for ex in self.task.train + self.task.demo_rows}

    def rows(self, candidate, examples) -> list[bool]:
        """For each example: True when ``candidate`` shows it (only pool rows can be shown)."""
        flags = [False] * len(examples)
        if not self.pool_keys or not any(ex.key in self.pool_keys for ex in examples):
            return flags
        members = candidate.members or (candidate,)
        drawn = set().union(*(self._drawn(m.demos) for m in members))
        words = [m.label_words or self.task.label_words for m in members]
        for i, ex in enumerate(examples):
            if ex.key in self.pool_keys:
                flags[i] = ex.key in drawn or any(_demonstrated(m.prompt, ex, w) for m, w in zip(members, words))
        return flags

    def _drawn(self, rule) -> set:
        if not rule or not str(rule).startswith("balanced"):
            return set()
        if rule not in self._balanced:
            from .scoring import demos

            _, count, draw = demos.parse(rule)
            self._balanced[rule] = {ex.key for ex in demos.balanced(demos.pool(self.task), self.task, count, draw)}
        return self._balanced[rule]


ANSWER_WITHIN = 400  # characters after a shown input in which its answer must follow (a demonstration block)


def _demonstrated(prompt: str, ex, words) -> bool:
    """Whether the prompt text shows this row as a demonstration: its input, as a whole phrase, followed closely by
    its answer (so an input that is a common word, "the" in an instruction, does not count as shown)."""
    import re

    from .template import escape

    answers = [words[ex.label]] if words and ex.label is not None and ex.label < len(words) else list(ex.answers)
    for match in re.finditer(r"(?<!\w)" + re.escape(escape(ex.input)) + r"(?!\w)", prompt):
        after = prompt[match.end(): match.end() + ANSWER_WITHIN]
        if any(re.search(r"(?<!\w)" + re.escape(escape(a)) + r"(?!\w)", after) for a in answers if a):
            return True
    return False
