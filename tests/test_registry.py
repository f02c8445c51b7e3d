"""The prompt registry: versions, lookups, rollback, racing writers (real processes), and the
``prompts`` commands as a new user runs them (no model needed: artifacts are built here)."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptsearch import artifact
from promptsearch.cli import main
from promptsearch.errors import PromptSearchError
from promptsearch.registry import Registry, default_path, parse_ref

ROOT = Path(__file__).resolve().parents[1]


def score(value, n):
    return {"metric": "accuracy", "score": value, "n": n, "ci_low": 0.0, "ci_high": 1.0}


def make_artifact(prompt="Review: {input}\nSentiment:", scores=(1, 1, 0, 1, 0, 1, 1, 1), keys=None) -> str:
    n = len(scores)
    keys = keys or [f"k{i:02d}" for i in range(n)]
    data = {
        "schema": artifact.SCHEMA, "schema_version": artifact.SCHEMA_VERSION, "prompt": prompt,
        "label_words": ["negative", "positive"], "chat": False, "soft": None,
        "model": {"spec": None, "name": "embedded:test", "dtype": "float32", "fingerprint": "sha256:abc"},
        "task": {"name": "t", "kind": "classification", "metric": "accuracy", "source": "t", "seed": 0,
                 "splits": {"test": {"n": n, "sha256": "sha256:def"}}},
        "scores": {"dev": score(0.5, 4), "test": score(sum(scores) / n, n), "seed_dev": score(0.5, 4), "seed_test": score(0.5, n),
                   "paired_test": {"test": "exact McNemar", "difference": 0.1, "p_value": 0.5, "detail": "1 vs 0 discordant"}},
        "test_outcomes": {"keys": keys, "scores": list(scores), "golds": [1] * n, "preds": [1] * n},
        "seed_prompt": "{input}", "provenance": {"strategies": ["templates"], "strategy": "templates", "seed": 0, "rank": 1},
        "created": "2026-11-28T00:00:00Z", "promptsearch_version": "0.1.0",
    }
    return json.dumps(data, indent=1)


@pytest.fixture
def registry_env(tmp_path, monkeypatch):
    path = tmp_path / "reg" / "registry.db"
    monkeypatch.setenv("PROMPTSEARCH_REGISTRY", str(path))
    return path


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.delenv("PROMPTSEARCH_REGISTRY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_path() == tmp_path / "promptsearch" / "registry.db"
    monkeypatch.setenv("PROMPTSEARCH_REGISTRY", str(tmp_path / "x.db"))
    assert default_path() == tmp_path / "x.db"


def test_versions_and_lookups(registry_env):
    reg = Registry()
    assert reg.add("sst2", make_artifact()).ref == "sst2@v1"
    assert reg.add("sst2", make_artifact("Text: {input}\nLabel:")).ref == "sst2@v2"
    assert reg.add("other", make_artifact()).ref == "other@v1"
    assert reg.get("sst2").version == 2 and reg.get("sst2@v1").artifact.prompt == "Review: {input}\nSentiment:"
    assert [v.ref for v in reg.versions()] == ["other@v1", "sst2@v1", "sst2@v2"]
    with pytest.raises(PromptSearchError, match="no prompt 'sst2@v3'"):
        reg.get("sst2@v3")
    for bad in ("sst2@3", "@v1", "a b", "x@v1@v2"):
        with pytest.raises(PromptSearchError, match="not a prompt reference"):
            parse_ref(bad)
    with pytest.raises(PromptSearchError, match="prompt name"):
        reg.add("-bad", make_artifact())
    with pytest.raises(PromptSearchError, match="missing field 'model'"):
        reg.add("sst2", json.dumps({k: v for k, v in json.loads(make_artifact()).items() if k != "model"}))
    assert len(reg.versions("sst2")) == 2


def test_a_failed_add_leaves_nothing_and_releases_the_lock(registry_env):
    reg = Registry()
    reg.add("keep", make_artifact())
    with sqlite3.connect(registry_env) as conn:  # make the insert fail inside the add's transaction
        conn.execute("CREATE TRIGGER boom BEFORE INSERT ON versions WHEN NEW.name = 'boom' "
                     "BEGIN SELECT RAISE(ABORT, 'simulated failure'); END")
    with pytest.raises(PromptSearchError, match="simulated failure"):
        reg.add("boom", make_artifact())
    assert [v.ref for v in reg.versions()] == ["keep@v1"]
    assert reg.add("keep", make_artifact() + "\n").ref == "keep@v2"  # nothing left locked (a changed text: #30)


ADDER = """
import sys
from promptsearch.registry import Registry
text = open(sys.argv[1]).read()
for i in range(int(sys.argv[2])):  # each add a different text (trailing newlines): an identical one adds nothing (#30)
    Registry().add("race", text + "\\n" * (1 + i + 100 * int(sys.argv[3])))
