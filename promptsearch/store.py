"""The run store: one directory per run, append-only JSONL logs flushed as they are written.

    config.json       the resolved configuration (what --resume reads back)
    candidates.jsonl  one line per scored rung of a candidate, with per-example results
    summary.json      written at the end: leaderboard, best and seed prompts with dev/test scores
    best_prompt.txt   the winning prompt's text (with a header saying what it lacks, if it is not all of it)
    ratings.jsonl     human ratings (promptsearch rate)
    lock              held (flock) by the one process writing the run; holds its pid for the message
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import re
import time
from pathlib import Path

from .errors import PromptSearchError, RunInterrupted
from .files import link_refused, open_append, parse_json, present, read_bytes, read_json, write_replacing

log = logging.getLogger(__name__)


def default_run_dir(task_name: str) -> Path:
    """runs/NAME-TIME, always inside runs/: a task's name comes from a file, so anything in it that is not a
    letter, digit, '.', '_', '+' or '-' becomes '-' and it cannot start with a dot."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9._+-]", "-", task_name).lstrip(".") or "task"
    return Path("runs") / f"{safe[:100]}-{stamp}"


class RunStore:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)

    @classmethod
    def create(cls, run_dir: str | Path, config: dict) -> RunStore:
        store = cls(run_dir)
        if present(store.dir / "candidates.jsonl"):
            raise PromptSearchError(f"{store.dir} already holds a run; resume it or choose another run directory")
        store._refuse_foreign_directory()
        try:
            store.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PromptSearchError(f"cannot write {store.dir}: {e.strerror or e}") from None
        with store.locked():  # a process writing this directory is refused before config.json changes
            try:
                store.write_json("config.json", config)
            except RunInterrupted as e:  # nothing to resume yet
                raise PromptSearchError(str(e)) from None
        return store

    def _refuse_foreign_directory(self) -> None:
        """A run writes only into a new or empty directory, or one a run of this tool set up and never scored in
        (a killed set-up, rewritten). Anything else -- a model folder, a task folder -- is refused, as writing
        there would overwrite or append to someone's files."""
        if not self.dir.exists() and not self.dir.is_symlink():
            return
        if not self.dir.is_dir():
            raise PromptSearchError(f"{self.dir} exists and is not a directory; choose a new run directory")
        try:
            entries = [p.name for p in self.dir.iterdir()]
        except OSError as e:
            raise PromptSearchError(f"cannot read {self.dir}: {e.strerror or e}") from None
        # ps.search saves a task built in memory into RUN_DIR/task before the run starts (api.py): nothing else
        # is there, so the run's files overwrite nothing
        api_task = entries == ["task"] and (self.dir / "task" / "task.json").is_file()
        if entries and not api_task and not self._is_run_setup():
            raise PromptSearchError(f"{self.dir} is not empty and is not a promptsearch run ({len(entries)} entries, such as "
                                    f"{min(entries)!r}); choose a new or empty run directory")

    def _is_run_setup(self) -> bool:
        if (self.dir / "lock").is_file() and (self.dir / "config.json").is_file():
            return True  # a run's set-up in progress (another process may hold it: locked() says so)
        try:
            config = read_json(self.dir / "config.json")
        except PromptSearchError:
            return False
        return all(k in config for k in ("task", "strategies", "seed", "budget"))

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        store = cls(run_dir)
        if not present(store.dir / "config.json"):
            raise PromptSearchError(f"{run_dir} is not a run directory (no config.json)")
        return store

    def repair(self, name: str = "candidates.jsonl") -> None:
        """Cut a torn last line left by a kill, so the next append starts on a line of its own."""
        path = self.dir / name
        if present(path):
            data = read_bytes(path)
            if data and not data.endswith(b"\n"):
                with self._writing(path):
                    fd = open_append(path)
                    try:
                        os.ftruncate(fd, data.rfind(b"\n") + 1)
                    finally:
                        os.close(fd)

    @contextlib.contextmanager
    def _writing(self, path: Path):
        """A failed write (disk full, read-only) stops the run with one line; what is logged stays."""
        try:
            yield
        except OSError as e:
            raise RunInterrupted(link_refused(path, e)) from None

    @contextlib.contextmanager
    def locked(self):
        """Hold the run for this process: a second writer is refused with the holder's pid. flock is
        released by the kernel when the holder dies, so a killed run never leaves the directory stuck.
        Re-entrant within one process (refine creates the run, then runs it)."""
        key = os.path.realpath(self.dir)
        if key in _HELD:
            _HELD[key][1] += 1
        else:
            self._refuse_links()
            _HELD[key] = [_take_lock(self.dir / "lock"), 1]
        try:
            yield self
        finally:
            _HELD[key][1] -= 1
            if not _HELD[key][1]:
                os.close(_HELD.pop(key)[0])  # closing the descriptor releases the lock

    def _refuse_links(self) -> None:
        """A run about to be written holds no symbolic links among its files: an append, a truncation or a rewrite
        must land in this folder, never in a file elsewhere a link names. Checked before anything is scored, so a
        resume is refused at once rather than at its first logged line."""
        try:
            links = sorted(p.name for p in self.dir.iterdir() if p.is_symlink()) if self.dir.is_dir() else []
        except OSError as e:
            raise PromptSearchError(f"cannot read {self.dir}: {e.strerror or e}") from None
        if links:
            raise PromptSearchError(f"{self.dir / links[0]} is a symbolic link; a run's files must be plain files in "
                                    "its folder (copy the file in place of the link)")

    @property
    def config(self) -> dict:
        return self.read_json("config.json")

    @property
    def summary(self) -> dict | None:
        return self.read_json("summary.json") if present(self.dir / "summary.json") else None

    def checked_summary(self) -> dict | None:
        """The finished run's summary with the fields a report of it reads checked (a hand-edited or foreign file
        is one line, not a KeyError deep in a report); None for a run that has not finished."""
        summary, where = self.summary, self.dir / "summary.json"
        if summary is None:
            return None
        for key in ("best", "seed"):
            part = summary.get(key)
            if not isinstance(part, dict) or not isinstance(part.get("prompt"), str):
                raise PromptSearchError(f"{where}: field {key!r} must be an object with a 'prompt'; the file is damaged "
                                        "or not a promptsearch summary")
            for split in ("dev", "test"):
                if not isinstance(part.get(split), dict) or not isinstance(part[split].get("score"), (int, float)):
                    raise PromptSearchError(f"{where}: field '{key}.{split}' must be a score object")
        used = summary.get("budget_used")
        if not isinstance(used, dict) or not all(_number(used.get(k)) for k in ("candidates", "evals", "seconds")):
            raise PromptSearchError(f"{where}: field 'budget_used' must be an object with numbers 'candidates', 'evals' "
                                    "and 'seconds'")
        gain = summary.get("improvement", {"dev": 0, "test": 0})  # absent in multi-task summaries
        if not isinstance(gain, dict) or not all(_number(gain.get(k)) for k in ("dev", "test")):
            raise PromptSearchError(f"{where}: field 'improvement' must be an object with numbers 'dev' and 'test'")
        for key, (kinds, what) in SUMMARY_SHAPES.items():
            if summary.get(key) is not None and not isinstance(summary[key], kinds):
                raise PromptSearchError(f"{where}: field {key!r} must be {what}")
        for key, name in ROW_NAMES.items():
            for i, row in enumerate(summary.get(key) or ()):
                if not isinstance(row, dict) or not isinstance(row.get(name), str):
                    raise PromptSearchError(f"{where}: field {key!r} entry {i + 1} must be an object with a {name}")
        if not all(isinstance(n, str) for n in summary.get("strategies_run") or ()):
            raise PromptSearchError(f"{where}: field 'strategies_run' must list strategy names")
        if not all(isinstance(n, str) for n in summary.get("final_notes") or ()):
            raise PromptSearchError(f"{where}: field 'final_notes' must list notes (text)")
        for key in ("estimate", "paired_test", "paired_holdout"):
            part = summary.get(key)
            if part is not None and not all(isinstance(v, (str, int, float, bool, type(None))) for v in part.values()):
                raise PromptSearchError(f"{where}: field {key!r} must hold plain values")
        if summary.get("estimate") is not None and not _number(summary["estimate"].get("score")):
            raise PromptSearchError(f"{where}: field 'estimate' must have a number 'score'")
        if summary.get("multitask") and not isinstance(summary.get("tasks"), list):
            raise PromptSearchError(f"{where}: field 'tasks' must list the tasks of a multi-task run")
        return summary

    def append(self, name: str, record: dict) -> None:
        """Append one JSON line and push it to disk, so a kill loses at most the line being written."""
        data = _utf8(json.dumps(record, ensure_ascii=False) + "\n", self.dir / name)  # before the file is opened
        with self._writing(self.dir / name), os.fdopen(open_append(self.dir / name), "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def append_raw(self, name: str, data: bytes) -> None:
        with self._writing(self.dir / name), os.fdopen(open_append(self.dir / name), "ab") as f:
            f.write(data)

    def read(self, name: str) -> list[dict]:
        """All complete records; a torn last line (the process was killed mid-write) is skipped,
        a corrupt line elsewhere (not UTF-8, not JSON, or not a record of this log) is reported and
        skipped, so nothing else is lost."""
        path = self.dir / name
        if not present(path):  # a dangling or looping link is there: reading it says so in one line
            return []
        records = []
        lines = read_bytes(path).splitlines()
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = parse_json(line.decode("utf-8"), f"{path}:{lineno}")
            except (UnicodeDecodeError, PromptSearchError):
                if lineno < len(lines):
                    log.warning("%s:%d: corrupt line skipped", path, lineno)
                continue
            problem = RECORD_CHECKS[name](rec) if name in RECORD_CHECKS else None
            if problem:
                log.warning("%s:%d: %s; line skipped", path, lineno, problem)
                continue
            records.append(rec)
        return records

    def write_summary(self, summary: dict) -> None:
        self.write_json("summary.json", summary)
        best = summary.get("best") or {}
        with self._writing(self.dir / "best_prompt.txt"):
            # never drops a scoring option silently: a header says what the text alone lacks (plain.py)
            from .plain import best_prompt_text

            write_replacing(self.dir / "best_prompt.txt", best_prompt_text(best).encode("utf-8"))

    def leaderboard(self) -> list[dict]:
        """The leaderboard of a run that may never have finished: best-known score of each candidate."""
        rows = best_records(self.read("candidates.jsonl"))
        return [dict(rank=i + 1, **rec["candidate"], dev=rec["score"], tie=rec.get("tie")) for i, rec in enumerate(rows)]

    def lineage(self, candidate_id: str) -> list[dict]:
        """The chain of ancestors of a candidate (itself first), following first parents; ``mates``
        holds the prompts of any further parents (the other side of a crossover)."""
        known = {rec["candidate"]["id"]: rec["candidate"] for rec in self.read("candidates.jsonl")}
        chain, seen, cid = [], set(), candidate_id
        while cid in known and cid not in seen:
            seen.add(cid)
            parents = known[cid].get("parents") or []
            chain.append({**known[cid], "mates": [known[p]["prompt"] for p in parents[1:] if p in known]})
            cid = parents[0] if parents else None
        return chain

    def write_json(self, name: str, data: dict) -> None:
        """Whole-file writes go through a temporary file, so a reader sees the old file or the new one."""
        raw = _utf8(json.dumps(data, indent=2, ensure_ascii=False), self.dir / name)
        with self._writing(self.dir / name):
            write_replacing(self.dir / name, raw)

    def read_json(self, name: str) -> dict:
        return read_json(self.dir / name)

    def write_jsonl(self, name: str, records: list[dict]) -> None:
        """A whole log at once (through a temporary file): a kill leaves all of it or none."""
        raw = _utf8("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), self.dir / name)
        with self._writing(self.dir / name):
            write_replacing(self.dir / name, raw)


def _utf8(text: str, path: Path) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise PromptSearchError(f"cannot write {path}: the text holds a lone surrogate (not valid Unicode)") from None


_HELD: dict[str, list] = {}  # run directory -> [lock descriptor, depth]: the locks this process holds


def _take_lock(path: Path) -> int:
    try:
        fd = open_append(path)  # never through a link: the lock is truncated and rewritten below
    except OSError as e:
        raise PromptSearchError(link_refused(path, e)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise PromptSearchError(f"{path.parent} is in use by another promptsearch process (pid {holder}); "
                                "wait for it to finish or stop it first") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def _candidate_problem(rec) -> str | None:
    """Why a candidates.jsonl line is not a scored rung (None when it is)."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    cand = rec.get("candidate")
    if not isinstance(cand, dict) or not all(isinstance(cand.get(k), str) for k in ("id", "prompt", "strategy")):
        return "field 'candidate' must be an object with an 'id', a 'prompt' and a 'strategy'"
    if isinstance(rec.get("size"), bool) or not isinstance(rec.get("size"), int):
        return "field 'size' must be an integer"
    score = rec.get("score")
    if not isinstance(score, dict) or not all(_number(score.get(k)) for k in ("score", "n", "ci_low", "ci_high")):
        return "field 'score' must be an object with numbers 'score', 'n', 'ci_low' and 'ci_high'"
    if not isinstance(rec.get("results"), dict):
        return "field 'results' must be an object"
    for key, row in rec["results"].items():
        if not _result_row(row):
            return f"field 'results' entry {key[:20]!r} must be [score, prediction, log-likelihood or null, [label scores]]"
    try:
        from .candidate import Candidate

        Candidate.from_json(cand)  # what a resume rebuilds from the line
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as e:
        return f"field 'candidate' cannot be read ({type(e).__name__})"
    return None


def _number(x, nullable: bool = False) -> bool:
    return (x is None and nullable) or (isinstance(x, (int, float)) and not isinstance(x, bool))


def _result_row(row) -> bool:
    """One example's logged result, as scorer.ExampleResult.to_json writes it."""
    return (isinstance(row, list) and len(row) == 4 and _number(row[0]) and isinstance(row[1], str)
            and _number(row[2], nullable=True) and isinstance(row[3], list) and all(_number(v) for v in row[3]))


def logged_row_seconds(rec: dict) -> tuple[float, int] | None:
    """What a rung took, ``[seconds, rows]`` as the search logs it (since 2026-12-05); None where a line lacks it or
    holds it damaged: optional, so a bad value costs only the timing (the rung is timed afresh), never the line."""
    took = rec.get("row_seconds")
    if isinstance(took, list) and len(took) == 2 and all(_number(x) and x >= 0 for x in took):
        return float(took[0]), int(took[1])
    return None


def _test_problem(rec) -> str | None:
    """Why a test.jsonl line is not a prompt's logged test results (None when it is)."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    if not isinstance(rec.get("candidate"), dict) or not isinstance(rec["candidate"].get("id"), str):
        return "field 'candidate' must be an object with an 'id'"
    keys, results = rec.get("keys"), rec.get("results")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return "field 'keys' must list example keys"
    if not isinstance(results, list) or len(results) != len(keys) or not all(_result_row(r) for r in results):
        return "field 'results' must hold one [score, prediction, log-likelihood or null, [label scores]] per key"
    if rec.get("task") is not None and not isinstance(rec["task"], str):
        return "field 'task' must be a string"
    return None


RECORD_CHECKS = {"candidates.jsonl": _candidate_problem, "test.jsonl": _test_problem}

# summary.json's lists of rows (checked_summary): each row an object with this text field, which the reports read
ROW_NAMES = {"leaderboard": "prompt", "tasks": "name", "stages": "strategy"}
# summary.json's fields beyond best, seed and budget_used (checked_summary): each absent, null, or of these types
SUMMARY_SHAPES = {
    **{key: (str, "a string") for key in ("task", "metric", "model", "dtype", "scoring", "stop_reason", "stop_detail",
                                          "run_dir", "model_fingerprint", "config_sha256", "schedule")},
    **{key: (dict, "an object") for key in ("estimate", "paired_test", "paired_holdout", "improvement", "budget",
                                            "racing", "served", "multitask", "calibration_biases")},
    **{key: (list, "a list") for key in ("leaderboard", "stages", "strategies_run", "tasks", "final_notes")},
    "search_evals": ((int, float), "a number"),
}


# ---- reading a run log -----------------------------------------------------------------------
def best_records(records) -> list[dict]:
    """Each candidate's log record at the largest dev rung it reached, ranked as the search ranks its
    leaderboard: most dev examples, then the metric, then the mean gold log-likelihood, then age."""
    best: dict[str, dict] = {}
    for rec in records:
        cid = rec["candidate"]["id"]
        if cid not in best or rec["size"] >= best[cid]["size"]:
            best[cid] = rec  # keeps the candidate's first-seen place, so the stable sort ranks by age last
    return sorted(best.values(), key=lambda r: (r["size"], r["score"]["score"], tie_value(r.get("tie"))), reverse=True)


def tie_value(value) -> float:
    """A logged tie-break for sorting: missing or NaN (no gold log-likelihood) ranks last."""
    return -math.inf if value is None or (isinstance(value, float) and math.isnan(value)) else value
