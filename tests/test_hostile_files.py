"""A matrix of damaged and hostile files against every command that reads them (issue 31, the file classes).

Each case puts one payload (empty, white space, not UTF-8, a BOM, NUL bytes, a lone surrogate, 100k-deep nesting,
JSON of the wrong type, NaN, a truncated file, a very long line, a folder, a dangling / looping / outward symbolic
link, a wrong-typed field) into one file a command reads, runs the command, and checks the contract: exactly one
line on stderr starting ``error: ``, exit status 2, no traceback, and nothing changed in the files the case
protects (the run, the task, the registry, a file outside that a symbolic link points at). Where another
behaviour is right it is asserted instead: a BOM is read as UTF-8 text; a torn or corrupt line of an
append-only log (candidates.jsonl, ratings.jsonl) is skipped with a warning and the rest is read.

The Python API (``promptsearch.api``) gets the same payloads: a PromptSearchError with a one-line message, never
a KeyError, TypeError, RecursionError or UnicodeError.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import promptsearch as ps
from promptsearch.cli import main
from promptsearch.errors import PromptSearchError

BOM = codecs.BOM_UTF8


def snapshot(*roots) -> dict:
    """Every file's bytes (and every symbolic link's target) under the roots: what a refused command leaves as it was."""
    out = {}
    for root in map(Path, roots):
        if root.is_symlink() or root.is_file():
            out[str(root)] = os.readlink(root) if root.is_symlink() else root.read_bytes()
            continue
        if not root.exists():
            out[str(root)] = None
            continue
        for p in sorted(root.rglob("*")):
            if p.name == "lock" and not p.is_symlink():
                continue  # a command that may write a run takes its lock (store.py): the lock file is the run's own
            if p.is_symlink():
                out[str(p)] = "-> " + os.readlink(p)
            elif p.is_file():
                out[str(p)] = p.read_bytes()
            else:
                out[str(p)] = "dir"
    return out


def invoke(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def refused(result) -> str:
    """The contract: exit 2, one line on stderr starting ``error: ``, no traceback. Returns the message."""
    detail = (result.output, repr(result.exception))
    assert result.exit_code == 2, detail
    assert result.exception is None or isinstance(result.exception, SystemExit), detail
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), detail
    assert "Traceback" not in result.output, detail
    return lines[0][len("error: "):]


def succeeded(result) -> None:
    assert result.exit_code == 0, (result.output, repr(result.exception))
    assert "Traceback" not in result.output


# ---- payloads ------------------------------------------------------------------------------------------------
DEEP_LIST = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a": ' * 100_000 + b"1" + b"}" * 100_000
LONG = 5 * 2**20  # a 5 MiB line: big enough to show a read is whole-file and bounded, small enough to stay fast

# payloads for a file holding one JSON object; each is bytes, or a callable(good bytes) -> bytes
OBJECT_PAYLOADS = {
    "empty": b"",
    "white-space": b" \n\t \n",
    "not-utf8": b'{"a": "caf\xe9"}',
    "nul-bytes": b"\x00" * 32,
    "nul-in-json": lambda good: good[:1] + b"\x00" + good[1:],
    "lone-surrogate": b'{"a": "\\ud800"}',
    "deep-list": DEEP_LIST,
    "deep-object": DEEP_OBJECT,
    "top-list": b"[]",
    "top-string": b'"text"',
    "top-number": b"12",
    "top-null": b"null",
    "top-nan": b"NaN",
    "top-infinity": b"-Infinity",
    "truncated": lambda good: good[: len(good) // 2],
    "long-line": b'{"a": 1, "b": "' + b"x" * LONG + b'"}',
}
# payloads for a JSONL file: a bad line added after the good ones (or the whole file replaced)
LINE_PAYLOADS = {
    "empty": b"",
    "white-space": b" \n\t \n",
    "not-utf8-line": lambda good: good + b'{"input": "caf\xe9", "output": "positive"}\n',
    "nul-line": lambda good: good + b"\x00\x00\x00\n",
    "lone-surrogate": lambda good: good + b'{"input": "\\ud800", "output": "positive"}\n',
    "deep-line": lambda good: good + DEEP_LIST + b"\n",
    "deep-object-line": lambda good: good + DEEP_OBJECT + b"\n",
    "list-line": lambda good: good + b"[1, 2]\n",
    "string-line": lambda good: good + b'"text"\n',
    "number-line": lambda good: good + b"12\n",
    "null-line": lambda good: good + b"null\n",
    "nan-line": lambda good: good + b"NaN\n",
    "truncated": lambda good: good + good[: good.index(b"\n") // 2],  # the last line cut by a kill: no newline
    "long-line": lambda good: good + b'{"input": 1, "output": 1, "nope": "' + b"x" * LONG + b'"}\n',
}
LINKS = ("folder", "dangling-link", "link-loop")


def damage(path: Path, payload: str, table: dict) -> None:
    """Puts ``payload`` into ``path`` (a file that holds good content now)."""
    if payload == "folder":
        path.unlink()
        path.mkdir()
        (path / "x").write_text("{}")
        return
    if payload == "dangling-link":
        path.unlink()
        os.symlink(path.parent / "no-such-file", path)
        return
    if payload == "link-loop":
        path.unlink()
        os.symlink(path.name + ".loop", path.parent / (path.name + ".loop2"))
        os.symlink(path.name + ".loop2", path.parent / (path.name + ".loop"))
        os.symlink(path.name + ".loop", path)
        return
    if payload == "bom":
        path.write_bytes(BOM + path.read_bytes())
        return
    if payload == "crlf":
        path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        return
    data = table[payload]
    path.write_bytes(data(path.read_bytes()) if callable(data) else data)


def outward_link(path: Path, outside: Path) -> Path:
    """``path`` replaced by a symbolic link to a copy of its content outside its folder; returns the copy."""
    outside.mkdir(exist_ok=True)
    target = outside / ("victim-" + path.name)
    target.write_bytes(path.read_bytes())
    path.unlink()
    os.symlink(target, path)
    return target


# ---- a run, an artifact and ratings, made once --------------------------------------------------------------
@pytest.fixture(scope="module")
def made(tiny_dir, small_task_dir, tmp_path_factory):
    from tests.conftest import one_thread

    root = tmp_path_factory.mktemp("hostile-files")
    run = root / "run"
    with one_thread():
        r = invoke("run", "--model", tiny_dir, "--task", small_task_dir, "--strategy", "templates",
                   "--max-candidates", "3", "--final-ensemble", "1", "--quiet", "--out", run)
        assert r.exit_code == 0, r.output
        r = invoke("export", run, "-o", root / "prompt.json", "--quiet")
        assert r.exit_code == 0, r.output
        todo = root / "todo.jsonl"
        r = invoke("rate", run, "--export", todo, "--quiet", "--top", "2", "--inputs", "2")
        assert r.exit_code == 0, r.output
        rows = [{**json.loads(line), "rating": 4, "comment": "too long"} for line in todo.read_text().splitlines()]
        todo.write_text("".join(json.dumps(r) + "\n" for r in rows))
        r = invoke("rate", run, "--from-file", todo, "--quiet")
        assert r.exit_code == 0, r.output
    (run / "lock").unlink()
    (root / "inputs.jsonl").write_text('{"input": "a gripping film"}\n"a dull film"\n')
    return root


@pytest.fixture
def work(made, tmp_path, small_task_dir, monkeypatch):
    """A fresh copy of the run, the artifact, the ratings file, the inputs and the task, and an empty registry."""
    for name in ("run", "prompt.json", "todo.jsonl", "inputs.jsonl"):
        src = made / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    shutil.copytree(small_task_dir, tmp_path / "task")
    (tmp_path / "run" / "lock").unlink(missing_ok=True)
    monkeypatch.setenv("PROMPTSEARCH_REGISTRY", str(tmp_path / "reg" / "registry.db"))
    monkeypatch.setenv("PROMPTSEARCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---- 1. task folder files ---------------------------------------------------------------------------------
TASK_FILES = {"task.json": OBJECT_PAYLOADS, "dev.jsonl": LINE_PAYLOADS, "train.jsonl": LINE_PAYLOADS,
              "test.jsonl": LINE_PAYLOADS}
TASK_CASES = [(f, p) for f, table in TASK_FILES.items() for p in [*table, *LINKS]]


@pytest.mark.parametrize("name, payload", TASK_CASES, ids=[f"{f}-{p}" for f, p in TASK_CASES])
def test_task_file(work, tiny_dir, name, payload):
    task = work / "task"
    damage(task / name, payload, TASK_FILES[name])
    if name == "task.json" and payload in ("empty", "white-space"):
        pass  # an empty task.json is bad JSON: refused like the rest (remove the file to have none)
    before = snapshot(task)
    msg = refused(invoke("tasks", "--task", task))
    assert str(task) in msg, msg
    refused(invoke("run", "--task", task, "--model", tiny_dir, "--out", work / "out", "--max-evals", "30"))
    assert not (work / "out").exists()
    refused(invoke("eval", "--task", task, "--model", tiny_dir, "--limit", "2"))
    assert snapshot(task) == before
    with pytest.raises(PromptSearchError) as e:
        ps.load_task(str(task))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["task.json", "dev.jsonl", "train.jsonl", "test.jsonl"])
@pytest.mark.parametrize("payload", ["bom", "crlf"])
def test_task_file_with_a_bom_or_crlf_reads_as_without(work, name, payload):
    task = work / "task"
    plain = ps.load_task(str(task))
    damage(task / name, payload, {})
    assert ps.load_task(str(task)) == plain
    succeeded(invoke("tasks", "--task", task))


@pytest.mark.parametrize("field, value", [
    ("name", 5), ("name", None), ("name", ["a"]), ("kind", 3), ("kind", "regression"), ("label_words", "negative,positive"),
    ("label_words", [1, 2]), ("label_words", {"a": "b"}), ("label_words", []), ("metric", ["accuracy"]),
    ("seed_prompt", 7), ("seed_prompt", "no slot"), ("seed_prompt", "{input} {other}"), ("instruction", {}),
    ("description", 1.5), ("label_words", ["a", None]),
])
def test_task_json_field_of_the_wrong_type(work, field, value):
    task = work / "task"
    meta = json.loads((task / "task.json").read_text())
    (task / "task.json").write_text(json.dumps({**meta, field: value}))
    if value is None:  # null means "not given": the folder's name is taken
        succeeded(invoke("tasks", "--task", task))
        return
    msg = refused(invoke("tasks", "--task", task))
    assert "task.json" in msg, msg


@pytest.mark.parametrize("row", [
    {"input": 5, "output": "positive"}, {"input": None, "output": "positive"}, {"input": ["a"], "output": "positive"},
    {"input": "x", "output": 1.5}, {"input": "x", "output": None}, {"input": "x", "label": "1"},
    {"input": "x", "label": True}, {"input": "x", "label": 1.0}, {"input": "x", "label": -1},
    {"input": "x", "output": "positive", "outputs": "positive"}, {"input": "x", "output": "positive", "outputs": [1]},
    {"input": "x", "output": "positive", "id": {"a": 1}}, {"input": "x", "output": "positive", "label": float("nan")},
])
def test_task_row_field_of_the_wrong_type(work, row):
    task = work / "task"
    with open(task / "dev.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    msg = refused(invoke("tasks", "--task", task))
    assert "dev.jsonl:" in msg, msg


def test_task_files_linked_outside_the_folder_are_read_not_written(work):
    """A task's split may be a link to a shared data file: read, never written."""
    task = work / "task"
    target = outward_link(task / "dev.jsonl", work / "shared")
    before = snapshot(task, target)
    succeeded(invoke("tasks", "--task", task))
    assert snapshot(task, target) == before


