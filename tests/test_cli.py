"""CLI tests on the tiny random model saved as a local model directory (``--model PATH``)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from promptsearch.cli import main


def invoke(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def test_eval_json_reports_score_n_and_ci(tiny_dir):
    r = invoke("eval", "--model", tiny_dir, "--prompt", "Review: {input}\\nSentiment:", "--limit", "20", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["metric"] == "accuracy" and out["n"] == 20
    assert out["ci_low"] <= out["score"] <= out["ci_high"]
    assert out["prompt"] == "Review: {input}\nSentiment:"


def test_eval_prompt_file_and_label_words(tiny_dir, tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("Text: {input}\nLabel:\n")
    r = invoke("eval", "--model", tiny_dir, "--prompt-file", str(f), "--label-words", "bad,good", "--split", "test", "--limit", "5", "--json")
    out = json.loads(r.stdout)
    assert out["label_words"] == ["bad", "good"] and out["split"] == "test" and out["n"] == 5


@pytest.mark.parametrize("args,message", [
    (["eval", "--prompt", "no slot"], "no {input} slot"),
    (["eval", "--prompt", "{input} }"], "unbalanced"),
    (["eval", "--task", "/does/not/exist"], "neither a bundled task"),
    (["eval", "--model", "/does/not/exist"], "does not exist"),
    (["eval", "--prompt-file", "/does/not/exist.txt"], "file not found"),
    (["show", "/does/not/exist"], "not a run directory"),
    (["run", "--strategy", "nope", "--max-evals", "10"], "unknown strategy"),
    (["run", "-o", "templates.bogus=1", "--strategy", "templates"], "has no option"),
    (["run", "-o", "clarify.demo_ladder=maybe", "--strategy", "clarify"], "takes true, false or auto"),
])
def test_bad_input_is_one_line_no_traceback(args, message, tmp_path):
    r = subprocess.run([sys.executable, "-m", "promptsearch", *args, "--out", str(tmp_path / "r")] if args[0] == "run"
                       else [sys.executable, "-m", "promptsearch", *args], capture_output=True, text=True, timeout=300, env=ONE_THREAD)
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
    assert "Traceback" not in r.stderr


def test_model_dir_without_tokenizer(tmp_path, tiny):
    tiny.model.save_pretrained(tmp_path)
    r = invoke("eval", "--model", str(tmp_path), "--limit", "2")
    assert r.exit_code == 2 and "holds no tokenizer" in r.output


def test_run_show_and_json(tiny_dir, small_task_dir, tmp_path):
    out = tmp_path / "run"
    r = invoke("run", "--model", tiny_dir, "--task", small_task_dir, "--strategy", "templates", "--max-evals", "300",
               "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    for key in ("run_dir", "best", "seed", "leaderboard", "budget_used"):
        assert key in s
    # a 30-row dev split is small: a quarter of the labelled rows is held out (selection.py)
    assert s["seed"]["dev"]["n"] < 30 and s["best"]["test"]["n"] == 30 and s["seed"]["test"]["n"] == 30
    assert s["estimate"]["which"] == "holdout" and s["best"]["holdout"]["n"] == s["estimate"]["n"] > 0
    assert s["budget_used"]["evals"] >= 300
    # the winner is calibrated after the search (final_calibration), so its text comes after a header naming that
    lines = (out / "best_prompt.txt").read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if line.startswith("# ---"))
    assert any("calibration (batch)" in line for line in lines[:cut])
    assert "\n".join(lines[cut + 1:]).strip() == s["best"]["prompt"].strip()
    shown = invoke("show", str(out), "--json")
    assert json.loads(shown.stdout)["leaderboard"][0]["id"] == s["leaderboard"][0]["id"]
    text = invoke("show", str(out), "--lineage").output
    assert "best prompt:" in text and "lineage" in text


def _cli(*args):
    return [sys.executable, "-m", "promptsearch", *args]


ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # see conftest._threads


def kill_halfway(command, run_dir, n_lines):
    """Start a run, SIGKILL it once half of the uninterrupted run's ``n_lines`` log lines are written;
    returns its log, checked to be cut short."""
    log = run_dir / "candidates.jsonl"
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ONE_THREAD)
    deadline = time.time() + 300
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < n_lines // 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(log.read_text().splitlines()) < n_lines  # it really was cut short
    return log


def test_killed_run_resumes_to_the_same_result(tiny_dir, small_task_dir, tmp_path):
    args = ["--model", tiny_dir, "--task", small_task_dir, "--strategy", "templates", "--strategy", "clarify",
            "--max-evals", "1000", "--seed", "7", "--quiet"]
    whole = subprocess.run(_cli("run", *args, "--out", str(tmp_path / "whole"), "--json"), capture_output=True, text=True, timeout=600, env=ONE_THREAD)
    assert whole.returncode == 0, whole.stderr
    expected = json.loads(whole.stdout)
    n_lines = len((tmp_path / "whole" / "candidates.jsonl").read_text().splitlines())

    log = kill_halfway(_cli("run", *args, "--out", str(tmp_path / "cut")), tmp_path / "cut", n_lines)
    resumed = subprocess.run(_cli("run", "--resume", str(tmp_path / "cut"), "--json"), capture_output=True, text=True, timeout=600, env=ONE_THREAD)
    assert resumed.returncode == 0, resumed.stderr
    got = json.loads(resumed.stdout)
    assert got["best"] == expected["best"]
    assert got["leaderboard"] == expected["leaderboard"]
    assert len(log.read_text().splitlines()) == n_lines  # nothing scored twice, nothing lost


def test_tasks_and_strategies_list():
    tasks = json.loads(invoke("tasks", "--json").stdout)["tasks"]
    assert tasks[0]["name"] == "sst2-mini" and tasks[0]["test"] == 200
    names = {s["name"] for s in json.loads(invoke("strategies", "--json").stdout)["strategies"]}
    assert {"templates", "clarify"} <= names


def test_killed_refine_resumes_to_the_same_result(tiny_dir, small_task_dir, tmp_path):
    """refine is a run of the one runner: killed mid-way and resumed, it ends as an uninterrupted one."""
    parent = tmp_path / "parent"
    made = subprocess.run(_cli("run", "--model", tiny_dir, "--task", small_task_dir, "--strategy", "templates",
                               "--max-evals", "300", "--seed", "3", "--quiet", "--out", str(parent)),
                          capture_output=True, text=True, timeout=600, env=ONE_THREAD)
    assert made.returncode == 0, made.stderr
    todo = tmp_path / "todo.jsonl"
    assert invoke("rate", str(parent), "--export", str(todo)).exit_code == 0
    rows = [json.loads(line) for line in todo.read_text().splitlines()]
    for i, r in enumerate(rows):
        r["rating"], r["comment"] = (1, "too long") if i % 2 else (5, "")
    todo.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert invoke("rate", str(parent), "--from-file", str(todo)).exit_code == 0

    args = ["refine", str(parent), "--strategy", "clarify", "--max-evals", "400", "--quiet"]
    whole = subprocess.run(_cli(*args, "--out", str(tmp_path / "whole"), "--json"), capture_output=True, text=True,
                           timeout=600, env=ONE_THREAD)
    assert whole.returncode == 0, whole.stderr
    expected = json.loads(whole.stdout)
    n_lines = len((tmp_path / "whole" / "candidates.jsonl").read_text().splitlines())

    log = kill_halfway(_cli(*args, "--out", str(tmp_path / "cut")), tmp_path / "cut", n_lines)
    resumed = subprocess.run(_cli("refine", "--resume", str(tmp_path / "cut"), "--json"), capture_output=True,
                             text=True, timeout=600, env=ONE_THREAD)
    assert resumed.returncode == 0, resumed.stderr
    got = json.loads(resumed.stdout)
    assert got["best"] == expected["best"] and got["leaderboard"] == expected["leaderboard"]
    assert [m["new_rank"] for m in got["refine"]["moves"]] == [m["new_rank"] for m in expected["refine"]["moves"]]
    assert len(log.read_text().splitlines()) == n_lines  # nothing scored twice, nothing lost
