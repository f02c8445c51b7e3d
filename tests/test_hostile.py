"""Hostile files and input (issue 31): each class ends in one line (`error: ...`, exit 2), nothing written
outside where the user pointed, nothing lost. The security cases fail on the code before the fix."""

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptsearch import artifact, files
from promptsearch.cli import main
from promptsearch.errors import PromptSearchError
from promptsearch.files import parse_json
from promptsearch.store import default_run_dir
from promptsearch.testing import ScriptedServer
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


# ---- 2, 3, 5, 6. where a key goes, what a URL may hold, how much is read --------------------------
Recorder = ScriptedServer  # records each request's path and headers


MODELS = (200, {"Content-Type": "application/json"}, b'{"data": [{"id": "m", "owned_by": "x"}]}')


@pytest.fixture
def elsewhere():
    server = Recorder(lambda path: MODELS)
    yield server
    server.close()


def test_a_redirect_to_another_host_is_not_followed_with_the_key(elsewhere, monkeypatch, tmp_path):
    monkeypatch.setenv("PROMPTSEARCH_API_KEY", "sk-secret-1")
    mover = Recorder(lambda path: (302, {"Location": elsewhere.url.replace("/v1", "") + path, "Content-Length": "0"}, b""))
    try:
        msg = one_line_error("eval", "--model", mover.url, "--task", "sst2-mini", "--limit", "1")
    finally:
        mover.close()
    assert msg.startswith(f"server {mover.url}: HTTP 302 on /models: redirects to {elsewhere.url}/models;")
    assert "redirects are not followed" in msg and "sk-secret" not in msg
    assert elsewhere.seen == []  # the other host never saw the request, let alone the key
    assert mover.seen[0][1].get("Authorization") == "Bearer sk-secret-1"  # the URL given did get it


@pytest.mark.parametrize("command", [["eval", "--check"], ["predict", "a gripping film"]])
def test_an_artifact_command_never_connects_to_the_url_it_records(elsewhere, monkeypatch, tmp_path, command):
    """eval --artifact and predict alike: without --model, a recorded server URL is refused, the key never sent."""
    monkeypatch.setenv("PROMPTSEARCH_API_KEY", "sk-secret-2")
    data = json.loads(make_artifact())
    data["model"]["spec"] = elsewhere.url
    (tmp_path / "a.json").write_text(json.dumps(data))
    msg = one_line_error(command[0], "--artifact", tmp_path / "a.json", *command[1:])
    assert "read from a file; a URL read from a file is never connected to" in msg and f"--model {elsewhere.url}" in msg
    assert elsewhere.seen == []


@pytest.mark.parametrize("url", ["http://user:pa55word@127.0.0.1:9/v1", "http://:pa55word@127.0.0.1:9/v1",
                                 "http://127.0.0.1:9/v1?key=pa55word", "http://127.0.0.1:x/v1"])
def test_credentials_in_a_url_are_refused_and_never_shown(task, tmp_path, url):
    out = tmp_path / "run"
    for args in (("run", "--task", task, "--model", url, "--out", out), ("eval", "--task", task, "--model", url),
                 ("run", "--task", task, "--proposer", url, "--out", out)):
        msg = one_line_error(*args)
        assert "pa55word" not in msg and ("holds credentials" in msg or "query string" in msg or "http(s)" in msg
                                          or "not a valid URL" in msg)
    assert not out.exists()


def test_a_redacted_url_keeps_host_and_path():
    from promptsearch.models.urls import redact

    assert redact("http://u:p@h:1/v1?k=s") == "http://***@h:1/v1?***"
    assert redact("https://h/v1") == "https://h/v1"


@pytest.mark.parametrize("announce", [True, False])
def test_responses_are_capped(monkeypatch, announce):
    from promptsearch.models import http_pool

    monkeypatch.setattr(http_pool, "MAX_RESPONSE_BYTES", 1000)
    body = b'{"data": "' + b"x" * 5000 + b'"}'
    server = Recorder(lambda path: (200, {"Content-Length": str(len(body))} if announce else {"Connection": "close"}, body))
    try:
        with pytest.raises(http_pool.ServerError, match="capped"):
            http_pool.HttpPool([server.url], retries=0).request("/models")
    finally:
        server.close()


