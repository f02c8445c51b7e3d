"""Hostile files and input (issue 31): each class ends in one line (`error: ...`, exit 2), nothing written
outside where the user pointed, nothing lost. The security cases fail on the code before the fix."""

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptsearch import artifact
from promptsearch.cli import main
from promptsearch.errors import PromptSearchError
from promptsearch.files import parse_json
from promptsearch.store import default_run_dir
from tests.test_registry import make_artifact


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_line_error(*args, env=None) -> str:
    """The CLI fails with exactly one line on stderr (no traceback, exit 2); returns the message."""
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0][len("error: "):]


@pytest.fixture
def registry_env(tmp_path, monkeypatch):
    path = tmp_path / "reg" / "registry.db"
    monkeypatch.setenv("PROMPTSEARCH_REGISTRY", str(path))
    return path


@pytest.fixture
def task(small_task_dir, tmp_path):
    return Path(shutil.copytree(small_task_dir, tmp_path / "task"))


def soft_artifact(file_name: str) -> str:
    data = json.loads(make_artifact())
    data["soft"] = {"file": file_name, "sha256": "0" * 64, "note": "x"}
    return json.dumps(data)


# ---- 1. paths read from files stay in their folder ------------------------------------------------
@pytest.mark.parametrize("name", ["/etc/hostname", "../victim.txt", "sub/x.safetensors", "..", ".hidden"])
def test_artifact_soft_file_must_be_a_plain_name(tmp_path, registry_env, name):
    (tmp_path / "a.json").write_text(soft_artifact(name))
    before = snapshot(tmp_path)
    msg = one_line_error("prompts", "add", tmp_path / "a.json", "--name", "x")
    assert "field 'soft.file'" in msg and "must be a plain file name in the same folder" in msg
    assert snapshot(tmp_path) == before and not registry_env.exists()  # nothing read into the registry
    with pytest.raises(PromptSearchError, match="must be a plain file name"):
        artifact.parse(soft_artifact(name).encode(), "a.json")


def test_a_symlinked_soft_file_is_not_followed(tmp_path, registry_env):
    (tmp_path / "secret").write_bytes(b"secret")
    (tmp_path / "art").mkdir()
    os.symlink(tmp_path / "secret", tmp_path / "art" / "v.safetensors")
    (tmp_path / "art" / "a.json").write_text(soft_artifact("v.safetensors"))
    msg = one_line_error("prompts", "add", tmp_path / "art" / "a.json", "--name", "x")
    assert msg.endswith("v.safetensors is a symbolic link; it must be a plain file")
    assert not registry_env.exists()


@pytest.mark.parametrize("name", ["../../x", "/abs", "a/b", ".hidden", "a\nb"])
def test_a_task_name_cannot_lead_out_of_runs(task, tmp_path, name):
    meta = json.loads((task / "task.json").read_text())
    (task / "task.json").write_text(json.dumps({**meta, "name": name}))
    msg = one_line_error("tasks", "--task", task)
    assert msg.startswith(f"{task}/task.json: field 'name'") and "must be 1-100 letters" in msg
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    os.chdir(cwd)
    try:
        one_line_error("run", "--task", task, "--model", "nowhere")
    finally:
        os.chdir(tmp_path)
    assert list(cwd.iterdir()) == [] and not (tmp_path / "x").exists()


def test_default_run_dir_stays_in_runs():
    for name in ("../../x", "/abs", "..", "a/b"):
        path = default_run_dir(name)
        assert path.parent == Path("runs") and "/" not in path.name and not path.name.startswith(".")


# ---- 12. JSON that breaks the parser or cannot be written back ----------------------------------
def test_deep_nesting_and_lone_surrogates_are_one_line():
    with pytest.raises(PromptSearchError, match="^f: JSON nested too deeply$"):
        parse_json("[" * 100_000 + "]" * 100_000, "f")
    with pytest.raises(PromptSearchError, match="lone surrogate"):
        parse_json('{"input": "\\ud800"}', "f")
    assert parse_json('"\\ud83d\\ude00"', "f") == "\U0001F600"  # a surrogate pair is a character


@pytest.mark.parametrize("where", ["dev.jsonl", "task.json"])
@pytest.mark.parametrize("payload", ["deep", "surrogate"])
def test_hostile_task_file_fails_before_anything_is_written(task, tmp_path, tiny_dir, where, payload):
    text = ('{"input": ' + "[" * 50_000 + "]" * 50_000 + ', "output": "positive"}') if payload == "deep" else \
        '{"input": "bad \\ud800 text", "output": "positive"}'
    if where == "dev.jsonl":
        with open(task / "dev.jsonl", "a") as f:
            f.write(text + "\n")
    else:
        (task / "task.json").write_text(text.replace('"input"', '"description"').replace('"output": "positive"', '"kind": "x"'))
    out = tmp_path / "run"
    msg = one_line_error("run", "--task", task, "--model", tiny_dir, "--out", out)
    assert ("nested too deeply" if payload == "deep" else "lone surrogate") in msg and where in msg
    assert not out.exists()


@pytest.mark.parametrize("target", ["dangling", "loop"])
def test_a_broken_symlink_in_a_task_is_an_error_not_a_missing_file(task, target):
    (task / "dev.jsonl").unlink()
    if target == "dangling":
        os.symlink(task / "nowhere.jsonl", task / "dev.jsonl")
    else:
        os.symlink(task / "b", task / "a")
        os.symlink(task / "a", task / "b")
        os.symlink(task / "a", task / "dev.jsonl")
    msg = one_line_error("tasks", "--task", task)
    assert msg.startswith(f"{task}/dev.jsonl: ") and ("file not found" in msg or "symbolic links" in msg)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_a_task_folder_without_read_permission(task):
    task.chmod(0o000)
    try:
        msg = one_line_error("tasks", "--task", task)
    finally:
        task.chmod(0o755)
    assert "cannot read (Permission denied)" in msg
