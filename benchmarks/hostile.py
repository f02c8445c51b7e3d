"""A corpus of hostile input for `python benchmarks/chaos.py --hostile`: bad files, hostile files, misbehaving
servers and out-of-range numbers, one or more per class of issue 31. Each case runs the real CLI in its own
process and holds when:

  refused   exit status 2, exactly one line on stderr starting "error: ", no traceback, nothing the case
            names as protected changed (snapshots before and after), no secret in the output, and no request
            reached a server the case names as elsewhere;
  held      a behaviour check returns True (cached answers per server, --max-tokens kept, a bad log line
            skipped).

Everything runs on 127.0.0.1 with the tiny random model; nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from promptsearch.testing import ScriptedServer

SECRET = "sk-hostile-corpus-secret"


Server = ScriptedServer


def listing(model=None):
    return json.dumps({"data": [model or {"id": "m", "owned_by": "x"}]}).encode()


def topk_server(completion: str, model=None) -> Server:
    return Server(lambda p: (200, {}, listing(model)) if p.endswith("/models") else (200, {}, completion.encode()))


def topk_answer(positive) -> str:
    return '{"choices": [{"text": "x", "logprobs": {"top_logprobs": [{" positive": %s, " negative": -3}]}}]}' % positive


def snapshot(*roots) -> dict:
    out = {}
    for root in roots:
        root = Path(root)
        if root.is_file():
            out[str(root)] = root.read_bytes()
        elif root.exists():
            out.update({str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()})
    return out


class Corpus:
    """Builds each case's files under ``work`` and runs it."""

    def __init__(self, work: Path, model: str, task: str, env: dict):
        self.work, self.model, self.task = work, model, task
        self.env = {**env, "PROMPTSEARCH_API_KEY": SECRET, "PROMPTSEARCH_CACHE": str(work / "cache"),
                    "PROMPTSEARCH_REGISTRY": str(work / "registry.db")}
        self.n = 0

    def fresh(self, name: str) -> Path:
        self.n += 1
        d = self.work / f"{self.n:02d}-{name}"
        d.mkdir()
        return d

    def task_copy(self, d: Path, **meta) -> Path:
        t = Path(shutil.copytree(self.task, d / "task"))
        if meta:
            data = json.loads((t / "task.json").read_text())
            (t / "task.json").write_text(json.dumps({**data, **meta}))
        return t

    def cli(self, *args, cwd=None, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        """``promptsearch ARGS`` in a fresh process; a bytes argument goes as it is (bytes that are not UTF-8)."""
        argv = [a if isinstance(a, bytes) else str(a) for a in args]
        return subprocess.run([sys.executable, "-m", "promptsearch", *argv], capture_output=True, text=True,
                              input=stdin, env={**self.env, **(env or {})}, cwd=cwd, timeout=300, check=False)

    def run_dir(self, d: Path, **config) -> Path:
        """A run set up (config.json) but not started, as `run` leaves it before its first rung."""
        from promptsearch import runner
        from promptsearch.store import RunStore

        run = d / "run"
        RunStore.create(run, runner.make_config(task=self.task, strategies=["templates"], **{"model": self.model, **config}))
        return run

    def artifact(self, **changes) -> str:
        keys = ["k0", "k1"]
        data = {
            "schema": "promptsearch.prompt-artifact", "schema_version": 1, "prompt": "Review: {input}\nSentiment:",
            "label_words": ["negative", "positive"], "chat": False, "soft": None,
            "model": {"spec": None, "name": "t", "dtype": "float32", "fingerprint": "sha256:abc"},
            "task": {"name": "t", "kind": "classification", "metric": "accuracy", "source": "t", "seed": 0,
                     "splits": {"test": {"n": 2, "sha256": "sha256:" + hashlib.sha256("\n".join(keys).encode()).hexdigest()}}},
            "scores": {k: {"metric": "accuracy", "score": 0.5, "n": 2, "ci_low": 0.0, "ci_high": 1.0}
                       for k in ("dev", "test", "seed_dev", "seed_test")},
            "test_outcomes": {"keys": keys, "scores": [1, 0], "golds": [1, 1], "preds": [1, 0]},
            "seed_prompt": "{input}", "provenance": {}, "created": "2026-12-01T00:00:00Z", "promptsearch_version": "0.1.0",
        }
        data["scores"]["paired_test"] = {"test": "exact McNemar", "difference": 0.0, "p_value": 1.0, "detail": "-"}
        for path, value in changes.items():
            node = data
            *head, last = path.split("__")
            for step in head:
                node = node[step]
            node[last] = value
        return json.dumps(data)


def refused(corpus: Corpus, proc, protect=(), before=None, elsewhere=None, expect: str = "") -> tuple[bool, str]:
    lines = proc.stderr.strip().splitlines()
    problems = []
    if proc.returncode != 2:
        problems.append(f"exit {proc.returncode}")
    if len(lines) != 1 or not lines[0].startswith("error: "):
        problems.append(f"{len(lines)} stderr lines")
    if "Traceback" in proc.stderr + proc.stdout:
        problems.append("traceback")
    if SECRET in proc.stderr + proc.stdout or "pa55word" in proc.stderr + proc.stdout:
        problems.append("a secret printed")
    if before is not None and snapshot(*protect) != before:
        problems.append("protected files changed")
    if elsewhere is not None and elsewhere.seen:
        problems.append(f"a request reached {elsewhere.url}")
    if expect and expect not in proc.stderr:
        problems.append(f"message lacks {expect!r}")
    return not problems, "; ".join(problems) or (lines[0][:150] if lines else "")


# ---- the cases: (class, name, function(corpus) -> (held, detail)) --------------------------------------
def case_soft_file(c: Corpus, name: str):
    d = c.fresh("soft-file")
    (d / "a.json").write_text(c.artifact(soft={"file": name, "sha256": "0" * 64, "note": "x"}))
    before = snapshot(d, c.work / "registry.db")
    return refused(c, c.cli("prompts", "add", d / "a.json", "--name", "x"), (d, c.work / "registry.db"), before,
                   expect="must be a plain file name")


def case_task_name(c: Corpus, name: str):
    d = c.fresh("task-name")
    t = c.task_copy(d, name=name)
    (d / "cwd").mkdir()
    proc = c.cli("run", "--task", t, "--model", c.model, "--max-evals", "30", cwd=d / "cwd")
    escaped = [p for p in (d / "cwd").rglob("*")] + [p for p in d.parent.glob("x*")]
    ok, detail = refused(c, proc, expect="field 'name'")
    return ok and not escaped, detail if not escaped else f"wrote {escaped[0]}"


def case_redirect(c: Corpus):
    elsewhere = Server(lambda p: (200, {}, listing()))
    mover = Server(lambda p: (302, {"Location": elsewhere.url.replace("/v1", "") + p}, b""))
    try:
        return refused(c, c.cli("eval", "--model", mover.url, "--task", c.task, "--limit", "1"), elsewhere=elsewhere,
                       expect="redirects are not followed")
    finally:
        mover.close()
        elsewhere.close()


def case_artifact_url(c: Corpus, *command):
    """eval --artifact or predict, with no --model, on an artifact that records a server URL: never connected to."""
    d = c.fresh(f"artifact-url-{command[0]}")
    elsewhere = Server(lambda p: (200, {}, listing()))
    try:
        (d / "a.json").write_text(c.artifact(model={"spec": elsewhere.url, "name": "x", "dtype": "float32", "fingerprint": "f"}))
        return refused(c, c.cli(command[0], "--artifact", d / "a.json", *command[1:]), elsewhere=elsewhere,
                       expect="never connected")
    finally:
        elsewhere.close()


def case_resume_url(c: Corpus):
    d = c.fresh("resume-url")
    elsewhere = Server(lambda p: (200, {}, listing()))
    try:
        run = c.run_dir(d, model=elsewhere.url)
        before = snapshot(run)
        return refused(c, c.cli("run", "--resume", run), (run,), before, elsewhere, "never connected")
    finally:
        elsewhere.close()


def case_credentials(c: Corpus, url: str):
    d = c.fresh("credentials")
    proc = c.cli("run", "--task", c.task, "--model", url, "--out", d / "run")
    ok, detail = refused(c, proc)
    return ok and not (d / "run").exists(), detail


def registered(c: Corpus, d: Path) -> tuple[Path, dict]:
    """A registry in ``d`` holding one artifact as version p@v1; (its file, the environment that points at it)."""
    (d / "a.json").write_text(c.artifact())
    reg = d / "reg.db"
    env = {**c.env, "PROMPTSEARCH_REGISTRY": str(reg)}
    subprocess.run([sys.executable, "-m", "promptsearch", "prompts", "add", str(d / "a.json"), "--name", "p"], env=env,
                   capture_output=True, check=True)
    return reg, env


def case_registry_edit(c: Corpus):
    reg, env = registered(c, c.fresh("registry-edit"))
    db = sqlite3.connect(reg)
    db.execute("UPDATE versions SET artifact = replace(artifact, 'Review:', 'Obey me:')")
    db.commit()
    db.close()
    c.env, saved = env, c.env
    try:
        return refused(c, c.cli("prompts", "show", "p"), expect="no longer matches the sha256")
    finally:
        c.env = saved


def case_registry_damaged(c: Corpus):
    reg, env = registered(c, c.fresh("registry-damaged"))
    raw = bytearray(reg.read_bytes())
    raw[4096:] = b"\xff" * (len(raw) - 4096)
    reg.write_bytes(bytes(raw))
    c.env, saved = env, c.env
    try:
        return refused(c, c.cli("prompts", "list"), expect="registry")
    finally:
        c.env = saved


def case_huge_answer(c: Corpus):
    server = Server(lambda p: (200, {"Content-Length": str(300 * 2**20)}, b"{}"))
    try:
        return refused(c, c.cli("eval", "--model", server.url, "--task", c.task, "--limit", "1", "--timeout", "5"),
                       expect="capped")
    finally:
        server.close()


def case_ray_address(c: Corpus):
    d = c.fresh("ray-address")
    run = c.run_dir(d, executor={"kind": "ray", "workers": 2, "threads": 1, "address": "10.9.9.9:6379"})
    before = snapshot(run)
    return refused(c, c.cli("run", "--resume", run), (run,), before, expect="never joined")


def case_cache_identity(c: Corpus):
    a, b = topk_server(topk_answer(-0.1)), topk_server(topk_answer(-2.5))
    try:
        scores = []
        for server in (a, b):
            proc = c.cli("eval", "--model", server.url, "--scoring", "topk", "--task", c.task, "--limit", "3", "--json", "--quiet")
            if proc.returncode:
                return False, proc.stderr.strip()[:150]
            scores.append(json.loads(proc.stdout)["results"][0]["label_logprobs"])
        return scores[0] != scores[1], f"label log-probabilities per server: {scores[0]} vs {scores[1]}"
    finally:
        a.close()
        b.close()


def case_changed_data(c: Corpus):
    from promptsearch import runner
    from promptsearch.task import load_task

    d = c.fresh("changed-data")
    t = c.task_copy(d)
    from promptsearch.store import RunStore

    run = d / "run"
    config = runner.make_config(task=str(t), model=c.model, strategies=["templates"])
    RunStore.create(run, {**config, "data": runner.data_hashes(load_task(str(t)))})
    rows = (t / "dev.jsonl").read_text().splitlines()
    first = json.loads(rows[0])
    first["output"] = "negative" if first["output"] == "positive" else "positive"
    if "label" in first:
        first["label"] = 1 - first["label"]
    (t / "dev.jsonl").write_text("\n".join([json.dumps(first)] + rows[1:]) + "\n")
    before = snapshot(run)
    return refused(c, c.cli("run", "--resume", run), (run,), before, expect="data changed")


def case_resume_flag(c: Corpus, *flag):
    d = c.fresh("resume-flag")
    run = c.run_dir(d)
    before = snapshot(run)
    return refused(c, c.cli("run", "--resume", run, *flag), (run,), before, expect=f"drop {flag[0]}")


def case_max_tokens(c: Corpus):
    d = c.fresh("max-tokens")
    proc = c.cli("run", "--task", c.task, "--model", c.model, "--max-tokens", "30000", "--out", d / "run", "--json", "--quiet")
    if proc.returncode:
        return False, proc.stderr.strip()[:150]
    used = json.loads(proc.stdout)["budget_used"]["tokens"]
    return used <= 30000, f"{used} tokens used of 30000"


def case_bad_logprob(c: Corpus, value: str):
    server = topk_server(topk_answer(value))
    try:
        return refused(c, c.cli("eval", "--model", server.url, "--scoring", "topk", "--task", c.task, "--limit", "2", "--quiet"),
                       expect="not a log-probability")
    finally:
        server.close()


def case_task_edit(c: Corpus, kind: str):
    d = c.fresh(f"task-{kind}")
    t = c.task_copy(d)
    if kind == "contradiction":
        with open(t / "dev.jsonl", "a") as f:
            f.write(json.dumps({"input": "x", "output": "positive", "label": 0}) + "\n")
    elif kind == "white-space":
        data = json.loads((t / "task.json").read_text())
        (t / "task.json").write_text(json.dumps({**data, "label_words": ["negative", "positive "]}))
    elif kind == "dangling":
        (t / "task.json").unlink()
        os.symlink(t / "gone.json", t / "task.json")
    elif kind == "loop":
        (t / "dev.jsonl").unlink()
        os.symlink(t / "dev.jsonl", t / "dev.jsonl")
    elif kind == "deep":
        with open(t / "dev.jsonl", "a") as f:
            f.write('{"input": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    elif kind in ("huge-label", "many-labels"):  # scored once per class: minutes a row before the cap
        data = json.loads((t / "task.json").read_text())
        words = ["negative", "x" * 20_000] if kind == "huge-label" else [f"w{i}" for i in range(5000)]
        (t / "task.json").write_text(json.dumps({**data, "label_words": words}))
    elif kind == "surrogate":
        with open(t / "dev.jsonl", "a") as f:
            f.write('{"input": "\\ud800", "output": "positive"}\n')
    proc = c.cli("run", "--task", t, "--model", c.model, "--out", d / "run", "--max-evals", "30")
    ok, detail = refused(c, proc)
    return ok and not (d / "run").exists(), detail


def case_label_words_flag(c: Corpus, words: str):
    return refused(c, c.cli("eval", "--task", c.task, "--model", c.model, "--label-words", words, "--limit", "1"),
                   expect="--label-words")


def case_out_into(c: Corpus, what: str):
    target = Path(c.model if what == "model" else c.task)
    before = snapshot(target)
    return refused(c, c.cli("run", "--task", c.task, "--model", c.model, "--out", target, "--max-evals", "30"), (target,),
                   before, expect="not a promptsearch run")


def case_bad_log_line(c: Corpus):
    d = c.fresh("bad-log-line")
    run = c.run_dir(d)
    good = {"candidate": {"id": "a", "prompt": "{input}", "strategy": "seed"}, "size": 2,
            "score": {"metric": "accuracy", "score": 0.5, "n": 2, "ci_low": 0.1, "ci_high": 0.9}, "results": {"k": [1, "p", None, [-1.0]]}}
    bad = [{**good, "candidate": {"id": "b", "prompt": "x {input}", "strategy": "seed"}, "results": {"k": 5}},
           {**good, "candidate": {"id": "c", "prompt": "y {input}"}},  # no strategy
           {**good, "candidate": {"id": "d", "prompt": "z {input}", "strategy": "seed"}, "score": {"score": 0.9}}]  # no CI
    (run / "candidates.jsonl").write_text("".join(json.dumps(r) + "\n" for r in bad) + json.dumps(good) + "\n")
    proc = c.cli("show", run)
    if proc.returncode or "Traceback" in proc.stderr:
        return False, proc.stderr.strip()[-150:]
    proc = c.cli("show", run, "--json")
    ok = proc.returncode == 0 and [r["id"] for r in json.loads(proc.stdout)["leaderboard"]] == ["a"]
    return ok, "malformed lines skipped, the rest shown" if ok else proc.stderr.strip()[-150:]


def case_config_number(c: Corpus, **edit):
    d = c.fresh("config-number")
    run = c.run_dir(d)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, **edit}))
    before = snapshot(run)
    return refused(c, c.cli("run", "--resume", run), (run,), before, expect="config.json: field")


