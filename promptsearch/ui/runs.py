"""Finding and reading the runs the web app shows, through the store's public readers, cached per file state.

A run is known by an id made from its folder's path under one of the folders given on the command line; URLs
carry only such ids, and the server looks them up in what it found there, so no URL can name a file of its own
(a symlinked run that leads outside its folder is not listed). Reads are cached and keyed by the size and
modification time of the run's files, so a finished run is parsed once and a running one again as its log grows.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import PromptSearchError
from ..store import RunStore, best_records
from .log import read_log, results_of

WATCHED = ("config.json", "candidates.jsonl", "summary.json", "test.jsonl", "lock")
SCAN_DEPTH = 2  # a folder of runs, or a folder of folders of runs (benchmarks write those)


class NotFound(Exception):
    """A run or prompt id that names nothing the server was given (the app answers 404)."""


@dataclass
class Run:
    """One run as the pages show it. ``records`` is the log's valid rungs in order; ``board`` each
    candidate at its largest rung, ranked as the search ranks them."""

    id: str
    dir: Path
    config: dict
    summary: dict | None
    status: str = "interrupted"
    error: str = ""

    @property
    def records(self) -> list[dict]:
        """The log, read on first need: the runs page shows a finished run from its summary alone."""
        if "_records" not in self.__dict__:
            try:
                rows = read_log(self.dir / "candidates.jsonl")
            except PromptSearchError as e:
                self.error, rows = str(e), []
            self.__dict__["_records"] = rows
        return self.__dict__["_records"]

    @property
    def tests(self) -> dict[str, dict]:
        """candidate id -> its test.jsonl record (the run logs the seed's and the winner's test results)."""
        if "_tests" not in self.__dict__:
            try:
                rows = RunStore(self.dir).read("test.jsonl")
            except PromptSearchError:
                rows = []
            self.__dict__["_tests"] = {
                t["candidate"]["id"]: t for t in rows
                if isinstance(t, dict) and isinstance(t.get("candidate"), dict) and isinstance(t.get("keys"), list)
                and isinstance(t.get("results"), list) and len(t["keys"]) == len(t["results"])}
        return self.__dict__["_tests"]

    @property
    def board(self) -> list[dict]:
        if "_board" not in self.__dict__:
            self.__dict__["_board"] = best_records(self.records)
        return self.__dict__["_board"]

    @property
    def candidates(self) -> dict[str, dict]:
        """candidate id -> its candidate record (first seen)."""
        if "_cands" not in self.__dict__:
            out: dict[str, dict] = {}
            for rec in self.records:
                out.setdefault(rec["candidate"]["id"], rec["candidate"])
            self.__dict__["_cands"] = out
        return self.__dict__["_cands"]

    def results(self, candidate_id: str) -> dict[str, list]:
        """Every dev result the log holds for a candidate: example key -> [score, prediction, logprob, label scores]."""
        out: dict[str, list] = {}
        for rec in self.records:
            if rec["candidate"]["id"] == candidate_id:
                out.update(results_of(rec))
        return out

    @property
    def metric(self) -> str:
        if self.summary:
            return self.summary.get("metric", "")
        return self.records[0]["score"].get("metric", "") if self.records else ""

    @property
    def task_name(self) -> str:
        if self.summary and self.summary.get("task"):
            return self.summary["task"]
        mt = self.config.get("multitask")
        if mt:
            return "+".join(Path(t).name for t in mt.get("tasks") or [])
        return Path(self.config.get("task") or "sst2-mini").name

    @property
    def model(self) -> str:
        if self.summary and self.summary.get("model"):
            return self.summary["model"]
        return self.config.get("model") or "SmolLM2-135M-Instruct (embedded)"

    @property
    def evals(self) -> int:
        if self.summary:
            return self.summary.get("budget_used", {}).get("evals", 0)
        return max((r.get("evals_used", 0) for r in self.records), default=0)

    @property
    def resume_command(self) -> str:
        verb = "refine" if self.config.get("feedback") else "run"
        return f"promptsearch {verb} --resume {self.dir}"

    @property
    def started(self) -> str:
        return _stamp(self.dir / "config.json")

    @property
    def seed(self) -> dict | None:
        if self.summary:
            return self.summary.get("seed")
        seeds = [r for r in self.records if r["candidate"].get("strategy") == "seed"]
        if not seeds:
            return None
        top = max(seeds, key=lambda r: r["size"])
        return {**top["candidate"], "dev": top["score"]}

    @property
    def best(self) -> dict | None:
        if self.summary:
            return self.summary.get("best")
        if not self.board:
            return None
        top = self.board[0]
        return {**top["candidate"], "dev": top["score"]}


def _stamp(path: Path) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.gmtime(path.stat().st_mtime)) + " UTC"
    except OSError:
        return ""


def lock_held(lock: Path) -> bool:
    """Whether a process holds the run's flock (a search writing it), read from /proc/locks without taking
    the lock: taking it, even for an instant, could refuse a run that starts at that moment."""
    try:
        st = lock.stat()
    except OSError:
        return False
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            for line in f:
                parts = line.split()
                if "->" in parts:  # a waiter, not a holder
                    continue
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == want:
                    return True
        return False
    except OSError:  # no /proc (not Linux): the pid the holder wrote, if that process is alive
        try:
            pid = int(lock.read_text(encoding="ascii").strip())
            os.kill(pid, 0)
            return True
        except (OSError, ValueError):
            return False


def _signature(folder: Path) -> tuple:
    sig = []
    for name in WATCHED[:-1]:
        try:
            st = (folder / name).stat()
            sig.append((st.st_size, st.st_mtime_ns))
        except OSError:
            sig.append(None)
    return tuple(sig)


class RunIndex:
    """The runs under the folders given, by id, with cached reads."""

    def __init__(self, roots: list[str | Path]):
        if not roots:
            roots = ["runs"]
        self.roots = []
        for root in roots:
            path = Path(root)
            if not path.is_dir():
                raise PromptSearchError(f"{root}: no such folder of runs")
            self.roots.append(path.resolve())
        self._cache: dict[Path, tuple[tuple, Run]] = {}
        self._ids: dict[str, Path] = {}
        self._lock = threading.Lock()

    # ---- finding runs --------------------------------------------------------------------------
    def scan(self) -> dict[str, Path]:
        """id -> run folder, for every run under the roots (newest first by start time)."""
        found: dict[str, Path] = {}
        for i, root in enumerate(self.roots):
            prefix = f"{i}/" if len(self.roots) > 1 else ""
            for folder in self._runs_under(root, root, 0):
                rel = folder.relative_to(root).as_posix()
                found[prefix + (rel if rel != "." else root.name)] = folder
        found = dict(sorted(found.items(), key=lambda kv: _mtime(kv[1] / "config.json"), reverse=True))
        with self._lock:
            self._ids = found
        return found

    def _runs_under(self, root: Path, folder: Path, depth: int):
        if (folder / "config.json").is_file():
            yield folder
            return
        if depth >= SCAN_DEPTH:
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if not entry.is_dir() or entry.name.startswith("."):
                continue
            real = Path(entry.path).resolve()
            if not real.is_relative_to(root):  # a symlink that leads out of the folder given
                continue
            yield from self._runs_under(root, Path(entry.path), depth + 1)

    def path_of(self, run_id: str) -> Path:
        with self._lock:
            folder = self._ids.get(run_id)
        if folder is None:
            folder = self.scan().get(run_id)
        if folder is None:
            raise NotFound(f"no run {run_id!r} under the folders this server was given")
        return folder

    # ---- reading runs --------------------------------------------------------------------------
    def run(self, run_id: str) -> Run:
        folder = self.path_of(run_id)
        sig = _signature(folder)
        with self._lock:
            cached = self._cache.get(folder)
        if cached and cached[0] == sig:
            run = cached[1]
        else:
            run = self._read(run_id, folder)
            with self._lock:
                self._cache[folder] = (sig, run)
        run.status = "finished" if run.summary else ("running" if lock_held(folder / "lock") else "interrupted")
        return run

    def _read(self, run_id: str, folder: Path) -> Run:
        store = RunStore(folder)
        try:
            config, summary = store.config, store.checked_summary()  # a damaged run is shown with its one line
        except PromptSearchError as e:
            return Run(run_id, folder, {}, None, error=str(e))
        if not isinstance(config, dict) or (summary is not None and not isinstance(summary, dict)):
            return Run(run_id, folder, {}, None, error="config.json or summary.json is not a JSON object")
        return Run(run_id, folder, config, summary)

    def runs(self) -> list[Run]:
        return [self.run(run_id) for run_id in self.scan()]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
