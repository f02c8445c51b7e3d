"""Tasks from your data: a table (CSV, JSONL, Parquet, a Hugging Face ``datasets`` folder saved with
``save_to_disk``, or rows in memory) turned into a task folder or a ``Task``.

Files are read with pandas, pyarrow and datasets (the optional extra ``promptsearch[data]``), never by parsers of
our own. Rows need a non-empty input and output; a repeated input is refused (the same text in train and test
would leak). Splits come from a column (train / dev / test; ``validation`` counts as dev) or are drawn seeded:
stratified by label for classification (each class cut by the ratios), a plain shuffle for generation.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

from .errors import PromptSearchError

SPLITS = ("train", "dev", "test")
SPLIT_NAMES = {"train": "train", "dev": "dev", "validation": "dev", "valid": "dev", "val": "dev", "test": "test"}
DEFAULT_RATIOS = (0.6, 0.2, 0.2)
FORMATS = ("csv", "jsonl", "parquet", "datasets")


def read_table(path: str | Path):
    """A pandas DataFrame from a CSV, JSONL or Parquet file, or a ``save_to_disk`` folder (a DatasetDict's splits
    are stacked with their names in a ``split`` column)."""
    path = Path(path)
    pd = _need("pandas")
    try:
        if path.is_dir():
            datasets = _need("datasets")
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                return pd.concat([loaded[name].to_pandas().assign(split=name) for name in loaded], ignore_index=True)
            return loaded.to_pandas()
        if not path.exists():
            raise PromptSearchError(f"{path}: file not found")
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        if suffix in (".jsonl", ".ndjson"):
            return pd.DataFrame.from_records(_jsonl_rows(path))
        if suffix == ".parquet":
            _need("pyarrow")
            return pd.read_parquet(path)
    except PromptSearchError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as e:  # pandas/pyarrow/datasets: a bad file, in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PromptSearchError(f"{path}: cannot read as a table ({first})") from None
    raise PromptSearchError(f"{path}: unknown format; use .csv, .jsonl, .parquet or a datasets save_to_disk folder")


def _jsonl_rows(path: Path) -> list[dict]:
    """A JSONL table's rows, read as every other JSON file is (files.py: a BOM dropped, bad bytes, bad JSON, deep
    nesting and lone surrogates one line naming the line); each line must be an object of column to value."""
    from .files import parse_json, read_lines

    rows = []
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        row = parse_json(line, f"{path}:{lineno}")
        if not isinstance(row, dict):
            raise PromptSearchError(f"{path}:{lineno}: a row must be a JSON object of column to value")
        rows.append(row)
    return rows


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise PromptSearchError(f"reading tables needs {module}: pip install 'promptsearch[data]'") from None


def input_columns(input_col) -> tuple[str, ...]:
    """One input column's name, or several (a pair of sentences, a question and its passage), as a tuple."""
    cols = (input_col,) if isinstance(input_col, str) else tuple(input_col)
    if not cols or not all(isinstance(c, str) and c for c in cols) or len(set(cols)) != len(cols):
        raise PromptSearchError(f"input columns {list(cols)!r}: give one or more distinct column names")
    return cols


def rows_from_table(table, input_col, output_col: str, split_col: str | None = None) -> list[dict]:
    """The table's rows as dicts of the named columns (input, output, split), columns checked by name."""
    columns = [str(c) for c in table.columns]
    named = [("--input", c) for c in input_columns(input_col)] + [("--output", output_col), ("--split-column", split_col)]
    for what, col in named:
        if col is not None and col not in columns:
            # "--input 'input'" also when the default was taken: the flag to give is named either way
            raise PromptSearchError(f"{what} {col!r}: no such column (name it with {what} COLUMN); the table has "
                                    f"{', '.join(columns)}")
    keep = list(dict.fromkeys(c for _, c in named if c is not None))
    return [dict(zip(keep, values)) for values in table[keep].itertuples(index=False, name=None)]