def make_run_dir(tmp_path, small_task_dir, **config):
    """A run directory as `run` sets it up (config.json, no scored rung yet), without loading a model."""
    from promptsearch import runner
    from promptsearch.store import RunStore

    d = tmp_path / "run"
    RunStore.create(d, runner.make_config(task=small_task_dir, strategies=["templates"], **config))
    return d


def test_resume_never_joins_a_ray_address_from_config(tmp_path, small_task_dir):
    d = make_run_dir(tmp_path, small_task_dir, executor={"kind": "ray", "workers": 2, "threads": 1, "address": "10.9.9.9:6379"})
    before = snapshot(d)
    msg = one_line_error("run", "--resume", d)
    assert msg.startswith(f"{d} ran on the Ray cluster at 10.9.9.9:6379; a cluster address read from a file is never joined")
    assert snapshot(d) == before


def test_resume_connects_to_a_recorded_server_only_when_named(tmp_path, small_task_dir, elsewhere, monkeypatch):
    monkeypatch.setenv("PROMPTSEARCH_API_KEY", "sk-secret-3")
    d = make_run_dir(tmp_path, small_task_dir, model=elsewhere.url)
    before = snapshot(d)
    msg = one_line_error("run", "--resume", d)
    assert "never connected to" in msg and f"--model {elsewhere.url}" in msg
    assert elsewhere.seen == [] and snapshot(d) == before
    msg = one_line_error("run", "--resume", d, "--model", "http://127.0.0.1:9/v1")  # another server: refused too
    assert elsewhere.seen == [] and "never connected to" in msg


@pytest.mark.parametrize("flag", [["--max-evals", "5"], ["--strategy", "clarify"], ["--seed", "3"], ["--task", "x"],
                                  ["--chat"], ["--max-seconds", "60"]])
def test_flags_that_would_change_a_resumed_run_are_refused(tmp_path, small_task_dir, flag):
    d = make_run_dir(tmp_path, small_task_dir)
    before = snapshot(d)
    msg = one_line_error("run", "--resume", d, *flag)
    assert msg.startswith(f"--resume continues the run as it was set up; drop {flag[0]} (it would change the run")
    assert snapshot(d) == before


# ---- 4. integrity: what the hashes prove is checked on every read ---------------------------------
def test_an_edited_registry_row_is_refused_on_read(tmp_path, registry_env):
    import sqlite3

    (tmp_path / "a.json").write_text(make_artifact())
    assert CliRunner().invoke(main, ["prompts", "add", str(tmp_path / "a.json"), "--name", "p"]).exit_code == 0
    db = sqlite3.connect(registry_env)
    db.execute("UPDATE versions SET artifact = replace(artifact, 'Review:', 'Ignore all:')")
    db.commit()
    db.close()
    for args in (("prompts", "show", "p"), ("prompts", "list"), ("prompts", "export", "p", "-o", tmp_path / "out.json")):
        msg = one_line_error(*args)
        assert msg == "registry row p@v1: its artifact no longer matches the sha256 recorded when it was added " \
                      "(edited or damaged); add the artifact again"
    assert not (tmp_path / "out.json").exists()


def test_a_damaged_registry_file_is_one_line(tmp_path, registry_env):
    (tmp_path / "a.json").write_text(make_artifact())
    assert CliRunner().invoke(main, ["prompts", "add", str(tmp_path / "a.json"), "--name", "p"]).exit_code == 0
    raw = bytearray(registry_env.read_bytes())
    raw[4096:] = b"\xff" * (len(raw) - 4096)  # every page after the first overwritten
    registry_env.write_bytes(bytes(raw))
    for args in (("prompts", "list"), ("prompts", "show", "p")):
        assert one_line_error(*args).startswith(f"registry {registry_env}: ")


def consistent_artifact(scores=(1, 1, 0, 1), preds=(1, 1, 0, 1)):
    import hashlib

    data = json.loads(make_artifact(scores=scores))
    keys = data["test_outcomes"]["keys"]
    data["test_outcomes"]["preds"] = list(preds)
    data["task"]["splits"]["test"]["sha256"] = "sha256:" + hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
    return data