def case_flag_number(c: Corpus, flag: str, value: str):
    d = c.fresh("flag-number")
    proc = c.cli("run", "--task", c.task, "--model", c.model, flag, value, "--out", d / "run")
    ok, detail = refused(c, proc, expect=flag)
    return ok and not (d / "run").exists(), detail


def case_server_type(c: Corpus, model: dict):
    server = topk_server(topk_answer(-1), model)
    try:
        return refused(c, c.cli("eval", "--model", server.url, "--scoring", "topk", "--task", c.task, "--limit", "1"),
                       expect="server ")
    finally:
        server.close()


def case_model_setting(c: Corpus, kind: str):
    d = c.fresh(f"model-{kind}")
    model = c.model
    args = []
    if kind == "device":
        args = ["--device", "tpu9"]
    elif kind == "chat":
        args = ["--chat"]
    else:
        model = shutil.copytree(c.model, d / "model")
        if kind == "config":
            cfg = json.loads((Path(model) / "config.json").read_text())
            (Path(model) / "config.json").write_text(json.dumps({**cfg, "hidden_size": "big"}))
        else:
            for f in Path(model).glob("*.safetensors"):
                f.write_bytes(b"junk" * 64)
    return refused(c, c.cli("eval", "--task", c.task, "--model", model, "--limit", "1", *args))


