"""`promptsearch rate` in a real terminal: tmux runs it, send-keys types, capture-pane reads the screen."""

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .test_feedback import build_run, make_gen_task

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install -y tmux)")


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def _wait_for(session: str, text: str, count: int = 1, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", session)
        if screen.count(text) >= count:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} x{count} never appeared; screen:\n{screen}")


def test_rate_three_outputs_in_tmux(tiny, tmp_path):
    run = build_run(tmp_path / "run", str(make_gen_task(tmp_path / "task")), tiny)
    session = f"ps-rate-{uuid.uuid4().hex[:8]}"
    cli = f"{sys.executable} -c 'from promptsearch.cli import main; main()'"
    env = f"cd {tmp_path} && HF_HUB_OFFLINE=1 PYTHONPATH={Path(__file__).resolve().parents[1]}"
    command = f"{env} {cli} rate run --top 1 --inputs 3; echo RATE-EXITED-$?; sleep 30"
    _tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "50", command)
    try:
        typed = [("4", ""), ("2", "too long"), ("5", "great")]
        for i, (rating, comment) in enumerate(typed, 1):
            _wait_for(session, "rating 1-5 (s skip, q quit):", count=i)
            _tmux("send-keys", "-t", session, rating, "Enter")
            _wait_for(session, "comment (Enter for none):", count=i)
            _tmux("send-keys", "-t", session, "-l", comment)
            _tmux("send-keys", "-t", session, "Enter")
        screen = _wait_for(session, "RATE-EXITED-0")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False, capture_output=True)
    assert "3 rating(s) saved" in screen and "[3/3] prompt #1" in screen
    recs = [json.loads(line) for line in (run / "ratings.jsonl").read_text().splitlines()]
    assert [(r["rating"], r["comment"]) for r in recs] == [(4, ""), (2, "too long"), (5, "great")]
    assert len({r["input"] for r in recs}) == 3 and all(f"output:   {r['output']}" in screen for r in recs)