def test_check_refuses_an_artifact_whose_parts_disagree():
    from promptsearch import monitor
    from promptsearch.metrics import Score

    fresh = Score("accuracy", 0.75, 4, 0.3, 0.95)
    rows = {"keys": ["k00", "k01", "k02", "k03"], "scores": [1, 1, 0, 1], "golds": [1] * 4, "preds": [1, 1, 0, 1]}
    art = artifact.Artifact.from_json(consistent_artifact())
    examples = [type("Ex", (), {"key": k})() for k in rows["keys"]]
    assert monitor.decide(art, examples, fresh, rows).ok  # consistent and reproduced
    edited = consistent_artifact()
    edited["task"]["splits"]["test"]["sha256"] = "sha256:" + "0" * 64  # to dodge the same-data rule
    with pytest.raises(PromptSearchError, match="test split hash is not the hash of the examples"):
        monitor.decide(artifact.Artifact.from_json(edited), examples, fresh, rows)
    inflated = consistent_artifact()
    inflated["scores"]["test"]["score"] = 0.95
    with pytest.raises(PromptSearchError, match="test score is not the mean"):
        monitor.decide(artifact.Artifact.from_json(inflated), examples, fresh, rows)
    swapped = artifact.Artifact.from_json(consistent_artifact(preds=(1, 1, 1, 0)))  # same mean, other answers
    assert not monitor.decide(swapped, examples, fresh, rows).ok


# ---- 7. cached answers belong to the server that gave them ----------------------------------------
def topk_server(positive: float, meta=None):
    listing = {"data": [{"id": "same-id", "owned_by": "x", **({"meta": meta} if meta else {})}]}

    def answer(path):
        if path.endswith("/models"):
            return 200, {}, json.dumps(listing).encode()
        tops = {" positive": positive, " negative": -3.0}
        return 200, {}, json.dumps({"choices": [{"text": " positive", "logprobs": {"top_logprobs": [tops]}}]}).encode()
    return Recorder(answer)


def test_two_servers_with_one_model_id_do_not_share_cached_answers(tmp_path):
    from promptsearch.models.served import ServedModel

    a, b = topk_server(-0.1), topk_server(-0.7)
    try:
        got = []
        for server in (a, b, a):
            model = ServedModel.connect([server.url], scoring="topk", cache_path=tmp_path / "r.sqlite", retries=0)
            got.append(model.loglikelihoods(["Review: fine"], [[" positive"]])[0][0])
            model.cache.close()
        assert got == [-0.1, -0.7, -0.1]
        assert len([p for p, _ in a.seen if p.endswith("/completions")]) == 1  # the third read came from the cache
    finally:
        a.close()
        b.close()


def test_a_redeployed_model_is_a_new_cache_identity():
    from promptsearch.models.http_pool import HttpPool
    from promptsearch.models.served import ServedModel

    def identity(url, meta):
        return ServedModel(HttpPool([url]), "same-id", "x", "topk", server_report={"id": "same-id", "meta": meta}).cache_identity

    here = identity("http://h:1/v1", {"n_params": 135})
    assert here == identity("http://h:1/v1", {"n_params": 135})  # the same server: its cached answers are reused
    assert here != identity("http://h:1/v1", {"n_params": 360})  # other weights behind the same URL and id
    assert here != identity("http://h:2/v1", {"n_params": 135})  # another server