def case_summary_without_best(c: Corpus):
    d = c.fresh("summary")
    run = c.run_dir(d)
    (run / "candidates.jsonl").write_text(json.dumps({"candidate": {"id": "a", "prompt": "{input}"}, "size": 2,
                                                      "score": {"score": 0.5}, "results": {}}) + "\n")
    (run / "summary.json").write_text(json.dumps({"seed": {}}))
    return refused(c, c.cli("show", run), expect="field 'best'")



# ---- damaged and hostile files (the sweep of 2026-12-06: tests/test_hostile_files.py holds the matrix) --------
def finished_run(c: Corpus, d: Path, **summary_changes) -> Path:
    """A run as one that finished leaves it (config, one logged rung, a summary), written by hand: no search runs."""
    run = c.run_dir(d)
    rung = {"candidate": {"id": "a", "prompt": "{input}", "strategy": "seed"}, "size": 2,
            "score": {"metric": "accuracy", "score": 0.5, "n": 2, "ci_low": 0.1, "ci_high": 0.9},
            "results": {"k": [1, "positive", None, [-1.0, -2.0]]}, "evals_used": 2}
    (run / "candidates.jsonl").write_text(json.dumps(rung) + "\n")
    score = {"metric": "accuracy", "score": 0.5, "n": 2, "ci_low": 0.1, "ci_high": 0.9}
    best = {"id": "a", "prompt": "{input}", "strategy": "seed", "dev": score, "test": score}
    summary = {"task": "t", "metric": "accuracy", "best": best, "seed": best, "leaderboard": [{**best, "rank": 1}],
               "budget_used": {"candidates": 1, "evals": 2, "seconds": 1.0}, "improvement": {"dev": 0.0, "test": 0.0},
               "stop_reason": "candidates", "strategies_run": ["templates"], **summary_changes}
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def outward(d: Path, path: Path) -> Path:
    """``path`` made a symbolic link to a file outside its folder (holding its content, or a line); returns the file."""
    target = d / ("victim-" + path.name)
    target.write_bytes(path.read_bytes() if path.is_file() else b"keep me\n")
    path.unlink(missing_ok=True)
    os.symlink(target, path)
    return target