def make_splits(rows: list[dict], label_words: tuple[str, ...] = (), input_col="input",
                output_col: str = "output", split_col: str | None = None, ratios=DEFAULT_RATIOS,
                seed: int = 0) -> dict[str, list[dict]]:
    """Checked rows ({"input", "output", "outputs"?, "label"?}) in train / dev / test. Several input columns are
    joined into one text, a line each ("question: ...\npassage: ..."); a generation answer may be a list of
    accepted answers (the first is the output). Row numbers in errors count from 1."""
    inputs = input_columns(input_col)
    clean, seen = [], {}
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise PromptSearchError(f"row {i}: must be a mapping of column to value")
        for col in inputs + (output_col,) + ((split_col,) if split_col else ()):
            if col not in row:
                raise PromptSearchError(f"row {i}: no column {col!r}")
        texts = [_text(row[col], col, i) for col in inputs]
        answers = _answers(row[output_col], output_col, i, bool(label_words))
        answer = answers[0]
        for col, value in zip(inputs + (output_col,), texts + [answer]):
            if not value.strip():
                raise PromptSearchError(f"row {i}: empty {col!r}")
        text = texts[0] if len(inputs) == 1 else "\n".join(f"{col}: {value}" for col, value in zip(inputs, texts))
        if text in seen:
            raise PromptSearchError(f"row {i}: repeats the input of row {seen[text]} (duplicate rows would leak "
                                    "between splits); remove one")
        seen[text] = i
        out = {"input": text, "output": answer}
        if len(answers) > 1:
            out["outputs"] = answers
        if label_words:
            out["label"] = _label(answer, label_words, i)
            out["output"] = label_words[out["label"]]
        if split_col:
            name = SPLIT_NAMES.get(_cell(row[split_col]).strip().lower())
            if name is None:
                raise PromptSearchError(f"row {i}: split {row[split_col]!r} is none of train, dev (validation), test")
            out["split"] = name
        clean.append(out)
    if not clean:
        raise PromptSearchError("the table has no rows")
    splits = _by_column(clean) if split_col else _drawn(clean, tuple(ratios), seed, bool(label_words))
    for name in ("train", "test"):
        if not splits[name]:
            raise PromptSearchError(f"the {name} split is empty; give more rows or other --split-ratios")
    return splits


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)


def _listlike(value) -> bool:
    """A list cell as JSON, Parquet or datasets give it (a list, a tuple, a numpy array), never a string."""
    return isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray"


def _text(value, col: str, i: int) -> str:
    """An input cell as text; a list or a mapping would become its Python repr, never what the user meant."""
    if _listlike(value) or isinstance(value, dict):
        raise PromptSearchError(f"row {i}: column {col!r} holds a {'mapping' if isinstance(value, dict) else 'list'}, "
                                "not text; give a column of text (several input columns: name each)")
    return _cell(value)


def _answers(value, col: str, i: int, classification: bool) -> list[str]:
    """A row's answers: one cell's text, or a generation row's list of accepted answers (duplicates dropped)."""
    if isinstance(value, dict):
        raise PromptSearchError(f"row {i}: column {col!r} holds a mapping, not an answer")
    if not _listlike(value):
        return [_cell(value)]
    if classification:
        raise PromptSearchError(f"row {i}: column {col!r} holds a list; a classification row has one label")
    answers = [_text(v, col, i) for v in list(value)]
    if not answers or any(not a.strip() for a in answers):
        raise PromptSearchError(f"row {i}: column {col!r} holds an empty list or an empty answer")
    return list(dict.fromkeys(answers))


def _label(answer: str, words: tuple[str, ...], i: int) -> int:
    if answer in words:
        return words.index(answer)
    if answer.strip().isdigit() and int(answer) < len(words):  # a class index, as many datasets store labels
        return int(answer)
    raise PromptSearchError(f"row {i}: label {answer!r} is none of the label words {list(words)} "
                            f"(nor a class index 0..{len(words) - 1}; indices count from 0)")


def _by_column(rows: list[dict]) -> dict[str, list[dict]]:
    out = {name: [] for name in SPLITS}
    for row in rows:
        out[row.pop("split")].append(row)
    return out