# ---- 8. a resumed run reads the data it started on ------------------------------------------------
def test_resume_refuses_changed_data(tmp_path, small_task_dir):
    task = Path(shutil.copytree(small_task_dir, tmp_path / "task"))
    d = make_run_dir(tmp_path, str(task))
    assert json.loads((d / "config.json").read_text()).get("data") is None  # make_run_dir bypasses runner.run
    from promptsearch import runner
    from promptsearch.store import RunStore
    from promptsearch.task import load_task

    config = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**config, "data": runner.data_hashes(load_task(str(task)))}))
    rows = (task / "dev.jsonl").read_text().splitlines()
    flipped = json.loads(rows[0])
    flipped["output"] = "negative" if flipped["output"] == "positive" else "positive"
    if "label" in flipped:
        flipped["label"] = 1 - flipped["label"]
    (task / "dev.jsonl").write_text("\n".join([json.dumps(flipped)] + rows[1:]) + "\n")
    before = snapshot(d)
    msg = one_line_error("run", "--resume", d)
    assert msg.startswith(f"{d}: the task's dev data changed since the run started")
    assert snapshot(d) == before
    (task / "dev.jsonl").write_text("\n".join(rows) + "\n")  # the data as it was; now a finished run's config is edited
    score = {"metric": "accuracy", "score": 0.5, "n": 2, "ci_low": 0.1, "ci_high": 0.9}
    RunStore(d).write_summary({"best": {"prompt": "x", "dev": score, "test": score}, "budget_used": {},
                               "seed": {"prompt": "x", "dev": score, "test": score},
                               "config_sha256": runner.config_hash(RunStore(d).config)})
    config = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**config, "budget": {**config["budget"], "max_evals": 99}}))
    before = snapshot(d)
    assert "has finished, and its config.json changed since" in one_line_error("run", "--resume", d)
    assert snapshot(d) == before


# ---- 11. --out never writes into someone else's folder --------------------------------------------
@pytest.mark.parametrize("kind", ["model", "task", "file"])
def test_out_into_a_folder_that_is_not_a_run_is_refused(tmp_path, small_task_dir, tiny_dir, kind):
    target = {"model": Path(tiny_dir), "task": Path(small_task_dir), "file": tmp_path / "notes"}[kind]
    if kind == "file":
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    before = snapshot(target)
    msg = one_line_error("run", "--task", small_task_dir, "--model", tiny_dir, "--out", target, "--max-evals", "50")
    assert msg.startswith(f"{target} is not empty and is not a promptsearch run")
    assert snapshot(target) == before


def test_a_run_records_the_hashes_of_its_data(tmp_path, small_task_dir, tiny_dir):
    from promptsearch.task import load_task

    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--task", small_task_dir, "--model", tiny_dir, "--strategy", "templates",
                                       "--max-evals", "60", "--out", str(out), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    recorded = json.loads((out / "config.json").read_text())["data"]
    task = load_task(small_task_dir)
    assert recorded == {s: artifact.split_hash(task.split(s)) for s in ("train", "dev", "test")}


# ---- 13. one rule set for every number, from the command line and from files ----------------------
@pytest.mark.parametrize("edit, message", [
    ({"racing": {"min_examples": 16, "eta": 1}}, "racing.eta: 1 is out of range; it must be a whole number from 2 to 1000"),
    ({"batch_size": 0}, "batch_size: 0 is out of range; it must be a whole number from 1 to 1024"),
    ({"budget": {"max_evals": -5}}, "budget.max_evals: -5 is out of range; it must be a whole number of at least 1"),
    ({"budget": {"max_evals": float("nan")}}, "budget.max_evals: must be a whole number of at least 1, not nan"),
    ({"proposals_per_round": 0}, "proposals_per_round: 0 is out of range"),
    ({"budget": {"max_seconds": float("inf")}}, "budget.max_seconds: must be a number of at least 1, not inf"),
    ({"served": {"timeout": float("nan")}}, "served.timeout: must be a number from 0.1 to 86400, not nan"),
])
def test_out_of_range_numbers_in_config_json_are_one_line(tmp_path, small_task_dir, edit, message):
    d = make_run_dir(tmp_path, small_task_dir)
    config = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**config, **edit}))  # json writes NaN/Infinity, as a hand edit might
    before = snapshot(d)
    msg = one_line_error("run", "--resume", d)
    assert msg.startswith(f"{d}/config.json: field ") and message in msg
    assert snapshot(d) == before


@pytest.mark.parametrize("flag, value", [("--max-seconds", "nan"), ("--max-seconds", "inf"), ("--timeout", "nan"),
                                         ("--timeout", "inf"), ("--max-evals", "-5"), ("--batch-size", "0"),
                                         ("--max-tokens", "0"), ("--concurrency", "0")])
def test_out_of_range_numbers_on_the_command_line_are_one_line(tmp_path, small_task_dir, flag, value):
    out = tmp_path / "run"
    msg = one_line_error("run", "--task", small_task_dir, "--model", "nowhere", flag, value, "--out", out)
    assert msg.startswith(f"Invalid value for '{flag}': ") and msg.endswith(" run --help)")
    assert not out.exists()