def case_bom(c: Corpus, what: str):
    d = c.fresh(f"bom-{what}")
    bom = b"\xef\xbb\xbf"
    if what == "task":
        t = c.task_copy(d)
        (t / "dev.jsonl").write_bytes(bom + (t / "dev.jsonl").read_bytes())
        proc = c.cli("tasks", "--task", t)
    else:
        (d / "a.json").write_bytes(bom + c.artifact().encode())
        proc = c.cli("prompts", "add", d / "a.json", "--name", "bom")
    ok = proc.returncode == 0 and "Traceback" not in proc.stderr
    return ok, "read as UTF-8 text" if ok else proc.stderr.strip()[-150:]


def case_duplicate_key(c: Corpus):
    d = c.fresh("duplicate-key")
    t = c.task_copy(d)
    with open(t / "dev.jsonl", "a") as f:
        f.write('{"input": "a fine film", "output": "negative", "output": "positive"}\n')
    before = snapshot(t)
    return refused(c, c.cli("run", "--task", t, "--model", c.model, "--out", d / "run"), (t,), before, expect="given twice")


def case_linked_run_file(c: Corpus, name: str):
    d = c.fresh(f"linked-{name}")
    run = c.run_dir(d)
    victim = outward(d, run / name)
    before = snapshot(victim)
    if name == "ratings.jsonl":
        (d / "r.jsonl").write_text(json.dumps({"prompt": "{input}", "input": "x", "rating": 4}) + "\n")
        proc = c.cli("rate", run, "--from-file", d / "r.jsonl")
    else:
        proc = c.cli("run", "--resume", run)
    return refused(c, proc, (victim,), before, expect="is a symbolic link")


