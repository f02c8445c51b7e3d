"""Tasks: examples in JSONL splits plus what to measure; loaded and validated once.

A task directory holds ``train.jsonl``, ``dev.jsonl`` (optional: drawn from train when absent),
``test.jsonl`` and optionally ``task.json`` and ``labels.json``. Rows have ``input`` and ``output``,
optionally ``outputs`` (all accepted answers) and ``label`` (index into the label words).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import PromptSearchError
from .files import check_fields, parse_json, present, read_json, read_lines
from .limits import MAX_CLASSES, MAX_LABEL_CHARS
from .metrics import METRICS
from .template import validate

BUNDLED_DIR = Path(__file__).parent / "tasks"
DEFAULT_TASK = "sst2-mini"
KINDS = ("classification", "generation")
DEV_FROM_TRAIN_MAX = 100  # dev rows drawn from train when a task ships no dev split
ROW_FIELDS = ("input", "output", "outputs", "label", "id", "meta")  # meta: free-form, never read
TASK_NAME = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,99}$")
TASK_FIELDS = ("name", "kind", "label_words", "metric", "instruction", "seed_prompt", "description")


@dataclass(frozen=True)
class Example:
    input: str
    output: str
    outputs: tuple[str, ...] = ()
    label: int | None = None
    id: str = ""

    @property
    def answers(self) -> tuple[str, ...]:
        return self.outputs or (self.output,)

    @property
    def key(self) -> str:
        """Content hash: identical rows share cached scores, different rows never do."""
        raw = json.dumps([self.input, self.output, list(self.outputs), self.label])
        return hashlib.sha1(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Task:
    name: str
    kind: str
    train: tuple[Example, ...]
    dev: tuple[Example, ...]
    test: tuple[Example, ...]
    metric: str
    seed_prompt: str
    label_words: tuple[str, ...] = ()
    description: str = ""
    source: str = ""
    notes: tuple[str, ...] = field(default=())
    # selection.py: rows taken out of train and dev before a search, which only estimate its winner; and the
    # selection mode the task was prepared with ("" when not prepared)
    holdout: tuple[Example, ...] = ()
    selection: str = ""
    # labelled rows beyond train that a demonstrations rule may also draw from (a prepared task's choosing rows:
    # selection.py), never for the row being scored; empty for an unprepared task and for an artifact's stored pool
    demo_rows: tuple[Example, ...] = ()

    def split(self, name: str) -> tuple[Example, ...]:
        if name not in ("train", "dev", "test", "holdout"):
            raise PromptSearchError(f"unknown split {name!r}; use train, dev or test")
        return getattr(self, name)

    def with_seed_prompt(self, prompt: str) -> Task:
        return replace(self, seed_prompt=validate(prompt))

    @classmethod
    def from_records(cls, rows, label_words=(), name: str = "custom", input="input", output: str = "output",
                     split: str | None = None, split_ratios=(0.6, 0.2, 0.2), seed: int = 0, metric: str | None = None,
                     seed_prompt: str | None = None, instruction: str | None = None) -> Task:
        """A task from rows in memory (dicts with an input and an output column; ``split`` names a column of
        train/dev/test, else seeded splits by ``split_ratios``, stratified by label). Label words make it a
        classification task. ``input`` may name several columns (joined a line each, "col: value"); a generation
        answer may be a list of accepted answers. Checked as ``promptsearch tasks import`` checks a file
        (task_import.py)."""
        from . import task_import

        words = tuple(label_words or ())
        if words:
            check_label_words(list(words), "label_words")
        splits = task_import.make_splits(list(rows), words, input, output, split, split_ratios, seed)
        meta = task_import.task_meta(name, words, metric, seed_prompt, instruction)
        task_import.check_meta(meta)
        kind = meta["kind"]
        made = {s: tuple(Example(r["input"], r["output"], tuple(r.get("outputs", ())), r.get("label"), f"{s}-{i}")
                         for i, r in enumerate(splits[s], 1)) for s in task_import.SPLITS}
        if not made["dev"]:
            raise PromptSearchError("the dev split is empty; give more rows or other split ratios")
        return cls(name=name, kind=kind, train=made["train"], dev=made["dev"], test=made["test"],
                   metric=metric or METRICS[kind][0], seed_prompt=seed_prompt or default_seed_prompt(kind, instruction or ""),
                   label_words=words, description=instruction or "", source="")

    @classmethod
    def from_pandas(cls, frame, input="input", output: str = "output", **options) -> Task:
        """A task from a pandas DataFrame's columns (see ``from_records`` for the options)."""
        from .task_import import rows_from_table

        split = options.get("split")
        return cls.from_records(rows_from_table(frame, input, output, split), input=input, output=output, **options)


def bundled_tasks() -> list[str]:
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if (p / "test.jsonl").exists())