def test_duplicate_keys_in_a_row_are_refused(work):
    task = work / "task"
    with open(task / "dev.jsonl", "a") as f:
        f.write('{"input": "a fine film", "output": "negative", "output": "positive"}\n')
    msg = refused(invoke("tasks", "--task", task))
    assert "dev.jsonl:" in msg and "output" in msg and "twice" in msg, msg


# ---- 2. a run's files -------------------------------------------------------------------------------------
def read_only_commands(run: Path, work: Path) -> dict:
    return {
        "show": ("show", run),
        "show-full": ("show", run, "--full"),
        "report": ("report", run, "--out", work / "rep"),
        "export": ("export", run, "-o", work / "out.json"),
        "rate-export": ("rate", run, "--export", work / "again.jsonl"),
    }


RUN_WHOLE = {"config.json": OBJECT_PAYLOADS, "summary.json": OBJECT_PAYLOADS}
RUN_WHOLE_CASES = [(f, p) for f, table in RUN_WHOLE.items() for p in [*table, *LINKS]]
WRITTEN_BY_COMMAND = {"report": "rep", "export": "out.json", "rate-export": "again.jsonl"}


@pytest.mark.parametrize("name, payload", RUN_WHOLE_CASES, ids=[f"{f}-{p}" for f, p in RUN_WHOLE_CASES])
def test_run_whole_file(work, name, payload):
    run = work / "run"
    damage(run / name, payload, RUN_WHOLE[name])
    before = snapshot(run)
    commands = read_only_commands(run, work)
    if name == "summary.json":
        commands.pop("rate-export")  # rate reads the log, not the summary
    else:
        commands["resume"] = ("run", "--resume", run)
        commands["refine"] = ("refine", run, "--out", work / "refined", "--max-candidates", "2")
    for command, args in commands.items():
        msg = refused(invoke(*args))
        assert name in msg or "not a run directory" in msg or "not a promptsearch run" in msg, (command, msg)
        assert snapshot(run) == before, command
        written = WRITTEN_BY_COMMAND.get(command)
        assert written is None or not (work / written).exists(), command
    assert not (work / "refined").exists()