def case_summary_field(c: Corpus, command: str, **changes):
    d = c.fresh(f"summary-{command}")
    run = finished_run(c, d, **changes)
    before = snapshot(run)
    args = ("report", run, "--out", d / "rep") if command == "report" else (command, run)
    ok, detail = refused(c, c.cli(*args), (run,), before, expect="summary.json: field")
    return ok and not (d / "rep").exists(), detail


def case_summary_link(c: Corpus):
    d = c.fresh("summary-dangling")
    run = finished_run(c, d)
    (run / "summary.json").unlink()
    os.symlink(d / "gone.json", run / "summary.json")
    return refused(c, c.cli("show", run), expect="summary.json")


def case_config_field(c: Corpus, command: str, **edit):
    d = c.fresh(f"config-{command}")
    run = finished_run(c, d)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, **edit}))
    before = snapshot(run)
    args = ("export", run, "-o", d / "a.json") if command == "export" else ("report", run, "--out", d / "rep")
    ok, detail = refused(c, c.cli(*args), (run,), before, expect="config.json: field")
    return ok and not (d / "a.json").exists() and not (d / "rep").exists(), detail


def case_refine_meta(c: Corpus):
    d = c.fresh("refine-meta")
    parent = c.run_dir(d)
    run = c.run_dir(d / "refine", feedback={"parent": str(parent), "weight": 0.5})
    (run / "refine.json").write_text(json.dumps({"parent": str(parent), "weight": 0.5, "ratings": {}, "edits": []}))
    before = snapshot(run)
    return refused(c, c.cli("refine", "--resume", run), (run,), before, expect="refine.json: field 'ratings'")


def case_import_jsonl(c: Corpus, content: bytes, expect: str):
    d = c.fresh("import-jsonl")
    (d / "t.jsonl").write_bytes(content)
    proc = c.cli("tasks", "import", d / "t.jsonl", "--out", d / "task")
    ok, detail = refused(c, proc, expect=expect)
    return ok and not (d / "task").exists(), detail


def case_foreign_sqlite(c: Corpus, which: str):
    d = c.fresh(f"foreign-sqlite-{which}")
    db_path = d / "other.db"
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE notes (x TEXT)")
    db.execute("INSERT INTO notes VALUES ('mine')")
    db.commit()
    db.close()
    before = snapshot(db_path)
    saved = c.env
    if which == "registry":
        c.env = {**saved, "PROMPTSEARCH_REGISTRY": str(db_path)}
        (d / "a.json").write_text(c.artifact())
        args = ("prompts", "add", d / "a.json", "--name", "p")
    else:
        (d / "cache").mkdir()
        os.replace(db_path, d / "cache" / "responses.sqlite")
        db_path = d / "cache" / "responses.sqlite"
        before = snapshot(db_path)
        c.env = {**saved, "PROMPTSEARCH_CACHE": str(d / "cache")}
        args = ("cache", "clear")
    try:
        return refused(c, c.cli(*args), (db_path,), before, expect="not ")
    finally:
        c.env = saved


