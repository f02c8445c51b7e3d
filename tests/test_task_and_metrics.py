import json

import pytest

from promptsearch.errors import PromptSearchError
from promptsearch.metrics import summarize, wilson
from promptsearch.scoring import ExampleResult
from promptsearch.task import bundled_tasks, load_task

from .conftest import SHARED_DATA


def _write(d, name, rows):
    (d / name).write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def _task_dir(tmp_path, train=None, dev=None, test=None, meta=None, labels=("no", "yes")):
    rows = [{"input": f"t{i}", "output": labels[i % 2], "label": i % 2} for i in range(6)]
    _write(tmp_path, "train.jsonl", train or rows)
    if dev is not False:
        _write(tmp_path, "dev.jsonl", dev or rows)
    _write(tmp_path, "test.jsonl", test or rows)
    if labels:
        (tmp_path / "labels.json").write_text(json.dumps(list(labels)))
    if meta:
        (tmp_path / "task.json").write_text(json.dumps(meta))
    return tmp_path


def test_bundled_default_task():
    assert "sst2-mini" in bundled_tasks()
    t = load_task()
    assert (t.name, t.kind, t.metric, t.label_words) == ("sst2-mini", "classification", "accuracy", ("negative", "positive"))
    assert (len(t.train), len(t.dev), len(t.test)) == (200, 100, 200)
    assert "{input}" in t.seed_prompt


def test_shared_sst2_and_instruction_induction_load():
    t = load_task(f"{SHARED_DATA}/sst2")
    assert len(t.test) == 1821 and t.label_words == ("negative", "positive")
    ii = load_task(f"{SHARED_DATA}/instruction_induction/antonyms")
    assert ii.kind == "generation" and ii.metric == "exact_match"
    assert len(ii.dev) == 100 and len(ii.train) == 2592 - 100  # dev drawn from train, disjoint
    assert not {e.id for e in ii.dev} & {e.id for e in ii.train}  # row ids: dev rows left train
    assert "opposite" in ii.seed_prompt  # the first human instruction seeds the search
    assert load_task(f"{SHARED_DATA}/instruction_induction/antonyms", seed=1).dev != ii.dev


@pytest.mark.parametrize("rows,match", [
    (['{"input": "a", "output": "no"', ], r"train.jsonl:1: bad JSON"),
    ([{"input": "a", "output": "no"}, {"output": "yes"}], r"train.jsonl:2: missing or non-string field 'input'"),
    ([{"input": "a", "output": "maybe"}], r"train.jsonl:1: unknown label 'maybe'"),
    ([{"input": "a", "output": "no", "label": 7}], r"train.jsonl:1: unknown label 7"),
])
def test_bad_rows_name_file_and_line(tmp_path, rows, match):
    d = _task_dir(tmp_path, train=rows)
    with pytest.raises(PromptSearchError, match=match):
        load_task(str(d))


def test_empty_split_and_missing_file(tmp_path):
    d = _task_dir(tmp_path)
    (d / "test.jsonl").write_text("\n")
    with pytest.raises(PromptSearchError, match="test.jsonl: the split is empty"):
        load_task(str(d))
    (d / "test.jsonl").unlink()
    with pytest.raises(PromptSearchError, match="test.jsonl: file not found"):
        load_task(str(d))


def test_task_json_validated(tmp_path):
    d = _task_dir(tmp_path, meta={"seed_prompt": "no slot"})
    with pytest.raises(PromptSearchError, match="seed_prompt.*no \\{input\\} slot"):
        load_task(str(d))
    d = _task_dir(tmp_path, meta={"metric": "bleu"})
    with pytest.raises(PromptSearchError, match="metric 'bleu'"):
        load_task(str(d))


def test_wilson_interval_known_values():
    lo, hi = wilson(82, 100)
    assert lo == pytest.approx(0.7333, abs=1e-3) and hi == pytest.approx(0.8829, abs=1e-3)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == pytest.approx(1.0)
    import numpy as np

    # a score's interval prints as plain numbers in the Python API, not np.float64(...), whatever summed the outcomes
    assert all(type(x) is float for x in wilson(np.float64(3.0), 4) + wilson(np.int64(0), 4))


def test_summarize_accuracy_and_macro_f1():
    t = load_task()
    exs = t.dev[:4]
    preds = ["negative", "positive", "positive", "positive"]
    results = [ExampleResult(float(p == e.output), p) for p, e in zip(preds, exs)]
    acc = summarize("accuracy", results, exs)
    assert acc.n == 4 and acc.score == sum(r.score for r in results) / 4 and acc.ci_low <= acc.score <= acc.ci_high
    f1 = summarize("macro_f1", results, exs, t.label_words)
    from sklearn.metrics import f1_score

    gold = [e.label for e in exs]
    assert f1.score == pytest.approx(f1_score(gold, [t.label_words.index(p) for p in preds], average="macro"))