# ---- 10, 14. every field read from a server is checked ---------------------------------------------
def served_eval_error(server, task_dir, scoring: str = "topk", *extra, limit: int = 2) -> str:
    """``eval`` against ``server`` ends in one line (closing the server after); the message."""
    try:
        return one_line_error("eval", "--model", server.url, "--task", task_dir, "--limit", str(limit), "--scoring", scoring,
                              "--timeout", "2", "--quiet", *extra)
    finally:
        server.close()


def odd_server(models=None, completion=None):
    listing = {"data": models or [{"id": "m", "owned_by": "x"}]}

    def answer(path):
        if path.endswith("/models"):
            return 200, {}, json.dumps(listing).encode()
        return 200, {}, completion.encode()
    return Recorder(answer)


TOPK = '{"choices": [{"text": "x", "logprobs": {"top_logprobs": [%s]}}]}'
ECHO = '{"choices": [{"text": "x", "logprobs": {"tokens": [" a", " b", " c"], "token_logprobs": [null, -1, -1], "top_logprobs": %s}}]}'


@pytest.mark.parametrize("models, completion, scoring, expected", [
    ([{"id": "m", "context_length": "lots"}], TOPK % '{" positive": -1}', "topk", "context length that is not a positive whole number"),
    ([{"id": ["m"]}], TOPK % '{" positive": -1}', "topk", "without a list of models with text ids"),
    (None, TOPK % '{" positive": "abc", " negative": -1}', "topk", "not a log-probability"),
    (None, TOPK % '{" positive": NaN, " negative": -1}', "topk", "not a log-probability"),
    (None, TOPK % '{" positive": 3.5, " negative": -1}', "topk", "not a log-probability"),
    (None, TOPK % '7', "topk", "top_logprobs holds no token table"),
    (None, '{"choices": [{"text": "x", "logprobs": {"content": [{"token": "x", "top_logprobs": [{"token": 1, "logprob": -1}]}]}}]}', "topk-chat",
     "answered /chat/completions with something unexpected"),
    (None, ECHO % "null", "echo", "answered /completions with something unexpected"),
    (None, '{"choices": [{"text": "x", "logprobs": {"tokens": [" a", " positive"], "token_logprobs": [null, NaN]}}]}', "echo",
     "not a log-probability"),
    (None, '[1, 2]', "echo", "answered /completions with something unexpected"),
])
def test_server_answers_of_the_wrong_type_are_one_line(tmp_path, small_task_dir, tmp_cache, models, completion, scoring, expected):
    server = odd_server(models, completion)
    msg = served_eval_error(server, small_task_dir, scoring)
    assert msg.startswith(f"server {server.url}: ") and expected in msg, msg


# ---- 10. label words and labels that disagree ------------------------------------------------------
@pytest.mark.parametrize("words, problem", [
    (["positive ", "negative"], "label word 'positive ' has white space at its start or end"),
    ([" negative\n", "positive"], "label word ' negative\\n' has white space at its start or end"),
])
def test_label_words_with_stray_white_space_are_refused(task, words, problem):
    meta = json.loads((task / "task.json").read_text())
    (task / "task.json").write_text(json.dumps({**meta, "label_words": words}))
    assert problem in one_line_error("tasks", "--task", task)


def test_an_output_that_contradicts_its_label_is_refused(task):
    with open(task / "dev.jsonl", "a") as f:
        f.write(json.dumps({"input": "x", "output": "positive", "label": 0}) + "\n")
    msg = one_line_error("tasks", "--task", task)
    assert msg.endswith("output 'positive' contradicts label 0 ('negative'); give one of them, or both agreeing")


@pytest.mark.parametrize("words, problem", [
    ("good,good", "--label-words: label word 'good' is listed twice"),
    (",", "--label-words: label words must be a list of non-empty strings"),
    ("good," + "x" * 201, "--label-words: label word 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... is 201 characters"),
])
def test_label_words_flag_keeps_the_file_rules(task, tiny_dir, words, problem):
    msg = one_line_error("eval", "--task", task, "--model", tiny_dir, "--label-words", words, "--limit", "2")
    assert msg.startswith(problem)