def parse_ratios(text: str) -> tuple[float, float, float]:
    try:
        ratios = tuple(float(x) for x in text.split(","))
    except ValueError:
        ratios = ()
    if len(ratios) != 3 or any(r < 0 or not math.isfinite(r) for r in ratios) or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise PromptSearchError(f"--split-ratios {text!r}: three non-negative numbers summing to 1, e.g. 0.6,0.2,0.2")
    return ratios


def _drawn(rows: list[dict], ratios, seed: int, stratified: bool) -> dict[str, list[dict]]:
    """Seeded splits; stratified: each class is shuffled and cut by the ratios, so every split keeps its mix."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(row.get("label") if stratified else None, []).append(row)
    out = {name: [] for name in SPLITS}
    rng = random.Random(seed)
    for key in sorted(groups, key=lambda k: (k is None, k)):
        group = list(groups[key])
        rng.shuffle(group)
        n_train = round(len(group) * ratios[0])
        n_dev = round(len(group) * (ratios[0] + ratios[1])) - n_train
        out["train"] += group[:n_train]
        out["dev"] += group[n_train : n_train + n_dev]
        out["test"] += group[n_train + n_dev :]
    for name in SPLITS:  # interleave the classes again, in a seeded order
        rng.shuffle(out[name])
    return out


def task_meta(name: str, label_words: tuple[str, ...], metric: str | None = None, seed_prompt: str | None = None,
              instruction: str | None = None, description: str = "") -> dict:
    meta = {"name": name, "kind": "classification" if label_words else "generation"}
    if label_words:
        meta["label_words"] = list(label_words)
    for key, value in (("metric", metric), ("seed_prompt", seed_prompt), ("instruction", instruction),
                       ("description", description)):
        if value:
            meta[key] = value
    return meta


def write_task_dir(out: str | Path, splits: dict[str, list[dict]], meta: dict) -> Path:
    """The task folder (task.json and a JSONL file per split), written into a temporary folder and renamed into
    place: a failure leaves nothing half-written. Refuses a folder that holds files already."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PromptSearchError(f"{out}: exists and is not an empty folder; choose another --out")
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / "task.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        for name in SPLITS:
            if splits[name]:
                lines = [json.dumps(row, ensure_ascii=False) for row in splits[name]]
                (tmp / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PromptSearchError(f"{out}: cannot write ({e.strerror or e})") from None
    return out


def import_file(path, out, input_col, output_col: str, label_words: tuple[str, ...] = (),
                split_col: str | None = None, ratios=DEFAULT_RATIOS, seed: int = 0, name: str | None = None,
                metric: str | None = None, seed_prompt: str | None = None):
    """``promptsearch tasks import``: a table file into a task folder; returns the folder (load it with
    ``load_task``: this module stays below task.py, whose ``Task.from_records`` uses it)."""
    table = read_table(path)
    if split_col is None and "split" in getattr(table, "columns", []) and Path(path).is_dir():
        split_col = "split"  # a DatasetDict's own splits
    splits = make_splits(rows_from_table(table, input_col, output_col, split_col), tuple(label_words), input_col, output_col, split_col, ratios, seed)
    meta = task_meta(name or Path(out).name, tuple(label_words), metric, seed_prompt)
    check_meta(meta)
    return write_task_dir(out, splits, meta)


def check_meta(meta: dict) -> None:
    from .metrics import METRICS
    from .template import validate

    kind = meta["kind"]
    if meta.get("metric") and meta["metric"] not in METRICS[kind]:
        raise PromptSearchError(f"--metric {meta['metric']!r} does not fit a {kind} task; use one of {METRICS[kind]}")
    if meta.get("seed_prompt"):
        validate(meta["seed_prompt"])


def save_task(task, out: str | Path) -> Path:
    """A Task (say, one built in memory) written as a task folder that ``load_task`` reads back the same."""
    splits = {s: [{"input": ex.input, "output": ex.output, **({"outputs": list(ex.outputs)} if ex.outputs else {}),
                   **({"label": ex.label} if ex.label is not None else {}), "id": ex.id} for ex in task.split(s)]
              for s in SPLITS}
    meta = task_meta(task.name, tuple(task.label_words), task.metric, task.seed_prompt, description=task.description)
    return write_task_dir(out, splits, meta)
