"""`promptsearch tasks import`: CSV, JSONL, Parquet and a datasets save_to_disk folder round-trip into a task
folder; seeded stratified splits; one-line errors that leave nothing written."""

import json

import pytest
from click.testing import CliRunner

import promptsearch as ps
from promptsearch.cli import main
from promptsearch.metrics import score_prediction
from promptsearch.task import label_gaps, load_task

pd = pytest.importorskip("pandas")

WORDS = ["negative", "positive"]


def table(n=50):
    """n rows, 2 in 5 positive, with extra columns a real table would have."""
    return pd.DataFrame({"id": range(n), "sentence": [f"review number {i}, {'great' if i % 5 < 2 else 'dull'}" for i in range(n)],
                         "sentiment": ["positive" if i % 5 < 2 else "negative" for i in range(n)],
                         "part": ["train"] * (n - 20) + ["validation"] * 10 + ["test"] * 10})


def write(frame, path, fmt):
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        datasets = pytest.importorskip("datasets")
        datasets.Dataset.from_pandas(frame, preserve_index=False).save_to_disk(str(path))
    return path


def run(*args):
    return CliRunner().invoke(main, ["tasks", "import", *[str(a) for a in args]])


@pytest.mark.parametrize("fmt, name", [("csv", "t.csv"), ("jsonl", "t.jsonl"), ("parquet", "t.parquet"), ("datasets", "saved")])
def test_each_format_round_trips_with_stratified_seeded_splits(tmp_path, fmt, name):
    source = write(table(), tmp_path / name, fmt)
    r = run(source, "--input", "sentence", "--output", "sentiment", "--label-words", "negative,positive",
            "--out", tmp_path / "task", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["task"]["train"] == 30
    task = load_task(str(tmp_path / "task"))
    assert task.kind == "classification" and task.label_words == tuple(WORDS) and task.name == "task"
    assert (len(task.train), len(task.dev), len(task.test)) == (30, 10, 10)
    for split in (task.train, task.dev, task.test):  # 2 in 5 positive in every split
        assert sum(ex.label for ex in split) * 5 == len(split) * 2
    rows = {ex.input: ex.output for ex in task.train + task.dev + task.test}
    assert rows == dict(zip(table()["sentence"], table()["sentiment"]))
    again = tmp_path / "again"  # the same seed draws the same splits; another seed others
    run(source, "--input", "sentence", "--output", "sentiment", "--label-words", "negative,positive", "--out", again)
    assert load_task(str(again)).test == task.test
    other = tmp_path / "other"
    run(source, "--input", "sentence", "--output", "sentiment", "--label-words", "negative,positive", "--out", other, "--seed", 1)
    assert load_task(str(other)).test != task.test


def test_split_column_class_indices_and_generation(tmp_path):
    frame = table()
    frame["label"] = [int(s == "positive") for s in frame["sentiment"]]
    source = write(frame, tmp_path / "t.parquet", "parquet")
    assert run(source, "--input", "sentence", "--output", "label", "--label-words", "negative,positive",
               "--split-column", "part", "--out", tmp_path / "c").exit_code == 0
    task = load_task(str(tmp_path / "c"))
    assert [ex.input for ex in task.test] == list(frame["sentence"][40:]) and task.test[0].output == WORDS[task.test[0].label]
    assert run(source, "--input", "sentence", "--output", "sentiment", "--split-ratios", "0.5,0.25,0.25",
               "--out", tmp_path / "g").exit_code == 0
    gen = load_task(str(tmp_path / "g"))
    assert gen.kind == "generation" and gen.metric == "exact_match" and len(gen.train) == 25


def test_a_datasets_dict_keeps_its_own_splits(tmp_path):
    datasets = pytest.importorskip("datasets")
    frame = table()
    parts = {name: datasets.Dataset.from_pandas(frame[frame["part"] == name].drop(columns="part"), preserve_index=False)
             for name in ("train", "validation", "test")}
    datasets.DatasetDict(parts).save_to_disk(str(tmp_path / "dd"))
    assert run(tmp_path / "dd", "--input", "sentence", "--output", "sentiment", "--label-words", "negative,positive",
               "--out", tmp_path / "t").exit_code == 0
    task = load_task(str(tmp_path / "t"))
    assert (len(task.train), len(task.dev), len(task.test)) == (30, 10, 10)
    assert [ex.input for ex in task.dev] == list(frame["sentence"][30:40])


@pytest.mark.parametrize("change, args, message", [
    (None, ["--input", "text"], "--input 'text': no such column (name it with --input COLUMN); the table has id, "
                                "sentence, sentiment, part"),
    (lambda f: f.assign(sentence=f["sentence"].where(f.index != 3, "")), [], "row 4: empty 'sentence'"),
    (lambda f: f.assign(sentence=f["sentence"].where(f.index != 7, f["sentence"][2])), [], "row 8: repeats the input of row 3"),
    (lambda f: f.assign(sentiment=f["sentiment"].where(f.index != 5, "meh")), [], "row 6: label 'meh' is none of the label words"),
    (None, ["--split-ratios", "0.5,0.5"], "three non-negative numbers summing to 1"),
    (lambda f: f.iloc[:0], [], "the table has no rows"),
])
def test_bad_tables_are_one_line_and_write_nothing(tmp_path, change, args, message):
    frame = change(table()) if change else table()
    source = write(frame, tmp_path / "t.csv", "csv")
    base = {"--input": "sentence", "--output": "sentiment", "--label-words": "negative,positive"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    r = run(source, *[x for kv in base.items() for x in kv], "--out", tmp_path / "task")
    assert r.exit_code == 2 and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "task").exists() and not any(p.name.startswith(".task") for p in tmp_path.iterdir())


def test_refuses_a_folder_with_files_and_an_unknown_format(tmp_path):
    source = write(table(), tmp_path / "t.csv", "csv")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    r = run(source, "--input", "sentence", "--output", "sentiment", "--out", tmp_path / "busy")
    assert r.exit_code == 2 and "not an empty folder" in r.stderr and (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    (tmp_path / "t.xlsx").write_text("x")
    r = run(tmp_path / "t.xlsx", "--input", "sentence", "--output", "sentiment", "--out", tmp_path / "x")
    assert r.exit_code == 2 and "unknown format" in r.stderr
    r = run(tmp_path / "missing.csv", "--input", "a", "--output", "b", "--out", tmp_path / "y")
    assert r.exit_code == 2 and "file not found" in r.stderr


def test_a_label_no_row_has_and_a_one_class_dev_are_warned_at_import_and_by_the_run(tmp_path, tiny_dir):
    """Before 2026-12-05 (evening): eight rows all of one class made a task, and a search on it, with no word of it:
    every prompt that answered that class scored 1.0 on dev."""
    frame = table(30)
    frame["sentiment"] = "negative"  # the user's file, sorted by label and cut: one class
    source = write(frame, tmp_path / "one.csv", "csv")
    r = run(source, "--input", "sentence", "--output", "sentiment", "--label-words", "negative,positive",
            "--out", tmp_path / "task")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("wrote ") and "warning" not in r.stdout
    assert r.stderr.splitlines() == [
        "warning: no train or dev row has the label 'positive': a search cannot check a prompt on it; add such rows",
        "warning: every dev row has the label 'negative': a prompt that always answers 'negative' scores 1.0 on dev; "
        "add rows of the other labels"]
    shown = json.loads(run(source, "--input", "sentence", "--output", "sentiment", "--label-words",
                           "negative,positive", "--out", tmp_path / "again", "--json").stdout)
    assert len(shown["warnings"]) == 2
    r = CliRunner().invoke(main, ["run", "--task", str(tmp_path / "task"), "--model", tiny_dir, "--max-evals", "40",
                                  "--strategy", "templates", "--out", str(tmp_path / "r"), "--json", "--quiet"])
    assert r.exit_code == 0, r.stderr
    assert [w.split(":")[0] for w in json.loads(r.stdout)["data_warnings"]] == [
        "no train or dev row has the label 'positive'", "every dev row has the label 'negative'"]
    shown = CliRunner().invoke(main, ["show", str(tmp_path / "r")]).stdout
    assert "warning: no train or dev row has the label 'positive'" in shown
    balanced = run(write(table(), tmp_path / "ok.csv", "csv"), "--input", "sentence", "--output", "sentiment",
                   "--label-words", "negative,positive", "--out", tmp_path / "fine")
    assert balanced.exit_code == 0 and balanced.stderr == ""


def test_columns_default_to_input_and_output_as_in_python(tmp_path):
    """Before 2026-12-06 the command required --input and --output where Task.from_records defaults to "input"
    and "output"; a usage error named "promptsearch import --help", a command that does not exist."""
    rows = table().rename(columns={"sentence": "input", "sentiment": "output"})
    r = run(write(rows, tmp_path / "t.jsonl", "jsonl"), "--label-words", "negative,positive", "--out", tmp_path / "task")
    assert r.exit_code == 0, r.stderr
    assert len(load_task(str(tmp_path / "task")).train) == 30
    r = run(write(table(), tmp_path / "other.csv", "csv"), "--out", tmp_path / "x")
    assert r.exit_code == 2 and r.stderr.strip() == ("error: --input 'input': no such column (name it with --input "
                                                     "COLUMN); the table has id, sentence, sentiment, part")
    r = run(tmp_path / "t.jsonl", "--out", tmp_path / "y", "--bogus")
    assert r.exit_code == 2 and r.stderr.strip().endswith(" tasks import --help)"), r.stderr  # CliRunner: "main"


@pytest.mark.parametrize("answers, said", [(["negative", "positive"], "2 values ('negative', 'positive')"),
                                           (["0", "1", "2"], "3 values ('0', '1', '2')")])
def test_class_like_answers_without_label_words_are_warned(tmp_path, tiny_dir, answers, said):
    """A user's classes given without --label-words made a generation task silently: the model had to write
    "2" or "positive" exactly. Import, the API's task and the run say so; distinct answers stay quiet."""
    frame = table(60)
    frame["sentiment"] = [answers[i % len(answers)] for i in range(60)]
    r = run(write(frame, tmp_path / "t.csv", "csv"), "--input", "sentence", "--output", "sentiment", "--out", tmp_path / "task")
    assert r.exit_code == 0 and "generation (exact_match)" in r.stdout
    assert r.stderr.startswith(f"warning: every answer is one of {said}: if they are classes, give label words")
    rows = [{"input": s, "output": a} for s, a in zip(frame["sentence"], frame["sentiment"])]
    assert label_gaps(ps.Task.from_records(rows))[0].startswith(f"every answer is one of {said}")
    out = CliRunner().invoke(main, ["run", "--task", str(tmp_path / "task"), "--model", tiny_dir, "--max-evals", "30",
                                    "--strategy", "templates", "--out", str(tmp_path / "r"), "--json", "--quiet"])
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout)["data_warnings"][0].startswith(f"every answer is one of {said}")
    distinct = [{"input": s, "output": f"answer {i}"} for i, s in enumerate(frame["sentence"])]
    assert label_gaps(ps.Task.from_records(distinct)) == []


def pairs(n=40):
    """A two-sentence task (a question and its passage, as NLI or reading tasks come) with generation answers
    that are lists of accepted answers, as QA datasets store them."""
    return pd.DataFrame({"question": [f"question {i}?" for i in range(n)], "passage": [f"passage {i}." for i in range(n)],
                         "answers": [[f"answer {i}", f"ans {i}", f"answer {i}"] for i in range(n)],
                         "label": ["yes" if i % 2 else "no" for i in range(n)]})


@pytest.mark.parametrize("fmt, name", [("jsonl", "t.jsonl"), ("parquet", "t.parquet"), ("datasets", "saved")])
def test_several_input_columns_and_lists_of_accepted_answers(tmp_path, fmt, name):
    source = write(pairs(), tmp_path / name, fmt)
    r = run(source, "--input", "question", "--input", "passage", "--output", "answers", "--out", tmp_path / "g")
    assert r.exit_code == 0, r.stderr
    gen = load_task(str(tmp_path / "g"))
    ex = next(e for e in gen.train + gen.dev + gen.test if e.input.startswith("question: question 7?"))
    # joined a line each, named; the answers a list (duplicates dropped), the first the output, never a repr
    assert ex.input == "question: question 7?\npassage: passage 7."
    assert ex.output == "answer 7" and ex.answers == ("answer 7", "ans 7")
    assert score_prediction(gen, ex, "ans 7") == 1.0  # any accepted answer scores
    r = run(source, "--input", "question", "--input", "passage", "--output", "label", "--label-words", "no,yes",
            "--out", tmp_path / "c")
    assert r.exit_code == 0, r.stderr
    task = load_task(str(tmp_path / "c"))
    assert {ex.input.splitlines()[0] for ex in task.test if ex.label == 1} <= {f"question: question {i}?" for i in range(1, 40, 2)}


@pytest.mark.parametrize("change, args, message", [
    (lambda f: f, ["--output", "answers", "--label-words", "no,yes"], "row 1: column 'answers' holds a list"),
    (lambda f: f.assign(question=[["a", "b"]] * len(f)), ["--output", "label"], "row 1: column 'question' holds a list, not text"),
    (lambda f: f.assign(answers=[[] if i == 4 else a for i, a in enumerate(f["answers"])]), ["--output", "answers"],
     "row 5: column 'answers' holds an empty list or an empty answer"),
    (lambda f: f.assign(passage=["" if i == 2 else p for i, p in enumerate(f["passage"])]), ["--output", "label"],
     "row 3: empty 'passage'"),
    (lambda f: f, ["--output", "label", "--input", "question"], "give one or more distinct column names"),
])
def test_bad_answer_lists_and_input_columns_are_one_line(tmp_path, change, args, message):
    source = write(change(pairs()), tmp_path / "t.jsonl", "jsonl")
    r = run(source, "--input", "question", "--input", "passage", *args, "--out", tmp_path / "task")
    assert r.exit_code == 2 and message in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "task").exists()


def test_python_rows_take_several_input_columns_and_answer_lists():
    rows = [{"q": f"q{i}", "p": f"p{i}", "a": (f"x{i}", "y")} for i in range(20)]
    task = ps.Task.from_records(rows, input=("q", "p"), output="a")
    ex = task.train[0]
    assert ex.input.startswith("q: q") and "\np: p" in ex.input and ex.answers == (ex.output, "y")
