"""Bad input files, two writers on one run, and a disk that fails: each ends in one line (`error: ...`, exit
2, no traceback) and leaves nothing written or what was logged intact."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptsearch.cli import main
from promptsearch.store import RunStore

ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line_error(*args) -> str:
    """Runs the CLI; it must fail with exactly one line on stderr, no traceback. Returns the message."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0][len("error: "):]


@pytest.fixture
def task(small_task_dir, tmp_path):
    return Path(shutil.copytree(small_task_dir, tmp_path / "task"))


# ---- task files --------------------------------------------------------------------------------
def test_task_file_not_utf8_names_file_and_line(task, tmp_path, tiny_dir):
    with open(task / "dev.jsonl", "ab") as f:
        f.write(b'{"input": "caf\xe9", "output": "positive"}\n')
    line = len((task / "dev.jsonl").read_bytes().splitlines())
    msg = f"{task}/dev.jsonl:{line}: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    assert one_line_error("tasks", "--task", task) == msg
    out = tmp_path / "run"
    assert one_line_error("run", "--task", task, "--model", tiny_dir, "--out", out) == msg
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("labels, problem", [
    (["good", "good"], "label word 'good' is listed twice; every class needs its own word"),
    ([], "a classification task needs at least two label words, got 0 (for a generation task, remove the label words)"),
    (["only"], "a classification task needs at least two label words, got 1 (for a generation task, remove the label words)"),
    (["good", 3], "label words must be a list of non-empty strings"),
    ({"good": 1}, "must be a JSON list, not an object"),
    # scored once per class on the prompt and the word: a huge word or thousands of classes took minutes a row
    (["good", "x" * 20_000], ("label word 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... is 20000 characters; at most 200 "
                              "(for long answers, make it a generation task)")),
    ([f"w{i}" for i in range(1001)], "1001 label words; at most 1000 classes (for open answers, make it a generation task)"),
])
def test_bad_labels_json(task, tmp_path, tiny_dir, labels, problem):
    meta = json.loads((task / "task.json").read_text())
    meta.pop("label_words", None)
    (task / "task.json").write_text(json.dumps(meta))
    (task / "labels.json").write_text(json.dumps(labels))
    assert one_line_error("tasks", "--task", task) == f"{task}/labels.json: {problem}"
    assert one_line_error("run", "--task", task, "--model", tiny_dir, "--out", tmp_path / "run").endswith(problem)
    assert not (tmp_path / "run").exists()


def test_duplicate_label_words_in_task_json(task):
    meta = json.loads((task / "task.json").read_text())
    (task / "task.json").write_text(json.dumps({**meta, "label_words": ["yes", "yes"]}))
    assert one_line_error("tasks", "--task", task) == \
        f"{task}/task.json: field 'label_words': label word 'yes' is listed twice; every class needs its own word"


@pytest.mark.parametrize("content, problem", [
    (b"{\"metrc\": \"accuracy\"}", "unknown field 'metrc'; known fields are name, kind, label_words, metric, instruction, seed_prompt, description"),
    (b"{\"kind\": 3}", "field 'kind' must be a string"),
    (b"[1]", "must be a JSON object, not a list"),
    (b"{\"name\": \"x\",}", "bad JSON at line 1: Expecting property name enclosed in double quotes"),
    (b"{\"name\": \"caf\xe9\"}", None),
])
def test_bad_task_json(task, content, problem):
    (task / "task.json").write_bytes(content)
    expected = f"{task}/task.json: {problem}" if problem else f"{task}/task.json:1: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    assert one_line_error("tasks", "--task", task) == expected


@pytest.mark.parametrize("row, problem", [
    ({"input": "x", "ouput": "positive"}, "unknown field 'ouput'; known fields are input, output, outputs, label, id, meta (put anything else under 'meta')"),
    ({"output": "positive"}, "missing or non-string field 'input'"),
    ({"input": "x", "output": "positive", "label": True}, "unknown label True; expected 0..1"),
    ("[1, 2]", "a row must be a JSON object"),
])
def test_bad_task_rows(task, row, problem):
    with open(task / "test.jsonl", "a") as f:
        f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    line = len((task / "test.jsonl").read_text().splitlines())
    assert one_line_error("tasks", "--task", task) == f"{task}/test.jsonl:{line}: {problem}"