# ---- 12. a log line that is JSON but not a record the run can use -----------------------------------
@pytest.mark.parametrize("results", [{"k": 5}, {"k": [1, "p"]}, {"k": [1, 2, None, []]}, {"k": [1, "p", None, ["x"]]}])
def test_a_malformed_results_entry_is_skipped_not_fatal(tmp_path, results, caplog):
    """And `show` on such a log lists the readable lines (a record without a CI or a strategy is skipped too)."""
    from promptsearch.store import RunStore

    d = tmp_path / "run"
    d.mkdir()
    (d / "config.json").write_text("{}")
    good = {"candidate": {"id": "a", "prompt": "{input}", "strategy": "seed"}, "size": 2, "results": {"k": [1, "p", None, [-1.0]]},
            "score": {"metric": "accuracy", "score": 0.5, "n": 2, "ci_low": 0.1, "ci_high": 0.9}}
    bad = {**good, "candidate": {"id": "b", "prompt": "{input}", "strategy": "seed"}, "results": results}
    (d / "candidates.jsonl").write_text(json.dumps(bad) + "\n" + json.dumps(good) + "\n")
    records = RunStore(d).read("candidates.jsonl")
    assert [r["candidate"]["id"] for r in records] == ["a"]
    assert "candidates.jsonl:1: field 'results' entry 'k' must be" in caplog.text


# ---- 15. bad model settings and damaged model folders --------------------------------------------
def test_bad_device_and_chat_without_template_are_one_line(task, tiny_dir, tmp_path):
    out = tmp_path / "run"
    assert one_line_error("eval", "--task", task, "--model", tiny_dir, "--device", "tpu9", "--limit", "1") == \
        "--device 'tpu9': use cpu, cuda, cuda:N, mps or auto"
    assert one_line_error("eval", "--task", task, "--model", tiny_dir, "--chat", "--limit", "1").endswith(
        "has no chat template; drop --chat")
    assert one_line_error("run", "--task", task, "--model", tiny_dir, "--chat", "--out", out).endswith(
        "has no chat template; drop --chat")
    assert not (out / "candidates.jsonl").exists()


@pytest.mark.parametrize("damage", ["config", "weights"])
def test_a_damaged_model_folder_is_one_line(task, tiny_dir, tmp_path, damage):
    model = Path(shutil.copytree(tiny_dir, tmp_path / "model"))
    if damage == "config":
        config = json.loads((model / "config.json").read_text())
        (model / "config.json").write_text(json.dumps({**config, "hidden_size": "big"}))
    else:
        for f in model.glob("*.safetensors"):
            f.write_bytes(b"junk" * 100)
    msg = one_line_error("eval", "--task", task, "--model", model, "--limit", "1")
    assert msg.startswith(f"could not load model '{model}': ")


def test_show_on_a_summary_without_best_is_one_line(tmp_path, small_task_dir):
    d = make_run_dir(tmp_path, small_task_dir)
    rec = {"candidate": {"id": "a", "prompt": "{input}", "strategy": "seed"}, "size": 2, "results": {},
           "score": {"metric": "accuracy", "score": 0.5, "n": 2, "ci_low": 0.1, "ci_high": 0.9}}
    (d / "candidates.jsonl").write_text(json.dumps(rec) + "\n")
    (d / "summary.json").write_text(json.dumps({"seed": {}, "leaderboard": []}))
    assert one_line_error("show", d) == f"{d}/summary.json: field 'best' must be an object with a 'prompt'; " \
                                        "the file is damaged or not a promptsearch summary"


# ---- 9. --max-tokens holds for the whole run, as the other limits do -----------------------------
def test_max_tokens_holds_for_the_whole_run(tmp_path, small_task_dir, tiny_dir, caplog):
    runs = {}
    for limit in (30_000, 6_000):
        result = CliRunner().invoke(main, ["run", "--task", small_task_dir, "--model", tiny_dir, "--max-tokens", str(limit),
                                           "--out", str(tmp_path / str(limit)), "--json"])
        assert result.exit_code == 0, result.output
        runs[limit] = (json.loads(result.stdout)["budget_used"], caplog.text)
    used, _ = runs[30_000]
    assert 0.5 * 30_000 < used["tokens"] <= 30_000 and used["candidates"] > 3  # test tokens counted, limit kept
    used, err = runs[6_000]  # below what the seed on dev and the test check need: only those run, with a warning
    assert used["candidates"] == 1 and used["tokens"] > 6_000
    assert f"the run used {used['tokens']} tokens, over its limit of 6000" in err