"""


def test_racing_writers_in_real_processes_all_land(registry_env, tmp_path):
    f = tmp_path / "a.json"
    f.write_text(make_artifact())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", ADDER, str(f), "15", str(k)], env=env) for k in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert [v.version for v in Registry().versions("race")] == list(range(1, 46))


def test_two_prompts_add_commands_racing_both_land(registry_env, tmp_path):
    files = [tmp_path / "a.json", tmp_path / "b.json"]
    for k, f in enumerate(files):
        f.write_text(make_artifact() + "\n" * k)  # two different texts: an identical one would add nothing (#30)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmds = [[sys.executable, "-m", "promptsearch", "prompts", "add", str(f), "--name", "race", "--json"] for f in files]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for cmd in cmds]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert sorted(o["version"] for o in outs) == [1, 2]
    assert [v.ref for v in Registry().versions("race")] == ["race@v1", "race@v2"]


def test_prompts_commands_as_a_new_user(registry_env, tmp_path):
    r = invoke("prompts", "list")
    assert r.exit_code == 2 and "no registry at" in r.output and "prompts add" in r.output
    v1, v2, elsewhere = tmp_path / "v1.json", tmp_path / "v2.json", tmp_path / "other.json"
    v1.write_text(make_artifact(scores=(0, 0, 0, 1, 0, 1, 0, 1) * 5))
    v2.write_text(make_artifact("Review: {input}\nThe sentiment is", scores=(1, 1, 1, 1, 0, 1, 1, 1) * 5))
    elsewhere.write_text(make_artifact(keys=[f"z{i}" for i in range(8)]))
    assert invoke("prompts", "add", str(v1), "--name", "sst2").output.startswith("added sst2@v1: test 0.375")
    assert json.loads(invoke("prompts", "add", str(v2), "--name", "sst2", "--json").stdout)["ref"] == "sst2@v2"
    assert invoke("prompts", "add", str(elsewhere), "--name", "sst2", "--quiet").exit_code == 0

    rows = json.loads(invoke("prompts", "list", "--json").stdout)["prompts"]
    assert [(r["ref"], r["versions"]) for r in rows] == [("sst2@v3", 3)]
    assert "sst2@v3" in invoke("prompts", "list").output

    shown = json.loads(invoke("prompts", "show", "sst2@v2", "--json").stdout)
    assert shown["ref"] == "sst2@v2" and shown["versions"] == ["v1", "v2", "v3"]
    assert shown["artifact"]["prompt"] == "Review: {input}\nThe sentiment is"
    text = invoke("prompts", "show", "sst2@v1").output
    assert "test 0.375" in text and "improvement on test: +0.100 (exact McNemar p=0.5" in text

    d = json.loads(invoke("prompts", "diff", "sst2@v1", "sst2@v2", "--json").stdout)
    assert d["prompt_diff"][3:] == [" Review: {input}", "-Sentiment:", "+The sentiment is"]
    # v1 and v2 share the 40 examples: v2 is right on 20 that v1 missed (4 in each block of 8), v1 on none that v2 missed
    assert d["paired_test"]["test"] == "exact McNemar" and d["paired_test"]["detail"] == "20 vs 0 discordant"
    assert d["paired_test"]["p_value"] == pytest.approx(2 * 0.5**20)
    assert "on the same 40 test examples: +0.500, exact McNemar" in invoke("prompts", "diff", "sst2@v1", "sst2@v2").output
    d = json.loads(invoke("prompts", "diff", "sst2@v2", "sst2@v3", "--json").stdout)
    assert d["paired_test"] is None
    assert "no paired test" in invoke("prompts", "diff", "sst2@v2", "sst2@v3").output

    out = tmp_path / "back.json"
    assert json.loads(invoke("prompts", "export", "sst2@v2", "-o", str(out), "--json").stdout)["file"] == str(out)
    assert out.read_bytes() == v2.read_bytes()
    r = invoke("prompts", "show", "sst2@v9")
    assert r.exit_code == 2 and r.output.startswith("error: no prompt 'sst2@v9'")
