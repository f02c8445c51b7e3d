"""Chosen demonstrations: a candidate's ``demos`` rule picks labelled train examples to show before
its prompt, rendered as the ``clarify`` strategy renders its fixed ones (the prompt filled with the
example and answered, blocks separated by a blank line).

- ``similar:K`` -- per input, the K pool rows most similar to it (TF-IDF cosine, scikit-learn; KATE,
  Liu et al. 2021), never a row with the same input; ties go to the earlier pool row; the most similar
  is shown last, next to the input. The prompt differs per input, so no shared prefix: slower.
- ``similar-per-class:K`` -- per input, the K pool rows of each class most similar to it (classification; on
  other tasks the same as ``similar:K``), all shown in order of similarity, the most similar last: the nearest
  example of every answer, where ``similar`` may show one class only and invite copying its label.
- ``balanced:K`` (or ``balanced:K#D``, another draw) -- K rows per class (classification; K rows in
  all otherwise), drawn seeded from the pool, interleaved by class, the same for every input: the
  scorer's shared-prefix cache applies as with a fixed prompt.

The pool is the ``POOL_SIZE`` labelled rows with the smallest content hash, in that order: train rows and,
on a task prepared for a search with few labels (selection.py), the rows that choose too (``Task.demo_rows``:
a row is never shown to itself, and a prompt is not scored on a row it shows, so every labelled row the
search has can be a demonstration). It depends on the data only (not on a run's seed), and the pool of a
pool is itself, so an exported artifact stores the pool rows and ``eval --artifact`` rebuilds the same
demonstrations from them alone.
"""

from __future__ import annotations

import hashlib
import random

from ..errors import PromptSearchError
from ..results import continuation

POOL_SIZE = 256
RULES = ("similar", "similar-per-class", "balanced")
PER_INPUT = ("similar", "similar-per-class")  # rules whose demonstrations differ per input


def parse(rule: str) -> tuple[str, int, int]:
    """"similar:4" -> ("similar", 4, 0); "balanced:2#1" -> ("balanced", 2, 1)."""
    kind, _, rest = str(rule).partition(":")
    count, _, draw = rest.partition("#")
    if kind not in RULES or not count.isdigit() or int(count) < 1 or (draw and not draw.isdigit()) or (draw and kind != "balanced"):
        raise PromptSearchError(f"demos={rule!r}: use similar:K, similar-per-class:K or balanced:K (balanced:K#D "
                                "for another draw), K >= 1")
    return kind, int(count), int(draw or 0)


def per_input(rule: str | None) -> bool:
    """Whether a rule's demonstrations are chosen per input (no fixed prompt: no content-free calibration)."""
    return bool(rule) and str(rule).partition(":")[0] in PER_INPUT


def uses_pool(candidate) -> bool:
    """Whether the candidate's results depend on the pool: a demonstrations rule draws from it, batch calibration
    reads its inputs (calibration.py); so does a member's."""
    return bool(candidate.demos) or candidate.calibrate == "batch" or any(uses_pool(m) for m in candidate.members)


def pool(task) -> tuple:
    """The labelled rows demonstrations are chosen from (see the module docstring). Not cached here: the
    scorer's ``Demonstrations`` layer keeps the pools it uses."""
    rows = {ex.key: ex for ex in task.demo_rows}
    rows.update((ex.key, ex) for ex in task.train)  # a row in both is the train one
    ranked = sorted(rows.values(), key=lambda ex: hashlib.sha1(("demo-pool:" + ex.key).encode()).hexdigest())
    if not ranked:
        raise PromptSearchError(f"task {task.name} has no train rows to draw demonstrations from")
    return tuple(ranked[:POOL_SIZE])


def pool_rows(task) -> list[dict]:
    """The pool as JSON rows (what an artifact stores)."""
    return [{"input": ex.input, "output": ex.output, "outputs": list(ex.outputs), "label": ex.label} for ex in pool(task)]


def with_pool(task, rows: list[dict]):
    """The task with its train split replaced by stored pool rows, and nothing else to draw from."""
    from dataclasses import replace

    from ..task import Example

    return replace(task, train=tuple(Example(r["input"], r["output"], tuple(r.get("outputs") or ()), r.get("label"))
                                     for r in rows), demo_rows=())


def render(prompt: str, shots, words, kind: str) -> str:
    """Demonstrations as literal template text (escaped), ready to go in front of ``prompt``."""
    from ..template import escape
    from ..template import render as fill

    blocks = []
    for ex in shots:
        shown = fill(prompt, ex.input)
        # a universal prompt's rows keep their own task's answer text (multitask.py: no shared label words)
        answer = words[ex.label] if kind == "classification" and words else ex.output
        blocks.append(escape(shown + continuation(shown, answer)))
    return "\n\n".join(blocks) + "\n\n" if blocks else ""