def resolve_task_dir(spec: str | None) -> Path:
    spec = spec or DEFAULT_TASK
    if (BUNDLED_DIR / spec / "test.jsonl").exists() and "/" not in spec:
        return BUNDLED_DIR / spec
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    raise PromptSearchError(
        f"task {spec!r} is neither a bundled task ({', '.join(bundled_tasks())}) nor a directory"
    )


def read_jsonl(path: Path, label_words: tuple[str, ...]) -> tuple[Example, ...]:
    rows = []
    for lineno, line in read_lines(path):
        if line.strip():
            rows.append(_example(parse_json(line, f"{path}:{lineno}"), path, lineno, label_words))
    if not rows:
        raise PromptSearchError(f"{path}: the split is empty")
    return tuple(rows)


def _example(row, path: Path, lineno: int, label_words: tuple[str, ...]) -> Example:
    where = f"{path}:{lineno}"
    if not isinstance(row, dict):
        raise PromptSearchError(f"{where}: a row must be a JSON object")
    check_fields(row, ROW_FIELDS, where, " (put anything else under 'meta')")
    for name in ("input", "output"):
        if not isinstance(row.get(name), str):
            if name == "output" and label_words and isinstance(row.get("label"), int):
                continue
            raise PromptSearchError(f"{where}: missing or non-string field {name!r}")
    label = row.get("label")
    output = row.get("output")
    if label_words:
        if label is None:
            if output not in label_words:
                raise PromptSearchError(f"{where}: unknown label {output!r}; label words are {list(label_words)}")
            label = label_words.index(output)
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(label_words):
            raise PromptSearchError(f"{where}: unknown label {label!r}; expected 0..{len(label_words) - 1}")
        if isinstance(output, str) and output != label_words[label]:
            raise PromptSearchError(f"{where}: output {output!r} contradicts label {label} ({label_words[label]!r}); "
                                    "give one of them, or both agreeing")
        output = output if isinstance(output, str) else label_words[label]
    if row.get("id") is not None and (isinstance(row["id"], bool) or not isinstance(row["id"], (str, int))):
        raise PromptSearchError(f"{where}: field 'id' must be a string or a whole number")
    outputs = row.get("outputs") or ()
    if not isinstance(outputs, (list, tuple)) or not all(isinstance(o, str) for o in outputs):
        raise PromptSearchError(f"{where}: field 'outputs' must be a list of strings")
    return Example(input=row["input"], output=output, outputs=tuple(outputs), label=label, id=str(row.get("id", lineno)))


def _ape_instruction(directory: Path) -> str:
    """Instruction-induction folders (as shipped by APE) carry human instructions; use the first."""
    for path in sorted((directory / "original").glob("annotations_*.json")):
        notes = read_json(path).get("annotations") or []
        if notes and isinstance(notes, list) and isinstance(notes[0], str):
            return notes[0].strip()
    return ""


def check_label_words(words, where: str) -> tuple[str, ...]:
    """Label words as given: a list of two or more distinct non-empty strings without white space at either end
    (the scorer puts the space before a word itself; "positive " and "positive" would be two classes that read
    the same). An empty list is an error, not a generation task: remove the file or set kind for that."""
    if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
        raise PromptSearchError(f"{where}: label words must be a list of non-empty strings")
    for w in words:
        if w != w.strip():
            raise PromptSearchError(f"{where}: label word {w!r} has white space at its start or end; the scorer puts "
                                    "the space before a word itself")
    if len(words) < 2:
        raise PromptSearchError(f"{where}: a classification task needs at least two label words, got {len(words)}"
                                " (for a generation task, remove the label words)")
    if len(words) > MAX_CLASSES:  # limits.py says why
        raise PromptSearchError(f"{where}: {len(words)} label words; at most {MAX_CLASSES} classes (for open answers, "
                                "make it a generation task)")
    for w in words:
        if len(w) > MAX_LABEL_CHARS:
            raise PromptSearchError(f"{where}: label word {w[:40]!r}... is {len(w)} characters; at most "
                                    f"{MAX_LABEL_CHARS} (for long answers, make it a generation task)")
    seen = set()
    for w in words:
        if w in seen:
            raise PromptSearchError(f"{where}: label word {w!r} is listed twice; every class needs its own word")
        seen.add(w)
    return tuple(words)


# A generation task whose answers look like classes: each of at most this many values, each given at least twice.
FEW_ANSWERS = 20


