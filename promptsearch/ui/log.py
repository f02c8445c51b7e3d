"""Reading a run's ``candidates.jsonl`` for the web app: each line's record at once, its per-example results only
when a page asks for them.

Most of a log's bytes are per-example results (a 5,000-candidate run: 28 MiB), and parsing them all took 1.6 s
on a busy machine; the run page needs none of them. The search writes ``"results"`` as the last field of each
line, so a line is cut there: the head is parsed now, the results kept as bytes and parsed per candidate on
demand. What is kept and skipped matches ``RunStore.read`` (tests/test_ui.py checks it on real and damaged logs):
a torn last line is skipped, a corrupt or malformed line elsewhere is reported and skipped; a line that does not
cut cleanly is parsed whole.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..files import present, read_bytes

log = logging.getLogger(__name__)

MARK = b', "results": '


def read_log(path: Path) -> list[dict]:
    """The log's rungs; each record's ``results`` is replaced by ``_raw``, the results' JSON bytes (or, for a
    line parsed whole, ``_parsed``). Read them with ``results_of``."""
    if not present(path):
        return []
    data = read_bytes(path)
    lines = data.split(b"\n")
    last = max((i for i, line in enumerate(lines, 1) if line.strip()), default=0)
    records = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        rec = _split(line) if line.endswith(b"}") else None
        if rec is None:
            rec = _whole(line)
        if rec is None:
            if lineno < last:  # the last line may be torn by a kill: skipped quietly
                log.warning("%s:%d: corrupt line skipped", path, lineno)
            continue
        problem = _problem(rec)
        if problem:
            log.warning("%s:%d: %s; line skipped", path, lineno, problem)
            continue
        records.append(rec)
    return records


def _split(line: bytes) -> dict | None:
    cut = line.find(MARK)  # the first: the fields before it are short, and a string holds no bare quote
    raw = line[cut + len(MARK):-1] if cut > 0 else b""
    if not raw.startswith(b"{") or not raw.endswith(b"}"):
        return None
    try:
        rec = json.loads(line[:cut] + b"}")
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: JSON nested past the limit
        return None
    if not isinstance(rec, dict) or "results" in rec:
        return None
    rec["_raw"] = raw
    return rec


def _whole(line: bytes) -> dict | None:
    try:
        rec = json.loads(line)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: JSON nested past the limit
        return None
    if isinstance(rec, dict) and isinstance(rec.get("results"), dict):
        rec["_parsed"] = rec.pop("results")
    return rec


def _problem(rec) -> str | None:
    """Why a line is not a scored rung (RunStore's check, plus the evaluation count the pages read)."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    cand = rec.get("candidate")
    if not isinstance(cand, dict) or not isinstance(cand.get("id"), str) or not isinstance(cand.get("prompt"), str):
        return "field 'candidate' must be an object with an 'id' and a 'prompt'"
    if isinstance(rec.get("size"), bool) or not isinstance(rec.get("size"), int):
        return "field 'size' must be an integer"
    score = rec.get("score")
    if not isinstance(score, dict) or not isinstance(score.get("score"), (int, float)):
        return "field 'score' must be an object with a number 'score'"
    if "_raw" not in rec and "_parsed" not in rec:
        return "field 'results' must be an object"
    if isinstance(rec.get("evals_used"), bool) or not isinstance(rec.get("evals_used"), int):
        return "field 'evals_used' must be an integer"
    return None


def results_of(rec: dict) -> dict[str, list]:
    """A record's per-example results (example key -> [score, prediction, logprob, label scores]), parsed once."""
    if "_parsed" not in rec:
        try:
            parsed = json.loads(rec["_raw"])
        except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: JSON nested past the limit
            parsed = None
        rec["_parsed"] = parsed if isinstance(parsed, dict) else {}
        rec.pop("_raw", None)
    return rec["_parsed"]