def test_show_skips_log_lines_it_cannot_render(tmp_path, small_task_dir):
    d = make_run_dir(tmp_path, small_task_dir)
    good = {"candidate": {"id": "a", "prompt": "{input}", "strategy": "seed"}, "size": 2, "results": {},
            "score": {"metric": "accuracy", "score": 0.5, "n": 2, "ci_low": 0.1, "ci_high": 0.9}}
    lines = [{**good, "candidate": {"id": "c", "prompt": "y {input}"}}, {**good, "score": {"score": 0.9}}, good]
    (d / "candidates.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    result = CliRunner().invoke(main, ["show", str(d), "--json"])
    assert result.exit_code == 0 and [r["id"] for r in json.loads(result.stdout)["leaderboard"]] == ["a"]


def test_command_line_bytes_that_are_not_utf8_are_one_line(tmp_path, small_task_dir, tiny_dir):
    bad = b"\xff {input}".decode("utf-8", "surrogateescape")  # what Python makes of such bytes in argv
    out = tmp_path / "run"
    assert "not valid Unicode" in one_line_error("run", "--task", small_task_dir, "--model", tiny_dir, "--seed-prompt", bad,
                                                 "--out", out)
    assert not out.exists()
    assert "not valid Unicode" in one_line_error("eval", "--task", small_task_dir, "--model", tiny_dir, "--prompt", bad)


# ---- files that never end, or are larger than anything a search reads -------------------------------------------


def test_a_device_given_as_a_file_is_refused_not_read_forever(task, tmp_path):
    """/dev/zero as a task file (through a link the user made) or as predict's inputs: one line, at once."""
    art = tmp_path / "a.json"
    art.write_text(make_artifact())
    assert "not a file (a device or socket)" in one_line_error("predict", "--artifact", art, "--input-file",
                                                               "/dev/zero")
    (task / "train.jsonl").unlink()
    (task / "train.jsonl").symlink_to("/dev/zero")
    with pytest.raises(PromptSearchError, match="not a file"):
        files.read_bytes(task / "train.jsonl")


def test_a_file_past_the_cap_is_one_line_and_the_cap_can_be_raised(tmp_path, monkeypatch):
    big = tmp_path / "big.jsonl"
    big.write_bytes(b'{"input": "x"}\n' * 80_000)  # 1.2 MB
    monkeypatch.setenv(files.MAX_FILE_MB_ENV, "1")
    with pytest.raises(PromptSearchError, match=r"larger than 1 MB.*PROMPTSEARCH_MAX_FILE_MB"):
        files.read_bytes(big)
    monkeypatch.setenv(files.MAX_FILE_MB_ENV, "2")
    assert len(files.read_bytes(big)) == 1_200_000
    monkeypatch.setenv(files.MAX_FILE_MB_ENV, "lots")
    with pytest.raises(PromptSearchError, match="whole number of MB"):
        files.read_bytes(big)


def test_stdin_past_the_cap_is_one_line(monkeypatch, tmp_path):
    art = tmp_path / "a.json"
    art.write_text(make_artifact())
    monkeypatch.setenv(files.MAX_FILE_MB_ENV, "1")
    result = CliRunner().invoke(main, ["predict", "--artifact", str(art), "--input-file", "-"],
                                input=b'"x"\n' * 300_000)
    assert result.exit_code == 2 and "stdin: larger than 1 MB" in result.stderr, result.output


def test_a_pipe_is_read_as_a_file(tmp_path):
    """Process substitution (``--input-file <(cmd)``) hands a pipe: it is read, not refused."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    import threading

    writer = threading.Thread(target=lambda: fifo.write_bytes(b'"a"\n"b"\n'))
    writer.start()
    assert files.read_bytes(fifo) == b'"a"\n"b"\n'
    writer.join()