CONFIG_WRONG = [None, "x", 1.5, [], {}, True, float("nan")]
CONFIG_KEYS = ["task", "model", "strategies", "budget", "seed", "racing", "executor", "served", "batch_size", "options",
               "top_k", "chat", "dtype", "schedule", "data", "final_ensemble", "selection", "metric", "multitask", "feedback"]


@pytest.mark.parametrize("key", CONFIG_KEYS)
def test_config_json_field_of_each_wrong_type(work, key):
    """Every field a resume reads, set to each JSON type it is not: one line from every command, nothing written."""
    run = work / "run"
    good = json.loads((run / "config.json").read_text())
    failures = []
    for value in CONFIG_WRONG:
        if value is None and good.get(key) is None or type(value) is type(good.get(key)):
            continue
        (run / "config.json").write_text(json.dumps({**good, key: value}))
        before = snapshot(run)
        for command, args in {**read_only_commands(run, work), "resume": ("run", "--resume", run)}.items():
            r = invoke(*args)
            if r.exit_code == 0:  # a field this command does not read: no harm done
                continue
            try:
                refused(r)
                assert snapshot(run) == before
            except AssertionError:
                failures.append((value, command, r.exit_code, repr(r.exception), r.output[-300:]))
            for written in ("rep", "out.json", "again.jsonl"):
                if (work / written).exists():
                    (shutil.rmtree if (work / written).is_dir() else os.unlink)(work / written)
    assert not failures, failures


SUMMARY_KEYS = ["best", "seed", "leaderboard", "budget_used", "model", "dtype", "estimate", "paired_test", "improvement",
                "stop_reason", "task", "metric", "stages", "strategies_run", "multitask", "tasks", "final_notes",
                "calibration_biases"]


@pytest.mark.parametrize("key", SUMMARY_KEYS)
def test_summary_json_field_of_each_wrong_type(work, key):
    run = work / "run"
    good = json.loads((run / "summary.json").read_text())
    failures = []
    for value in CONFIG_WRONG:
        (run / "summary.json").write_text(json.dumps({**good, key: value}))
        before = snapshot(run)
        for command, args in read_only_commands(run, work).items():
            r = invoke(*args)
            if r.exit_code != 0:
                try:
                    refused(r)
                except AssertionError:
                    failures.append((value, command, r.exit_code, repr(r.exception), r.output[-300:]))
            if snapshot(run) != before:
                failures.append((value, command, "changed the run"))
            for written in ("rep", "out.json", "again.jsonl"):
                if (work / written).exists():
                    (shutil.rmtree if (work / written).is_dir() else os.unlink)(work / written)
    assert not failures, failures


# candidates.jsonl and ratings.jsonl are append-only logs: a damaged line is skipped (with a warning), the rest read
LOG_LINE_CASES = [p for p in LINE_PAYLOADS if p not in ("empty", "white-space")]


@pytest.mark.parametrize("payload", LOG_LINE_CASES)
def test_candidates_log_with_a_bad_line_is_read_around_it(work, payload):
    run = work / "run"
    good = invoke("show", run, "--json")
    damage(run / "candidates.jsonl", payload, LINE_PAYLOADS)
    before = snapshot(run)
    for args in read_only_commands(run, work).values():
        r = invoke(*args)
        succeeded(r)
    r = invoke("show", run, "--json")
    if payload != "truncated":
        assert json.loads(r.stdout)["leaderboard"] == json.loads(good.stdout)["leaderboard"]
    assert snapshot(run) == before


@pytest.mark.parametrize("payload", ["empty", "white-space", *LINKS])
def test_candidates_log_empty_or_not_a_file(work, payload):
    run = work / "run"
    damage(run / "candidates.jsonl", payload, LINE_PAYLOADS)
    before = snapshot(run)
    for command, args in read_only_commands(run, work).items():
        r = invoke(*args)
        if r.exit_code:
            refused(r)
        assert snapshot(run) == before, command


