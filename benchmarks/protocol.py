"""The few-label protocol's rows (LM-BFF, Gao et al. 2021): one place that says, per task and draw, which labelled
rows a search gets, which rows decide the project's design questions, and which rows only report.

Per task and draw (``draw`` 0-4):

- ``train`` and ``dev``: K = 16 rows per class each. SST-2, AG News and TREC use the shipped LM-BFF splits
  (``fewshot16/seed{13,21,42,87,100}``); an instruction-induction task gets ``IND_ROWS`` train and ``IND_ROWS``
  dev rows drawn (seeded by the draw) from its induce split.
- ``devsplit``: the **development split**, labelled rows outside the draw and outside test, on which every design
  decision of the project is measured (the search never sees them). SST-2: its full train split; TREC:
  ``train_full.jsonl``; AG News: the rows of the other four draws and the 16-shot train/dev (the shared data has no
  larger AG News train split); instruction induction: the rest of the induce split. ``DEVSPLIT_ROWS`` of them.
- ``test``: reported only, never used to choose, for a search or for the project. A fixed seeded sample of
  ``TEST_ROWS`` per task (the same for every draw, so draws differ only in their labelled rows): SST-2's and AG
  News' full test splits (1,821 and 7,600 rows) are more than two CPU cores can score for every baseline of every
  draw; TREC's 500 rows are all of it; instruction induction's execute split is 100 rows or fewer.
- ``many``: 2,000 labelled rows for the linear-probe ceiling (ceiling.py), disjoint from the draw's test rows.
  AG News has no such train split here, so its many-label probe is fitted on 2,000 rows of its test split that are
  not among the reported ones (said in the results).
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

try:
    from common import data_root, subsample, task_dir
except ImportError:  # imported as benchmarks.protocol
    from benchmarks.common import data_root, subsample, task_dir

CLASSIFICATION = ("sst2", "agnews", "trec")
FEWSHOT_SEEDS = (13, 21, 42, 87, 100)  # LM-BFF's five seeds, as shipped in fewshot16/
DRAWS = len(FEWSHOT_SEEDS)
IND_ROWS = 16  # instruction induction: train and dev rows per draw
TEST_ROWS = 500
DEVSPLIT_ROWS = 300
MANY_ROWS = 2000
TEST_SEED = 2021  # the test sample's seed: one sample for every draw and every method

# Written before the first protocol run (2026-12-02), from the task's name and label words only, as a user who
# knows the task would write it; never edited after seeing a score. Instruction-induction tasks' seed prompt is
# already the human-written reference instruction (Honovich et al.), so there the hand-written baseline is the seed.
HAND_WRITTEN = {
    "sst2": "Is the sentiment of this movie review negative or positive?\nReview: {input}\nSentiment:",
    "agnews": "What is this news article about: world, sports, business or technology?\nArticle: {input}\nTopic:",
    "trec": ("What kind of answer does this question ask for: a description, an entity, an abbreviation, a human, "
             "a location or a number?\nQuestion: {input}\nAnswer type:"),
}


def _rows(path: Path, words) -> tuple:
    from promptsearch.task import read_jsonl

    return read_jsonl(path, words) if path.exists() else ()


def _without(rows, taken) -> tuple:
    seen = {ex.input for ex in taken}
    return tuple(ex for ex in rows if ex.input not in seen)


def draw(name: str, index: int, data: Path | None = None):
    """The task for draw ``index``: train/dev the draw's labelled rows, test the fixed sample; and the extra
    splits as a dict: ``devsplit`` and ``many`` (see the module docstring)."""
    from promptsearch.task import load_task

    root = data_root(data)
    folder = task_dir(name, root)
    task = load_task(str(folder), seed=0)
    words = task.label_words
    test = subsample(task.test, TEST_ROWS, TEST_SEED)
    if name in CLASSIFICATION:
        shots = folder / "fewshot16" / f"seed{FEWSHOT_SEEDS[index]}"
        train, dev = _rows(shots / "train.jsonl", words), _rows(shots / "dev.jsonl", words)
        if name == "agnews":
            others = [r for s in FEWSHOT_SEEDS for f in ("train", "dev")
                      for r in _rows(folder / "fewshot16" / f"seed{s}" / f"{f}.jsonl", words)]
            pool = others + list(task.train) + list(task.dev)
            many_pool = _without(task.test, test)  # see the module docstring
        elif name == "trec":
            pool = many_pool = _rows(folder / "train_full.jsonl", words)
        else:
            pool = many_pool = task.train
        pool = _without(_dedupe(pool), train + dev + test)
    else:
        everything = list(task.train) + list(task.dev)  # load_task drew a dev from the induce split; undo it
        rng = random.Random(f"induction-draw:{name}:{index}")
        rng.shuffle(everything)
        train, dev = tuple(everything[:IND_ROWS]), tuple(everything[IND_ROWS:2 * IND_ROWS])
        pool = many_pool = tuple(everything[2 * IND_ROWS:])
    devsplit = subsample(tuple(pool), DEVSPLIT_ROWS, 7, stratify=task.kind == "classification")
    many = subsample(_without(_dedupe(many_pool), train + dev + test), MANY_ROWS, 11,
                     stratify=task.kind == "classification")
    task = replace(task, train=tuple(train), dev=tuple(dev), test=test, notes=())
    return task, {"devsplit": devsplit, "many": many}


def _dedupe(rows) -> tuple:
    seen, out = set(), []
    for ex in rows:
        if ex.input not in seen:
            seen.add(ex.input)
            out.append(ex)
    return tuple(out)


def induction_tasks(data: Path | None = None) -> list[str]:
    """The instruction-induction tasks with enough rows for a draw and a development split."""
    root = data_root(data) / "instruction_induction"
    names = sorted(p.name for p in root.iterdir() if (p / "train.jsonl").exists())
    return [n for n in names if sum(1 for _ in open(root / n / "train.jsonl", encoding="utf-8")) >= 4 * IND_ROWS]


def describe(name: str, index: int, data: Path | None = None) -> dict:
    task, extra = draw(name, index, data)
    return {"task": name, "draw": index, "train": len(task.train), "dev": len(task.dev), "test": len(task.test),
            **{k: len(v) for k, v in extra.items()}}


if __name__ == "__main__":
    for n in CLASSIFICATION:
        print(json.dumps(describe(n, 0)))