def label_gaps(task) -> list[str]:
    """What the labelled rows lack for a search to mean anything, one line each (empty when nothing).
    Classification: label words that no train or dev row has (no prompt is ever checked on them), and a dev split
    of one class (a prompt that always gives that answer scores 1.0 there). Generation: answers that look like
    classes given without label words (they are then generated and matched as text, "0" and "positive" alike, not
    scored as a choice among words). Warnings, not errors: the user may know."""
    if task.kind != "classification":
        return _classes_without_label_words(task)
    if not task.label_words:
        return []
    labelled = [ex for ex in (*task.train, *task.dev, *task.holdout) if ex.label is not None]
    out = []
    missing = [w for i, w in enumerate(task.label_words) if not any(ex.label == i for ex in labelled)]
    if missing:
        out.append(f"no train or dev row has the label {', '.join(repr(w) for w in missing)}: a search cannot "
                   "check a prompt on it; add such rows")
    dev_labels = {ex.label for ex in task.dev if ex.label is not None}
    if len(task.dev) > 1 and len(dev_labels) == 1:
        only = task.label_words[next(iter(dev_labels))]
        out.append(f"every dev row has the label {only!r}: a prompt that always answers {only!r} scores 1.0 on "
                   "dev; add rows of the other labels")
    return out


def _classes_without_label_words(task) -> list[str]:
    answers = [ex.output for ex in (*task.train, *task.dev, *task.holdout)]
    counts = Counter(answers)
    if len(answers) < 8 or len(counts) > min(FEW_ANSWERS, len(answers) // 3) or min(counts.values()) < 2:
        return []
    values = sorted(counts, key=lambda a: (not a.isdigit(), int(a) if a.isdigit() else 0, a))
    shown = ", ".join(repr(v[:30]) for v in values[:8]) + (", ..." if len(values) > 8 else "")
    return [(f"every answer is one of {len(values)} values ({shown}): if they are classes, give label words "
            "(--label-words w1,w2,... or label_words=[...], one word per class, in class-index order where the "
            "answers are indexes) for a classification task; without them the model must write each answer "
            "exactly")]


def default_seed_prompt(kind: str, instruction: str) -> str:
    head = (instruction.rstrip() + "\n") if instruction else ""
    return head + ("Input: {input}\nLabel:" if kind == "classification" else "Input: {input}\nOutput:")


def load_task(spec: str | None = None, seed: int = 0) -> Task:
    directory = resolve_task_dir(spec)
    meta = read_json(directory / "task.json") if present(directory / "task.json") else {}
    check_fields(meta, TASK_FIELDS, str(directory / "task.json"))
    for name in ("name", "kind", "metric", "instruction", "seed_prompt", "description"):
        if meta.get(name) is not None and not isinstance(meta[name], str):
            raise PromptSearchError(f"{directory / 'task.json'}: field {name!r} must be a string")
    if meta.get("name") is not None and not TASK_NAME.match(meta["name"]):
        # the name becomes part of the run directory's path: it must not lead out of runs/
        raise PromptSearchError(f"{directory / 'task.json'}: field 'name' {meta['name'][:40]!r} must be 1-100 letters, "
                                "digits, '.', '_', '+' or '-', not starting with '.'")
    if meta.get("label_words") is not None:
        label_words = check_label_words(meta["label_words"], f"{directory / 'task.json'}: field 'label_words'")
    elif present(directory / "labels.json"):
        label_words = check_label_words(read_json(directory / "labels.json", list), str(directory / "labels.json"))
    else:
        label_words = ()
    kind = meta.get("kind") or ("classification" if label_words else "generation")
    if kind not in KINDS:
        raise PromptSearchError(f"{directory / 'task.json'}: field 'kind' must be one of {KINDS}, not {kind!r}")
    if kind == "classification" and len(label_words) < 2:
        raise PromptSearchError(f"{directory}: a classification task needs at least two label words")
    metric = meta.get("metric") or METRICS[kind][0]
    if metric not in METRICS[kind]:
        raise PromptSearchError(f"{directory / 'task.json'}: metric {metric!r} does not fit a {kind} task; use one of {METRICS[kind]}")
    words = label_words if kind == "classification" else ()
    train = read_jsonl(directory / "train.jsonl", words)
    test = read_jsonl(directory / "test.jsonl", words)
    notes = []
    if present(directory / "dev.jsonl"):
        dev = read_jsonl(directory / "dev.jsonl", words)
    else:
        # No dev split: hold out part of train, seeded, so search never looks at test.
        order = list(range(len(train)))
        random.Random(seed).shuffle(order)
        n_dev = max(1, min(DEV_FROM_TRAIN_MAX, len(train) // 3))
        dev = tuple(train[i] for i in sorted(order[:n_dev]))
        train = tuple(train[i] for i in sorted(order[n_dev:]))
        notes.append(f"dev: {n_dev} rows drawn from train (seed {seed})")
    instruction = meta.get("instruction") or _ape_instruction(directory)
    seed_prompt = meta.get("seed_prompt") or default_seed_prompt(kind, instruction)
    try:
        validate(seed_prompt)
    except PromptSearchError as e:
        raise PromptSearchError(f"{directory / 'task.json'}: seed_prompt: {e}") from None
    return Task(
        name=meta.get("name") or directory.name,
        kind=kind,
        train=train,
        dev=dev,
        test=test,
        metric=metric,
        seed_prompt=seed_prompt,
        label_words=words,
        description=meta.get("description") or instruction,
        source=str(directory),
        notes=tuple(notes),
    )