# ---- a run's own files ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tiny_dir, small_task_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("hardening") / "run"
    r = CliRunner().invoke(main, ["run", "--model", tiny_dir, "--task", small_task_dir, "--strategy", "templates",
                                  "--max-candidates", "6", "--quiet", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture
def run(finished_run, tmp_path):
    d = Path(shutil.copytree(finished_run, tmp_path / "run"))
    (d / "lock").unlink()
    return d


@pytest.mark.parametrize("edit, problem", [
    (lambda c: {**c, "stratgies": ["templates"]}, "unknown field 'stratgies'"),
    (lambda c: {k: v for k, v in c.items() if k != "task"}, "missing field 'task'"),
    (lambda c: {**c, "strategies": "templates"}, "field 'strategies' must be a JSON list"),
    (lambda c: {**c, "seed": "0"}, "field 'seed' must be an integer"),
    (lambda c: {**c, "budget": {"max_evals": "many"}}, "field 'budget': 'max_evals' must be a number"),
    (lambda c: {**c, "budget": {"max_eval": 10}}, "field 'budget': unknown field 'max_eval'"),
    (lambda c: [c], "must be a JSON object, not a list"),
])
def test_bad_config_json_refused_by_resume_and_rate(run, edit, problem):
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(edit(config)))
    before = snapshot(run)
    for args in (("run", "--resume", run), ("rate", run, "--export", run.parent / "todo.jsonl")):
        msg = one_line_error(*args)
        assert msg.startswith(f"{run}/config.json: {problem}"), msg
    assert snapshot(run) == before and not (run.parent / "todo.jsonl").exists()


def test_config_json_not_utf8_or_not_json(run):
    (run / "config.json").write_bytes(b'{"task": "caf\xe9"}')
    assert one_line_error("run", "--resume", run) == f"{run}/config.json:1: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    (run / "config.json").write_text("{")
    assert one_line_error("run", "--resume", run).startswith(f"{run}/config.json: bad JSON at line 1")


def test_corrupt_candidates_lines_are_reported_and_skipped(run, caplog):
    lines = (run / "candidates.jsonl").read_bytes().splitlines(keepends=True)
    damaged = [lines[0], b'{"candidate": "caf\xe9"}\n', b'{"candidate": {"id": "x"}, "size": 4}\n', *lines[1:]]
    (run / "candidates.jsonl").write_bytes(b"".join(damaged))
    records = RunStore(run).read("candidates.jsonl")
    assert len(records) == len(lines)
    assert [r.getMessage() for r in caplog.records] == [
        f"{run}/candidates.jsonl:2: corrupt line skipped",
        f"{run}/candidates.jsonl:3: field 'candidate' must be an object with an 'id', a 'prompt' and a 'strategy'; line skipped"]
    result = CliRunner().invoke(main, ["show", str(run), "--json"])
    assert result.exit_code == 0 and "Traceback" not in result.output


def _export(run: Path) -> Path:
    todo = run.parent / "todo.jsonl"
    result = CliRunner().invoke(main, ["rate", str(run), "--export", str(todo), "--quiet"])
    assert result.exit_code == 0, result.output
    return todo


@pytest.mark.parametrize("change, problem", [
    (lambda r: {**r, "rating": 4, "ratng": 4}, "unknown field 'ratng'"),
    (lambda r: {**r, "rating": 4, "comment": 7}, "field 'comment' must be a string"),
    (lambda r: {**r, "rating": 4, "label_words": "yes"}, "field 'label_words' must be a list of strings or null"),
    (lambda r: {**r, "rating": 4, "score": "high"}, "field 'score' must be a number or null"),
    (lambda r: {**r, "rating": None}, "rating None is outside 1-5"),
])
def test_bad_rating_files_refused_whole(run, change, problem):
    todo = _export(run)
    rows = [json.loads(line) for line in todo.read_text().splitlines()]
    rows = [{**r, "rating": 5} for r in rows[:-1]] + [change(rows[-1])]
    todo.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = snapshot(run)
    msg = one_line_error("rate", run, "--from-file", todo)
    assert msg.startswith(f"{todo}:{len(rows)}: {problem}"), msg
    assert snapshot(run) == before  # nothing added


def test_rating_file_not_utf8(run):
    todo = _export(run)
    rows = [{**json.loads(line), "rating": 4} for line in todo.read_text().splitlines()]
    todo.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with open(todo, "ab") as f:
        f.write(b'{"prompt": "x {input}", "input": "caf\xe9", "rating": 3}\n')
    n = len(todo.read_bytes().splitlines())
    before = snapshot(run)
    assert one_line_error("rate", run, "--from-file", todo) == f"{todo}:{n}: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    assert snapshot(run) == before


def test_run_ratings_with_a_bad_line_are_noted_not_fatal(run):
    todo = _export(run)
    rows = [{**json.loads(line), "rating": 4} for line in todo.read_text().splitlines()]
    todo.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert CliRunner().invoke(main, ["rate", str(run), "--from-file", str(todo)]).exit_code == 0
    with open(run / "ratings.jsonl", "ab") as f:
        f.write(b'{"rating": 4, "input": "caf\xe9"}\n')
    n = len((run / "ratings.jsonl").read_bytes().splitlines())
    result = CliRunner().invoke(main, ["rate", str(run), "--export", str(run.parent / "again.jsonl")])
    assert result.exit_code == 0
    assert f"note: {run}/ratings.jsonl:{n}: not UTF-8 text (byte 0xe9); save the file as UTF-8; skipped (the line stays in the file)" \
        in result.stderr


@pytest.mark.parametrize("content, problem", [
    (b'{"too long": "Be brief.", "x": "caf\xe9"}', ":1: not UTF-8 text (byte 0xe9); save the file as UTF-8"),
    (b"{}", ": holds no edits; give at least one comment pattern"),
    (b'["too long"]', ": must be a JSON object, not a list"),
    (b'{"too long": 3}', ": must be a JSON object mapping a comment pattern to an instruction"),
])
def test_bad_edits_file(run, content, problem):
    todo = _export(run)
    rows = [{**json.loads(line), "rating": 2, "comment": "too long"} for line in todo.read_text().splitlines()]
    todo.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert CliRunner().invoke(main, ["rate", str(run), "--from-file", str(todo)]).exit_code == 0
    edits = run.parent / "edits.json"
    edits.write_bytes(content)
    assert one_line_error("refine", run, "--edits", edits, "--out", run.parent / "refined") == f"{edits}{problem}"
    assert not (run.parent / "refined").exists()


# ---- one writer per run -----------------------------------------------------------------------
def hold_lock(run):
    """Another process that holds the run's lock (until it is killed); returns once it holds it."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time\nfrom promptsearch.store import RunStore\n"
        f"with RunStore({str(run)!r}).locked():\n    print('held', flush=True)\n    time.sleep(120)\n")],
        stdout=subprocess.PIPE, text=True, env=ONE_THREAD)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_second_writer_is_refused_with_the_holders_pid_and_a_killed_holder_frees_the_run(run):
    holder = hold_lock(run)
    try:
        before = snapshot(run)
        expected = f"{run} is in use by another promptsearch process (pid {holder.pid}); wait for it to finish or stop it first"
        assert one_line_error("run", "--resume", run) == expected
        assert one_line_error("rate", run, "--export", run.parent / "todo.jsonl") == expected
        assert snapshot(run) == before and not (run.parent / "todo.jsonl").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunStore(run).locked():  # the kernel dropped the dead holder's lock: nothing is stuck
        assert (run / "lock").read_text() == str(os.getpid())


def test_refine_resume_is_refused_while_held(run, tmp_path):
    refined = tmp_path / "refined"
    refined.mkdir()
    # a refine.json that reads (refine --resume checks it before it takes the lock)
    (refined / "refine.json").write_text(json.dumps({"parent": str(run), "weight": 0.5, "ratings": [], "edits": []}))
    (refined / "config.json").write_text((run / "config.json").read_text())
    holder = hold_lock(refined)
    try:
        assert one_line_error("refine", "--resume", refined) == \
            f"{refined} is in use by another promptsearch process (pid {holder.pid}); wait for it to finish or stop it first"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_new_run_into_a_held_directory_is_refused_before_config_changes(tmp_path, tiny_dir, small_task_dir):
    d = tmp_path / "starting"
    d.mkdir()
    (d / "config.json").write_text("{}")  # a run still loading its model: no candidates.jsonl yet
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time\nfrom promptsearch.store import RunStore\n"
        f"with RunStore({str(d)!r}).locked():\n    print('held', flush=True)\n    time.sleep(120)\n")],
        stdout=subprocess.PIPE, text=True, env=ONE_THREAD)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert one_line_error("run", "--task", small_task_dir, "--model", tiny_dir, "--out", d) == \
            f"{d} is in use by another promptsearch process (pid {holder.pid}); wait for it to finish or stop it first"
        assert (d / "config.json").read_text() == "{}"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_one_process_may_nest_its_own_lock(run):
    with RunStore(run).locked(), RunStore(run).locked():
        pass
    with RunStore(run).locked():  # released after the outer block
        pass


# ---- the disk fails ----------------------------------------------------------------------------
@pytest.fixture
def tmpfs(tmp_path):
    """A tiny tmpfs (root only); skipped where mounting is not allowed."""
    d = tmp_path / "disk"
    d.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True, check=False).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield d
    subprocess.run(["umount", "-l", str(d)], check=True)


def test_full_disk_stops_the_run_with_one_line_and_keeps_the_log(tmpfs, tiny_dir, small_task_dir):
    out = tmpfs / "run"
    result = subprocess.run([sys.executable, "-m", "promptsearch", "run", "--model", tiny_dir, "--task", small_task_dir,
                             "--strategy", "templates", "--max-evals", "3000", "--quiet", "--out", str(out)],
                            capture_output=True, text=True, timeout=600, env=ONE_THREAD, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        (f"error: cannot write {out}/candidates.jsonl: No space left on device. "
         f"Continue with: promptsearch run --resume {out}")]
    lines = (out / "candidates.jsonl").read_bytes().splitlines()
    assert len(RunStore(out).read("candidates.jsonl")) >= len(lines) - 1 > 0  # at most a torn last line


def test_run_directory_that_cannot_be_made(tiny_dir, small_task_dir):
    assert one_line_error("run", "--task", small_task_dir, "--model", tiny_dir, "--out", "/proc/no/run") == \
        "cannot write /proc/no/run: No such file or directory"


def test_read_only_run_directory_is_refused_with_one_line(tmpfs, finished_run):
    d = Path(shutil.copytree(finished_run, tmpfs / "run"))
    (d / "summary.json").unlink()
    (d / "lock").unlink()
    before = snapshot(d)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    assert one_line_error("run", "--resume", d) == f"cannot write {d}/lock: Read-only file system"
    assert snapshot(d) == before


def test_sigterm_stops_a_run_like_ctrl_c(tiny_dir, small_task_dir, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "promptsearch", "run", "--model", tiny_dir, "--task", small_task_dir,
                             "--strategy", "templates", "--max-evals", "3000", "--quiet", "--out", str(out)],
                            stderr=subprocess.PIPE, text=True, env=ONE_THREAD)
    log = out / "candidates.jsonl"
    while proc.poll() is None and not (log.exists() and log.read_text().count("\n") >= 2):
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"interrupted; nothing scored is lost. Continue with: promptsearch run --resume {out}"
    assert len(RunStore(out).read("candidates.jsonl")) == len(log.read_text().splitlines())