def balanced(rows, task, count: int, draw: int) -> list:
    """``count`` rows per class of ``rows`` (a pool), drawn seeded by the rule."""
    rng = random.Random(f"balanced:{count}#{draw}")
    if task.kind != "classification":
        return rng.sample(list(rows), min(count, len(rows)))
    by_class = [[ex for ex in rows if ex.label == c] for c in range(len(task.label_words))]
    picks = [rng.sample(exs, min(count, len(exs))) for exs in by_class]
    return [group[i] for i in range(count) for group in picks if i < len(group)]


class Retriever:
    """TF-IDF over the pool's inputs; ``nearest`` gives a query's K most similar rows.

    Words of two or more characters (scikit-learn's default) where the pool has any; inputs without them
    ("1+2", "?", a single letter) fall back to character 1-3-grams, and a pool of empty inputs to the pool's
    order: a task's inputs never make a run fail here. Deterministic in the pool, so an artifact that ships
    its pool retrieves as the search did."""

    def __init__(self, rows):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.rows = rows
        texts = [ex.input for ex in rows]
        self.vectorizer, self.matrix = None, None
        for settings in ({}, {"analyzer": "char", "ngram_range": (1, 3)}):
            vectorizer = TfidfVectorizer(lowercase=True, sublinear_tf=True, **settings)
            try:
                self.matrix = vectorizer.fit_transform(texts)
            except ValueError:  # an empty vocabulary: no input has a token of this kind
                continue
            self.vectorizer = vectorizer
            break

    def nearest(self, texts: list[str], count: int, classes: int = 0) -> list[list]:
        """Each text's ``count`` most similar rows, the most similar first; with ``classes``, ``count`` of each
        class (rows labelled 0..classes-1) in one list, still in order of similarity."""
        if self.vectorizer is None:
            sims = [[0.0] * len(self.rows) for _ in texts]
        else:
            sims = (self.vectorizer.transform(texts) @ self.matrix.T).toarray()
        out = []
        for text, row in zip(texts, sims):
            order = sorted((i for i in range(len(self.rows)) if self.rows[i].input != text), key=lambda i: (-row[i], i))
            if not classes:
                out.append([self.rows[i] for i in order[:count]])
                continue
            taken, per = [], [0] * classes
            for i in order:
                label = self.rows[i].label
                if isinstance(label, int) and 0 <= label < classes and per[label] < count:
                    per[label] += 1
                    taken.append(self.rows[i])
            out.append(taken)
        return out


class Demonstrations:
    """The demonstration layer of a scorer: what prompt a candidate's rule makes, with the pools and
    retrievers it built kept here (a few, by the train split's identity)."""

    kept = 8

    def __init__(self):
        # ids of (train, demo_rows) -> (both, kept alive so the ids stay theirs; the pool; its hash)
        self.pools: dict[tuple, tuple] = {}
        self.retrievers: dict[str, Retriever] = {}  # pool hash -> its retriever

    def clear(self) -> None:
        self.pools.clear()
        self.retrievers.clear()

    def _entry(self, task) -> tuple:
        ids = (id(task.train), id(task.demo_rows))
        known = self.pools.get(ids)
        if known is not None and known[0][0] is task.train and known[0][1] is task.demo_rows:
            return known
        if len(self.pools) >= self.kept:
            self.pools.clear()
        rows = pool(task)
        self.pools[ids] = ((task.train, task.demo_rows), rows,
                           hashlib.sha1("\n".join(ex.key for ex in rows).encode()).hexdigest()[:16])
        return self.pools[ids]

    def pool(self, task) -> tuple:
        return self._entry(task)[1]

    def fingerprint(self, task) -> str:
        """A short hash of the task's pool, computed with it: a demonstrations rule's results depend on the rows it
        draws from, so the scorer's cache keys carry it (one scorer may score a candidate on tasks with different
        train rows)."""
        return self._entry(task)[2]

    def retriever(self, task) -> Retriever:
        _, rows, key = self._entry(task)
        if key not in self.retrievers:
            if len(self.retrievers) >= self.kept:
                self.retrievers.clear()
            self.retrievers[key] = Retriever(rows)
        return self.retrievers[key]

    def fixed_prompt(self, task, candidate) -> str:
        """The prompt with its ``balanced`` demonstrations in front (a per-input rule has none fixed)."""
        kind, count, draw = parse(candidate.demos)
        if kind != "balanced":
            raise PromptSearchError(f"demos={candidate.demos}: the demonstrations depend on the input")
        words = candidate.label_words or task.label_words
        return render(candidate.prompt, balanced(self.pool(task), task, count, draw), words, task.kind) + candidate.prompt

    def prompts(self, task, candidate, examples) -> str | list[str]:
        """What the scorer fills with each example: one prompt (balanced) or one per example (similar, and
        similar-per-class)."""
        kind, count, _ = parse(candidate.demos)
        if kind == "balanced":
            return self.fixed_prompt(task, candidate)
        words = candidate.label_words or task.label_words
        classes = len(task.label_words) if kind == "similar-per-class" and task.kind == "classification" else 0
        shots = self.retriever(task).nearest([ex.input for ex in examples], count, classes)
        return [render(candidate.prompt, list(reversed(s)), words, task.kind) + candidate.prompt for s in shots]