@pytest.mark.parametrize("payload", LOG_LINE_CASES)
def test_ratings_log_with_a_bad_line_is_noted_and_skipped(work, payload):
    run = work / "run"
    damage(run / "ratings.jsonl", payload, LINE_PAYLOADS)
    before = snapshot(run)
    r = invoke("rate", run, "--export", work / "again.jsonl", "--again")
    succeeded(r)
    assert snapshot(run) == before


@pytest.mark.parametrize("payload", ["empty", "white-space", *LINKS])
def test_ratings_log_empty_or_not_a_file(work, payload):
    run = work / "run"
    damage(run / "ratings.jsonl", payload, LINE_PAYLOADS)
    before = snapshot(run)
    for args in (("rate", run, "--export", work / "again.jsonl"),
                 ("refine", run, "--out", work / "refined", "--max-candidates", "1")):
        r = invoke(*args)
        if r.exit_code:
            refused(r)
        assert snapshot(run) == before
    assert not (work / "refined").exists() or payload in ("empty", "white-space")


@pytest.mark.parametrize("finished", [True, False], ids=["finished", "unfinished"])
@pytest.mark.parametrize("name", ["candidates.jsonl", "ratings.jsonl", "lock", "summary.json", "config.json",
                                  "best_prompt.txt", "summary.json.tmp", ".summary.json.tmp1"])
def test_a_run_file_linked_outside_is_never_written_through(work, tiny_dir, name, finished):
    """A run's log, lock or summary that is a symbolic link to a file elsewhere: no command appends to, truncates
    or rewrites the file the link points at; a command that would write the run refuses it in one line."""
    run = work / "run"
    if not finished:
        (run / "summary.json").unlink(missing_ok=name == "summary.json")
        if name == "summary.json":
            (run / "summary.json").write_text("{}")
    if name.endswith(("tmp", "tmp1")) or name == "lock":
        (run / name).write_text("")
    target = outward_link(run / name, work / "elsewhere")
    victim = snapshot(work / "elsewhere")
    todo = work / "todo.jsonl"
    for args in (("run", "--resume", run, "--quiet"), ("rate", run, "--from-file", todo, "--quiet"),
                 ("show", run), ("export", run, "-o", work / "out.json")):
        r = invoke(*args)
        if args[0] in ("run", "rate"):
            assert "is a symbolic link" in refused(r), args[0]
        elif r.exit_code:
            refused(r)
        assert snapshot(work / "elsewhere") == victim, (args[0], target)


def test_a_torn_last_line_of_the_log_is_skipped_and_the_run_resumes(work):
    """A kill mid-write leaves half a line: show reads the rest, resume cuts the torn line and goes on."""
    run = work / "run"
    (run / "summary.json").unlink()
    data = (run / "candidates.jsonl").read_bytes()
    (run / "candidates.jsonl").write_bytes(data + data.splitlines(keepends=True)[0][:40])
    succeeded(invoke("show", run))
    succeeded(invoke("run", "--resume", run, "--quiet"))
    assert (run / "candidates.jsonl").read_bytes().endswith(b"\n")
    for line in (run / "candidates.jsonl").read_bytes().splitlines():
        json.loads(line)


@pytest.mark.parametrize("payload", [*OBJECT_PAYLOADS, *LINKS])
def test_refine_json_of_a_refine_run(work, payload):
    """refine.json (a refine run's ratings and edits): damaged, a refine --resume is one line."""
    run = work / "run"
    refined = work / "refined"
    shutil.copytree(run, refined)
    config = json.loads((refined / "config.json").read_text())
    (refined / "config.json").write_text(json.dumps({**config, "feedback": {"parent": str(run), "weight": 0.5}}))
    (refined / "summary.json").unlink()
    (refined / "refine.json").write_text(json.dumps({"parent": str(run), "weight": 0.5, "ratings": [], "edits": []}))
    damage(refined / "refine.json", payload, OBJECT_PAYLOADS)
    before = snapshot(refined, run)
    refused(invoke("refine", "--resume", refined))
    assert snapshot(refined, run) == before


@pytest.mark.parametrize("meta", [
    {"parent": 5, "weight": 0.5, "ratings": [], "edits": []},
    {"parent": "RUN", "weight": "half", "ratings": [], "edits": []},
    {"parent": "RUN", "weight": 0.5, "ratings": {}, "edits": []},
    {"parent": "RUN", "weight": 0.5, "ratings": [5], "edits": []},
    {"parent": "RUN", "weight": 0.5, "ratings": [], "edits": [{"instruction": 3}]},
    {"parent": "RUN", "weight": 0.5, "ratings": [], "edits": "x"},
    {"weight": 0.5, "ratings": [], "edits": []},
    {"parent": "RUN", "weight": float("nan"), "ratings": [], "edits": []},
])
def test_refine_json_fields_of_the_wrong_type(work, meta):
    run = work / "run"
    refined = work / "refined"
    shutil.copytree(run, refined)
    config = json.loads((refined / "config.json").read_text())
    (refined / "config.json").write_text(json.dumps({**config, "feedback": {"parent": str(run), "weight": 0.5}}))
    (refined / "summary.json").unlink()
    meta = {k: str(run) if v == "RUN" else v for k, v in meta.items()}
    (refined / "refine.json").write_text(json.dumps(meta))
    before = snapshot(refined, run)
    refused(invoke("refine", "--resume", refined))
    assert snapshot(refined, run) == before


@pytest.mark.parametrize("content", [b"", b"garbage", b"\xff\xfe", b"-1", b"99999999999999999999"])
def test_a_stale_or_odd_lock_file_does_not_stop_a_command(work, content):
    run = work / "run"
    (run / "lock").write_bytes(content)
    succeeded(invoke("show", run))
    succeeded(invoke("rate", run, "--export", work / "again.jsonl"))