CASES = [
    ("1 path traversal", "soft.file /etc/hostname", lambda c: case_soft_file(c, "/etc/hostname")),
    ("1 path traversal", "soft.file ../victim.txt", lambda c: case_soft_file(c, "../victim.txt")),
    ("1 path traversal", "task name ../../x", lambda c: case_task_name(c, "../../x")),
    ("1 path traversal", "task name /abs", lambda c: case_task_name(c, "/abs")),
    ("2 key to another host", "redirect to another host", case_redirect),
    ("2 key to another host", "eval --artifact with a recorded URL", lambda c: case_artifact_url(c, "eval", "--check")),
    ("2 key to another host", "predict with a recorded URL", lambda c: case_artifact_url(c, "predict", "a film")),
    ("2 key to another host", "resume with a recorded URL", case_resume_url),
    ("3 credentials in URLs", "user:password@", lambda c: case_credentials(c, "http://u:pa55word@127.0.0.1:9/v1")),
    ("3 credentials in URLs", "?key= in the URL", lambda c: case_credentials(c, "http://127.0.0.1:9/v1?key=pa55word")),
    ("4 integrity", "edited registry row", case_registry_edit),
    ("5 unbounded reads", "300 MB answer announced", case_huge_answer),
    ("6 Ray address from a file", "resume joins a recorded cluster", case_ray_address),
    ("7 cache per server", "two servers, one model id", case_cache_identity),
    ("8 resume", "dev labels changed", case_changed_data),
    ("8 resume", "--max-evals with --resume", lambda c: case_resume_flag(c, "--max-evals", "5")),
    ("8 resume", "--strategy with --resume", lambda c: case_resume_flag(c, "--strategy", "clarify")),
    ("8 resume", "--seed with --resume", lambda c: case_resume_flag(c, "--seed", "4")),
    ("9 max tokens", "--max-tokens 30000 kept", case_max_tokens),
    ("10 data checks", "NaN log-probability", lambda c: case_bad_logprob(c, "NaN")),
    ("10 data checks", "output contradicts label", lambda c: case_task_edit(c, "contradiction")),
    ("10 data checks", "label word with white space", lambda c: case_task_edit(c, "white-space")),
    ("10 data checks", "a label word of 20,000 characters", lambda c: case_task_edit(c, "huge-label")),
    ("10 data checks", "5,000 label words", lambda c: case_task_edit(c, "many-labels")),
    ("10 data checks", "--label-words good,good", lambda c: case_label_words_flag(c, "good,good")),
    ("10 data checks", "--label-words ,", lambda c: case_label_words_flag(c, ",")),
    ("10 data checks", "dangling task.json", lambda c: case_task_edit(c, "dangling")),
    ("10 data checks", "dev.jsonl symlink loop", lambda c: case_task_edit(c, "loop")),
    ("11 data loss", "--out into a model folder", lambda c: case_out_into(c, "model")),
    ("11 data loss", "--out into a task folder", lambda c: case_out_into(c, "task")),
    ("12 parser", "100k-deep JSON in a row", lambda c: case_task_edit(c, "deep")),
    ("12 parser", "lone surrogate in a row", lambda c: case_task_edit(c, "surrogate")),
    ("12 parser", "malformed results in the log", case_bad_log_line),
    ("13 ranges", "racing.eta 1", lambda c: case_config_number(c, racing={"min_examples": 16, "eta": 1})),
    ("13 ranges", "batch_size 0", lambda c: case_config_number(c, batch_size=0)),
    ("13 ranges", "max_evals -5", lambda c: case_config_number(c, budget={"max_evals": -5})),
    ("13 ranges", "max_evals NaN", lambda c: case_config_number(c, budget={"max_evals": float("nan")})),
    ("13 ranges", "proposals_per_round 0", lambda c: case_config_number(c, proposals_per_round=0)),
    ("13 ranges", "--max-seconds nan", lambda c: case_flag_number(c, "--max-seconds", "nan")),
    ("13 ranges", "--timeout inf", lambda c: case_flag_number(c, "--timeout", "inf")),
    ("14 server types", "context_length lots", lambda c: case_server_type(c, {"id": "m", "context_length": "lots"})),
    ("14 server types", "model id a list", lambda c: case_server_type(c, {"id": ["m"]})),
    ("14 server types", "log-probability abc", lambda c: case_bad_logprob(c, '"abc"')),
    ("15 settings", "--device tpu9", lambda c: case_model_setting(c, "device")),
    ("15 settings", "--chat without a template", lambda c: case_model_setting(c, "chat")),
    ("15 settings", "hidden_size big", lambda c: case_model_setting(c, "config")),
    ("15 settings", "junk safetensors", lambda c: case_model_setting(c, "weights")),
    ("15 settings", "show: summary without best", case_summary_without_best),
    ("15 settings", "damaged registry page", case_registry_damaged),
    ("12 parser", "BOM-prefixed dev.jsonl", lambda c: case_bom(c, "task")),
    ("12 parser", "BOM-prefixed artifact", lambda c: case_bom(c, "artifact")),
    ("12 parser", "a row with 'output' twice", case_duplicate_key),
    ("12 parser", "tasks import: JSONL with a null line", lambda c: case_import_jsonl(c, b'{"input": "a", "output": "b"}\nnull\n', "JSON object")),
    ("12 parser", "tasks import: JSONL 100k deep", lambda c: case_import_jsonl(c, b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested too deeply")),
    ("12 parser", "tasks import: an input that is a list", lambda c: case_import_jsonl(c, b'{"input": ["a", "b"], "output": "c"}\n', "holds a list, not text")),
    ("12 parser", "tasks import: an answer that is a mapping", lambda c: case_import_jsonl(c, b'{"input": "a", "output": {"x": 1}}\n', "holds a mapping")),
    ("12 parser", "summary.json a dangling link: show", case_summary_link),
    ("11 data loss", "ratings.jsonl linked outside: rate", lambda c: case_linked_run_file(c, "ratings.jsonl")),
    ("11 data loss", "lock linked outside: resume", lambda c: case_linked_run_file(c, "lock")),
    ("11 data loss", "candidates.jsonl linked outside: resume", lambda c: case_linked_run_file(c, "candidates.jsonl")),
    ("11 data loss", "registry is another program's SQLite", lambda c: case_foreign_sqlite(c, "registry")),
    ("11 data loss", "cache is another program's SQLite", lambda c: case_foreign_sqlite(c, "cache")),
    ("15 settings", "summary leaderboard a string: show", lambda c: case_summary_field(c, "show", leaderboard="x")),
    ("15 settings", "summary budget_used {}: report", lambda c: case_summary_field(c, "report", budget_used={})),
    ("15 settings", "summary improvement null: show", lambda c: case_summary_field(c, "show", improvement=None)),
    ("15 settings", "config task 5: export", lambda c: case_config_field(c, "export", task=5)),
    ("15 settings", "config strategies 1.5: report", lambda c: case_config_field(c, "report", strategies=1.5)),
    ("15 settings", "refine.json ratings {}: refine --resume", case_refine_meta),
]


# ---- hostile values (tests/test_hostile_values.py has the whole matrix): strategy options, config.json's options,
#      each server dialect's fields. One block, so that a merge with other additions stays easy.
def case_run_value(c: Corpus, *args, expect: str = ""):
    d = c.fresh("run-value")
    proc = c.cli("run", "--task", c.task, "--model", c.model, "--out", d / "run", "--max-evals", "40", *args)
    ok, detail = refused(c, proc, expect=expect)
    return ok and not (d / "run" / "config.json").exists(), detail


def case_server_answer(c: Corpus, scoring: str, path: str, body: str):
    server = Server(lambda p: (200, {}, listing()) if p.endswith("/models") else
                    (200, {}, body.encode()) if p.endswith(path) else (404, {}, b"{}"))
    try:
        return refused(c, c.cli("eval", "--model", server.url, "--scoring", scoring, "--task", c.task, "--limit", "1",
                                "--quiet", "--timeout", "2"), expect="server ")
    finally:
        server.close()


def case_retry_after(c: Corpus, value: str):
    server = Server(lambda p: (200, {}, listing()) if p.endswith("/models") else
                    (429, {"Retry-After": value}, b'{"error": {"message": "slow down"}}'))
    started = time.monotonic()
    try:
        ok, detail = refused(c, c.cli("eval", "--model", server.url, "--scoring", "topk", "--task", c.task, "--limit", "1",
                                      "--quiet", "--timeout", "2"), expect="HTTP 429")
    finally:
        server.close()
    return ok and time.monotonic() - started < 60, detail


CASES += [
    ("13 ranges", "-o clarify.bases=NaN", lambda c: case_run_value(c, "-o", "clarify.bases=NaN", expect="clarify.bases")),
    ("13 ranges", "-o templates.top=-1", lambda c: case_run_value(c, "-o", "templates.top=-1", expect="templates.top")),
    ("13 ranges", "-o clarify.rounds=1e30", lambda c: case_run_value(c, "-o", f"clarify.rounds={10**30}",
                                                                     expect="clarify.rounds")),
    ("13 ranges", "-o evolution.population=2.5", lambda c: case_run_value(
        c, "--strategy", "evolution", "-o", "evolution.population=2.5", expect="evolution.population")),
    ("13 ranges", "-o autoprompt.iterations=Infinity", lambda c: case_run_value(
        c, "--strategy", "autoprompt", "-o", "autoprompt.iterations=Infinity", expect="autoprompt.iterations")),
    ("13 ranges", "-o templates.calibrations=[x]", lambda c: case_run_value(
        c, "-o", 'templates.calibrations=["x"]', expect="calibration")),
    ("13 ranges", "-o evolution.operators=[]", lambda c: case_run_value(
        c, "--strategy", "evolution", "-o", "evolution.operators=[]", expect="operators")),
    ("13 ranges", "-o given twice", lambda c: case_run_value(c, "-o", "clarify.bases=1", "-o", "clarify.bases=2",
                                                              expect="given twice")),
    ("13 ranges", "-o clarify.nope=1", lambda c: case_run_value(c, "-o", "clarify.nope=1", expect="no option 'nope'")),
    ("13 ranges", "config.json options NaN", lambda c: case_config_number(c, options={"templates": {"top": float("nan")}})),
    ("13 ranges", "config.json options not an object", lambda c: case_config_number(c, options={"templates": 5})),
    ("14 server types", "echo top_logprobs null", lambda c: case_server_answer(
        c, "echo", "/completions", '{"choices": [{"text": "x", "logprobs": {"tokens": [" a", " b"], '
                                   '"token_logprobs": [null, -1], "top_logprobs": null}}]}')),
    ("14 server types", "vllm prompt_logprobs a string", lambda c: case_server_answer(
        c, "vllm", "/completions", '{"choices": [{"text": "x", "prompt_logprobs": "abc"}]}')),
    ("14 server types", "sglang log-probability abc", lambda c: case_server_answer(
        c, "sglang", "/generate", '{"meta_info": {"input_token_logprobs": [[null, 1, " a"], ["abc", 2, " b"]]}}')),
    ("14 server types", "chat token a number", lambda c: case_server_answer(
        c, "topk-chat", "/chat/completions", '{"choices": [{"logprobs": {"content": [{"token": "x", "logprob": -1, '
                                             '"top_logprobs": [{"token": 1, "logprob": -1}]}]}}]}')),
    ("14 server types", "Retry-After 1e9", lambda c: case_retry_after(c, "1e9")),
    ("14 server types", "Retry-After abc", lambda c: case_retry_after(c, "abc")),
]


# ---- what a reader is handed: a device instead of a file, a stream past the cap, an artifact's verbalizer of letters
def case_device_input(c: Corpus):
    d = c.fresh("device-input")
    (d / "a.json").write_text(c.artifact())
    return refused(c, c.cli("predict", "--artifact", d / "a.json", "--input-file", "/dev/zero"), expect="not a file")


def case_stdin_past_cap(c: Corpus):
    d = c.fresh("stdin-cap")
    (d / "a.json").write_text(c.artifact())
    proc = c.cli("predict", "--artifact", d / "a.json", "--input-file", "-", stdin='"x"\n' * 600_000,
                 env={"PROMPTSEARCH_MAX_FILE_MB": "1"})
    return refused(c, proc, expect="larger than 1 MB")


def case_artifact_verbalizer(c: Corpus):
    d = c.fresh("artifact-verbalizer")
    (d / "a.json").write_text(c.artifact(options={"calibrate": "batch", "verbalizer": "abc"},
                                         demo_pool=[{"input": "a", "output": "negative"}]))
    return refused(c, c.cli("eval", "--artifact", d / "a.json", "--task", c.task), expect="verbalizer")


def case_argument_not_utf8(c: Corpus):
    d = c.fresh("argument-bytes")
    (d / "a.json").write_text(c.artifact())
    return refused(c, c.cli("predict", "--artifact", d / "a.json", "fine", b"caf\xe9"), expect="input argument 2")


CASES += [
    ("16 reads", "predict argument not UTF-8", case_argument_not_utf8),
    ("16 reads", "predict --input-file /dev/zero", case_device_input),
    ("16 reads", "predict stdin past the cap", case_stdin_past_cap),
    ("15 settings", "artifact verbalizer a string: eval", case_artifact_verbalizer),
]


def run_corpus(work: Path, model: str, task: str, env: dict) -> list[dict]:
    corpus = Corpus(work, model, task, env)
    rows = []
    for cls, name, fn in CASES:
        started = time.monotonic()
        try:
            held, detail = fn(corpus)
        except Exception as e:  # noqa: BLE001 -- a case that breaks is a failed case, reported, not a stopped corpus
            held, detail = False, f"case raised {type(e).__name__}: {e}"
        rows.append({"class": cls, "case": name, "held": bool(held), "detail": detail,
                     "seconds": round(time.monotonic() - started, 1)})
        print(f"{'held  ' if held else 'FAILED'} {cls:<26} {name:<38} {detail[:90]}", file=sys.stderr, flush=True)
    return rows