def test_a_lock_that_is_a_folder_is_one_line(work):
    run = work / "run"
    (run / "summary.json").unlink()
    (run / "lock").mkdir()
    before = snapshot(run)
    refused(invoke("run", "--resume", run))
    refused(invoke("rate", run, "--from-file", work / "todo.jsonl"))
    assert snapshot(run) == before


# ---- 3. artifacts -----------------------------------------------------------------------------------------
ARTIFACT_CASES = [*OBJECT_PAYLOADS, *LINKS, "bom"]


@pytest.mark.parametrize("payload", ARTIFACT_CASES)
def test_artifact_file(work, tiny_dir, payload):
    art = work / "prompt.json"
    damage(art, payload, OBJECT_PAYLOADS)
    reg = Path(os.environ["PROMPTSEARCH_REGISTRY"])
    before = snapshot(work / "run", work / "task")
    commands = {
        "prompts-add": ("prompts", "add", art, "--name", "p"),
        "eval": ("eval", "--artifact", art, "--model", tiny_dir, "--task", work / "task"),
        "predict": ("predict", "--artifact", art, "--input-file", work / "inputs.jsonl", "--model", tiny_dir, "-o",
                    work / "pred.jsonl"),
    }
    for command, args in commands.items():
        r = invoke(*args)
        if payload == "bom":  # a BOM-prefixed artifact is UTF-8 text: read as without it
            succeeded(r)
            continue
        refused(r)
        assert not reg.exists() and not (work / "pred.jsonl").exists(), command
    assert snapshot(work / "run", work / "task") == before
    if payload == "bom":
        ps.load_prompt(art)
        return
    with pytest.raises(PromptSearchError) as e:
        ps.load_prompt(art)
    assert "\n" not in str(e.value)


ARTIFACT_FIELD_CASES = [
    ("prompt", 5), ("prompt", None), ("prompt", ["x"]), ("label_words", "a,b"), ("label_words", [1, 2]), ("chat", "yes"),
    ("soft", "file"), ("model", None), ("model", []), ("task", "t"), ("scores", []), ("scores", None),
    ("test_outcomes", "x"), ("test_outcomes", {"keys": "x"}), ("schema_version", "1"), ("schema_version", float("nan")),
    ("schema", 5), ("created", 5), ("provenance", []), ("seed_prompt", 7),
]


@pytest.mark.parametrize("field, value", ARTIFACT_FIELD_CASES, ids=[f"{f}-{v!r}" for f, v in ARTIFACT_FIELD_CASES])
def test_artifact_field_of_the_wrong_type(work, tiny_dir, field, value):
    art = work / "prompt.json"
    data = json.loads(art.read_text())
    art.write_text(json.dumps({**data, field: value}))
    reg = Path(os.environ["PROMPTSEARCH_REGISTRY"])
    refused(invoke("prompts", "add", art, "--name", "p"))
    assert not reg.exists()
    refused(invoke("predict", "--artifact", art, "--input-file", work / "inputs.jsonl", "--model", tiny_dir))
    refused(invoke("eval", "--artifact", art, "--model", tiny_dir, "--task", work / "task"))
    with pytest.raises(PromptSearchError):
        ps.load_prompt(art)


def test_nested_artifact_fields_of_the_wrong_type(work, tiny_dir):
    art = work / "prompt.json"
    good = json.loads(art.read_text())
    failures = []
    for path in (("model", "spec"), ("model", "dtype"), ("model", "name"), ("model", "fingerprint"), ("task", "name"),
                 ("task", "kind"), ("task", "metric"), ("task", "seed"), ("task", "splits"), ("scores", "test"),
                 ("scores", "dev"), ("test_outcomes", "keys"), ("test_outcomes", "scores"), ("test_outcomes", "preds")):
        for value in (5, None, "x", [], {}, float("nan")):
            data = json.loads(json.dumps(good))
            node = data
            for step in path[:-1]:
                node = node[step]
            if type(node.get(path[-1])) is type(value) or (value is None and node.get(path[-1]) is None):
                continue
            node[path[-1]] = value
            art.write_text(json.dumps(data))
            for args in (("prompts", "add", art, "--name", "p"),
                         ("predict", "--artifact", art, "--input-file", work / "inputs.jsonl", "--model", tiny_dir)):
                r = invoke(*args)
                if r.exit_code == 0:
                    continue
                try:
                    refused(r)
                except AssertionError:
                    failures.append((path, value, args[0], repr(r.exception), r.output[-200:]))
    assert not failures, failures


# ---- 4. predict --input-file, eval --prompt-file, rate --from-file, refine --edits ------------------------
INPUT_CASES = [*LINE_PAYLOADS, *LINKS]


@pytest.mark.parametrize("payload", INPUT_CASES)
def test_predict_input_file(work, tiny_dir, payload):
    inputs = work / "inputs.jsonl"
    damage(inputs, payload, LINE_PAYLOADS)
    if payload == "string-line":  # a JSON string is an input
        succeeded(invoke("predict", "--artifact", work / "prompt.json", "--input-file", inputs, "--model", tiny_dir))
        return
    refused(invoke("predict", "--artifact", work / "prompt.json", "--input-file", inputs, "--model", tiny_dir, "-o",
                   work / "pred.jsonl"))
    assert not (work / "pred.jsonl").exists()


@pytest.mark.parametrize("payload", ["bom", "crlf"])
def test_predict_input_file_with_a_bom_or_crlf(work, tiny_dir, payload):
    inputs = work / "inputs.jsonl"
    damage(inputs, payload, {})
    succeeded(invoke("predict", "--artifact", work / "prompt.json", "--input-file", inputs, "--model", tiny_dir, "-o",
                     work / "pred.jsonl"))
    assert len((work / "pred.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("payload", ["empty", "white-space", "not-utf8", "nul-bytes", "long-line", *LINKS])
def test_eval_prompt_file(work, tiny_dir, payload):
    prompt = work / "prompt.txt"
    prompt.write_text("Review: {input}\nSentiment:")
    table = {**OBJECT_PAYLOADS, "not-utf8": b"Review: {input} caf\xe9", "long-line": b"{input}" + b"x" * LONG}
    damage(prompt, payload, table)
    r = invoke("eval", "--prompt-file", prompt, "--task", work / "task", "--model", tiny_dir, "--limit", "2")
    if payload == "long-line" and r.exit_code == 0:
        return  # the tiny test tokenizer reads a run of one letter as one token: the prompt fits its context
    refused(r)


@pytest.mark.parametrize("payload", ["bom", "crlf"])
def test_eval_prompt_file_bom_or_crlf(work, tiny_dir, payload):
    prompt = work / "prompt.txt"
    prompt.write_text("Review: {input}\nSentiment:\n")
    damage(prompt, payload, {})
    r = invoke("eval", "--prompt-file", prompt, "--task", work / "task", "--model", tiny_dir, "--limit", "2", "--json")
    succeeded(r)
    assert json.loads(r.stdout)["prompt"] == "Review: {input}\nSentiment:"


@pytest.mark.parametrize("payload", [*LINE_PAYLOADS, *LINKS])
def test_rate_from_file(work, payload):
    run = work / "run"
    todo = work / "todo.jsonl"
    damage(todo, payload, LINE_PAYLOADS)
    before = snapshot(run)
    refused(invoke("rate", run, "--from-file", todo))
    assert snapshot(run) == before


@pytest.mark.parametrize("payload", ["bom", "crlf"])
def test_rate_from_file_bom_or_crlf(work, payload):
    run = work / "run"
    todo = work / "todo.jsonl"
    n = len((run / "ratings.jsonl").read_text().splitlines())
    damage(todo, payload, {})
    succeeded(invoke("rate", run, "--from-file", todo))
    assert len((run / "ratings.jsonl").read_text().splitlines()) == 2 * n


@pytest.mark.parametrize("payload", [*OBJECT_PAYLOADS, *LINKS])
def test_refine_edits_file(work, payload):
    run = work / "run"
    edits = work / "edits.json"
    edits.write_text(json.dumps({"too long": "Be brief."}))
    damage(edits, payload, OBJECT_PAYLOADS)
    before = snapshot(run)
    refused(invoke("refine", run, "--edits", edits, "--out", work / "refined"))
    assert snapshot(run) == before and not (work / "refined").exists()


# ---- 5. tasks import ----------------------------------------------------------------------------------------
def csv_bytes(rows, header=("input", "output")) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    if header:
        w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode()


GOOD_ROWS = [(f"text number {i}", "positive" if i % 2 else "negative") for i in range(12)]
IMPORT_REFUSED = {
    "csv-empty": ("t.csv", b""),
    "csv-white-space": ("t.csv", b" \n \n"),
    "csv-not-utf8": ("t.csv", csv_bytes(GOOD_ROWS) + b"caf\xe9,positive\n"),
    "csv-nul": ("t.csv", b"input,output\n\x00\x00,\x00\n"),
    "csv-header-only": ("t.csv", b"input,output\n"),
    "csv-no-header": ("t.csv", csv_bytes(GOOD_ROWS, header=None)),
    "csv-ragged-long": ("t.csv", csv_bytes(GOOD_ROWS) + b"a,b,c,d\n"),
    "csv-ragged-short": ("t.csv", csv_bytes(GOOD_ROWS) + b"only one cell\n"),
    "csv-duplicate-header": ("t.csv", csv_bytes(GOOD_ROWS, header=("input", "input"))),
    "csv-unclosed-quote": ("t.csv", csv_bytes(GOOD_ROWS) + b'"never closed,positive\n'),
    "csv-long-line": ("t.csv", csv_bytes(GOOD_ROWS) + b"x" * LONG + b"\n"),
    "jsonl-empty": ("t.jsonl", b""),
    "jsonl-white-space": ("t.jsonl", b"\n \n"),
    "jsonl-not-utf8": ("t.jsonl", b'{"input": "caf\xe9", "output": "positive"}\n'),
    "jsonl-nul": ("t.jsonl", b"\x00\x00\x00\n"),
    "jsonl-deep": ("t.jsonl", DEEP_LIST + b"\n"),
    "jsonl-deep-object": ("t.jsonl", DEEP_OBJECT + b"\n"),
    "jsonl-surrogate": ("t.jsonl", b"".join(b'{"input": "t%d", "output": "positive"}\n' % i for i in range(12))
                        + b'{"input": "\\ud800", "output": "positive"}\n'),
    "jsonl-list-lines": ("t.jsonl", b'["a", "positive"]\n["b", "negative"]\n'),
    "jsonl-scalar-lines": ("t.jsonl", b'"a"\n"b"\n'),
    "jsonl-null-line": ("t.jsonl", b'{"input": "a", "output": "positive"}\nnull\n'),
    "jsonl-truncated": ("t.jsonl", b'{"input": "a", "output": "positive"}\n{"input": "b", "outp'),
    "jsonl-nested-values": ("t.jsonl", b"".join(b'{"input": {"a": %d}, "output": ["positive"]}\n' % i for i in range(12))),
    "jsonl-nan": ("t.jsonl", b"".join(b'{"input": NaN, "output": "positive"}\n' for _ in range(3))),
    "json-top-object": ("t.json", b'{"input": "a", "output": "b"}'),
    "parquet-garbage": ("t.parquet", b"PAR1 not really"),
    "no-suffix": ("t", csv_bytes(GOOD_ROWS)),
}


@pytest.mark.parametrize("case", list(IMPORT_REFUSED))
def test_tasks_import_refuses(work, case):
    name, data = IMPORT_REFUSED[case]
    src = work / name
    src.write_bytes(data)
    out = work / "imported"
    refused(invoke("tasks", "import", src, "--out", out, "--label-words", "negative,positive"))
    assert not out.exists() and not (work / ".imported.tmp").exists()


@pytest.mark.parametrize("payload", LINKS)
def test_tasks_import_from_a_link_or_folder(work, payload):
    src = work / "t.csv"
    src.write_bytes(csv_bytes(GOOD_ROWS))
    damage(src, payload, {})
    out = work / "imported"
    refused(invoke("tasks", "import", src, "--out", out))
    assert not out.exists()


@pytest.mark.parametrize("case", ["csv-bom", "csv-crlf", "csv-quoted-newline", "jsonl-bom", "jsonl-crlf"])
def test_tasks_import_accepts(work, case):
    suffix = case.split("-")[0]
    src = work / f"t.{suffix}"
    if suffix == "csv":
        rows = GOOD_ROWS + ([("two\nlines", "positive")] if case == "csv-quoted-newline" else [])
        src.write_bytes(csv_bytes(rows))
    else:
        src.write_bytes(b"".join(json.dumps({"input": a, "output": b}).encode() + b"\n" for a, b in GOOD_ROWS))
    if case.endswith("bom"):
        damage(src, "bom", {})
    if case.endswith("crlf"):
        damage(src, "crlf", {})
    out = work / "imported"
    succeeded(invoke("tasks", "import", src, "--out", out, "--label-words", "negative,positive"))
    task = ps.load_task(str(out))
    assert {ex.input for s in ("train", "dev", "test") for ex in task.split(s)} >= {a for a, _ in GOOD_ROWS}


# ---- 6. the registry ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", ["empty", "garbage", "nul-bytes", "truncated", "folder", "dangling-link", "link-loop",
                                     "other-sqlite", "wrong-columns"])
def test_registry_file(work, payload):
    reg = Path(os.environ["PROMPTSEARCH_REGISTRY"])
    succeeded(invoke("prompts", "add", work / "prompt.json", "--name", "p"))
    if payload in ("empty", "garbage", "nul-bytes"):
        reg.write_bytes({"empty": b"", "garbage": b"not a database at all\n" * 300, "nul-bytes": b"\x00" * 8192}[payload])
    elif payload == "truncated":
        reg.write_bytes(reg.read_bytes()[:1500])
    elif payload in LINKS:
        damage(reg, payload, {})
    else:
        reg.unlink()
        db = sqlite3.connect(reg)
        if payload == "other-sqlite":
            db.execute("CREATE TABLE notes (x TEXT)")
        else:
            db.execute("CREATE TABLE versions (name TEXT)")
            db.execute("INSERT INTO versions VALUES ('p')")
        db.commit()
        db.close()
    before = snapshot(reg.parent)
    for args in (("prompts", "list"), ("prompts", "show", "p"), ("prompts", "add", work / "prompt.json", "--name", "q"),
                 ("prompts", "export", "p", "-o", work / "p.json")):
        r = invoke(*args)
        if payload == "empty":
            if r.exit_code:  # an empty file is an empty registry, which add fills
                refused(r)
            continue
        refused(r)
        assert snapshot(reg.parent) == before, args


# ---- 7. the Python API on a damaged run folder ---------------------------------------------------------------
API_DAMAGE = [("config.json", p) for p in ("empty", "top-list", "deep-list", "lone-surrogate")] + \
    [("summary.json", p) for p in ("empty", "top-list", "top-null", "deep-object", "best-a-number", "budget-used-a-list")]


@pytest.mark.parametrize("name, payload", API_DAMAGE, ids=[f"{n}-{p}" for n, p in API_DAMAGE])
def test_api_search_on_a_damaged_run_dir(work, tiny_dir, small_task_dir, name, payload):
    """ps.search on a run folder that holds this search: a finished one is read back, so its damaged files must be
    a PromptSearchError (the same search's settings, so the summary is what is read)."""
    run = work / "run"
    config = json.loads((run / "config.json").read_text())
    model = ps.load_model(tiny_dir, dtype=config["dtype"])
    args = {"strategies": ["templates"], "budget": ps.Budget(max_candidates=config["budget"]["max_candidates"]),
            "final_ensemble": config["final_ensemble"], "schedule": config["schedule"]}
    assert isinstance(ps.search(small_task_dir, model, run_dir=run, **args), ps.SearchResult)  # as it is: read back
    good = json.loads((run / "summary.json").read_text())
    extra = {"best-a-number": json.dumps({**good, "best": 5}).encode(),
             "budget-used-a-list": json.dumps({**good, "budget_used": []}).encode()}
    damage(run / name, payload, {**OBJECT_PAYLOADS, **extra})
    before = snapshot(run)
    with pytest.raises(PromptSearchError) as e:
        ps.search(small_task_dir, model, run_dir=run, **args)
    assert "\n" not in str(e.value) and name in str(e.value), str(e.value)
    assert snapshot(run) == before


# ---- 8. the served models' response cache ------------------------------------------------------------------
@pytest.mark.parametrize("payload", ["garbage", "nul-bytes", "truncated", "folder", "dangling-link", "link-loop",
                                     "other-sqlite"])
def test_response_cache_file(work, payload):
    from promptsearch.models.response_cache import ResponseCache

    path = work / "cache" / "responses.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    cache = ResponseCache(path)
    cache.put("k", "fp", "/completions", {"a": 1})
    cache.close()
    for extra in path.parent.glob("responses.sqlite-*"):
        extra.unlink()
    if payload == "garbage":
        path.write_bytes(b"not a database at all\n" * 300)
    elif payload == "nul-bytes":
        path.write_bytes(b"\x00" * 8192)
    elif payload == "truncated":
        path.write_bytes(path.read_bytes()[:1500])
    elif payload in LINKS:
        damage(path, payload, {})
    else:
        path.unlink()
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE notes (x TEXT)")
        db.commit()
        db.close()
    before = snapshot(work / "cache")
    for args in (("cache", "info"), ("cache", "clear")):
        r = invoke(*args)
        if payload == "nul-bytes" and r.exit_code == 0:
            continue  # sqlite reads an all-zero file as an empty database
        refused(r)
        assert snapshot(work / "cache") == before, args
    with pytest.raises(PromptSearchError):
        ResponseCache(path).get("k")


def test_a_damaged_cached_answer_is_a_miss(work):
    from promptsearch.models.response_cache import ResponseCache

    path = work / "cache" / "responses.sqlite"
    cache = ResponseCache(path)
    cache.put("k", "fp", "/completions", {"a": 1})
    cache._db.execute("UPDATE responses SET response = '{\"a\": ' WHERE key = 'k'")
    cache._db.commit()
    assert cache.get("k") is None
    cache.put("k", "fp", "/completions", {"a": 2})
    assert cache.get("k") == {"a": 2}


# ---- 9. runs read by another command: run --extend, and the web app's run list --------------------------------
EXTEND_DAMAGE = [("summary.json", p) for p in ("empty", "top-list", "deep-object", "truncated", "dangling-link")] + \
    [("config.json", p) for p in ("empty", "top-null", "lone-surrogate")]


@pytest.mark.parametrize("name, payload", EXTEND_DAMAGE, ids=[f"{n}-{p}" for n, p in EXTEND_DAMAGE])
def test_run_extend_from_a_damaged_run(work, tiny_dir, small_task_dir, name, payload):
    run = work / "run"
    damage(run / name, payload, OBJECT_PAYLOADS)
    before = snapshot(run)
    refused(invoke("run", "--extend", run, "--task", small_task_dir, "--model", tiny_dir, "--out", work / "out"))
    assert snapshot(run) == before and not (work / "out").exists()


@pytest.mark.parametrize("key, value", [("best", []), ("best", {"prompt": 5}), ("leaderboard", "x"), ("budget_used", {}),
                                        ("estimate", [1])])
def test_run_extend_from_a_summary_with_a_wrong_typed_field(work, tiny_dir, small_task_dir, key, value):
    run = work / "run"
    good = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**good, key: value}))
    refused(invoke("run", "--extend", run, "--task", small_task_dir, "--model", tiny_dir, "--out", work / "out"))
    assert not (work / "out").exists()


@pytest.mark.parametrize("name, payload", [("summary.json", "top-list"), ("summary.json", "deep-list"),
                                           ("config.json", "empty"), ("config.json", "lone-surrogate")])
def test_the_web_apps_run_list_shows_a_damaged_run_as_an_error(work, name, payload):
    from promptsearch.ui.runs import RunIndex

    damage(work / "run" / name, payload, OBJECT_PAYLOADS)
    runs = RunIndex([str(work)]).runs()
    assert len(runs) == 1 and runs[0].error and "\n" not in runs[0].error


LABELS_CASES = [p for p in OBJECT_PAYLOADS if p != "top-list"] + [*LINKS, "object", "one-word", "numbers", "twice"]


@pytest.mark.parametrize("payload", LABELS_CASES)
def test_labels_json(work, payload):
    """labels.json (the label words, where task.json gives none)."""
    task = work / "task"
    meta = json.loads((task / "task.json").read_text())
    words = meta.pop("label_words")
    (task / "task.json").write_text(json.dumps(meta))
    (task / "labels.json").write_text(json.dumps(words))
    extra = {"object": b'{"0": "negative", "1": "positive"}', "one-word": b'["positive"]', "numbers": b"[0, 1]",
             "twice": b'["positive", "positive"]'}
    damage(task / "labels.json", payload, {**OBJECT_PAYLOADS, **extra})
    before = snapshot(task)
    msg = refused(invoke("tasks", "--task", task))
    assert "labels.json" in msg or "task.json" in msg, msg
    with pytest.raises(PromptSearchError):
        ps.load_task(str(task))
    assert snapshot(task) == before


@pytest.mark.parametrize("payload", LOG_LINE_CASES)
def test_the_web_apps_log_reader_skips_a_bad_line(work, payload):
    """ui/log.py reads candidates.jsonl its own way (results parsed on demand): a bad line is skipped there too."""
    from promptsearch.store import RunStore
    from promptsearch.ui.log import read_log, results_of

    log = work / "run" / "candidates.jsonl"
    good = read_log(log)
    damage(log, payload, LINE_PAYLOADS)
    damaged = read_log(log)
    assert [r["candidate"]["id"] for r in damaged] == [r["candidate"]["id"] for r in good]
    assert all(isinstance(results_of(r), dict) for r in damaged)
    assert len(RunStore(work / "run").read("candidates.jsonl")) == len(damaged)


TEST_LOG_LINES = {
    **{p: LINE_PAYLOADS[p] for p in LOG_LINE_CASES},
    "keys-not-a-list": lambda good: good + b'{"candidate": {"id": "x"}, "keys": "k", "results": []}\n',
    "candidate-a-string": lambda good: good + b'{"candidate": "x", "keys": [], "results": []}\n',
    "results-short": lambda good: good + b'{"candidate": {"id": "x"}, "keys": ["a", "b"], "results": [[1, "p", null, []]]}\n',
    "result-row-wrong": lambda good: good + b'{"candidate": {"id": "x"}, "keys": ["a"], "results": [["1", 2, 3]]}\n',
}


@pytest.mark.parametrize("payload", list(TEST_LOG_LINES))
def test_the_runs_test_log_with_a_bad_line(work, payload):
    """run/test.jsonl (the best and seed prompts' test results, which export and show --split test read): a bad
    line is skipped with a warning, as in candidates.jsonl; nothing crashes, the run is not changed."""
    run = work / "run"
    damage(run / "test.jsonl", payload, TEST_LOG_LINES)
    before = snapshot(run)
    succeeded(invoke("export", run, "-o", work / "out.json", "--quiet"))
    succeeded(invoke("show", run, "--examples", "2", "--split", "test"))
    assert snapshot(run) == before
