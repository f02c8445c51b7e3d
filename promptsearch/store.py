"""The run store: one directory per run, append-only JSONL logs flushed as they are written.

    config.json       the resolved configuration (what --resume reads back)
    candidates.jsonl  one line per scored rung of a candidate, with per-example results
    summary.json      written at the end: leaderboard, best and seed prompts with dev/test scores
    best_prompt.txt   the winning prompt as plain text
    ratings.jsonl     human ratings (promptsearch rate)
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

from .errors import PromptSearchError

log = logging.getLogger(__name__)


def default_run_dir(task_name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{task_name}-{stamp}"


class RunStore:
    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)

    @classmethod
    def create(cls, run_dir: str | Path, config: dict) -> RunStore:
        store = cls(run_dir)
        if (store.dir / "candidates.jsonl").exists():
            raise PromptSearchError(f"{store.dir} already holds a run; resume it or choose another run directory")
        store.dir.mkdir(parents=True, exist_ok=True)
        store.write_json("config.json", config)
        return store

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        store = cls(run_dir)
        if not (store.dir / "config.json").exists():
            raise PromptSearchError(f"{run_dir} is not a run directory (no config.json)")
        return store

    def repair(self, name: str = "candidates.jsonl") -> None:
        """Cut a torn last line left by a kill, so the next append starts on a line of its own."""
        path = self.dir / name
        if path.exists():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                with open(path, "r+b") as f:
                    f.truncate(data.rfind(b"\n") + 1)

    @property
    def config(self) -> dict:
        return self.read_json("config.json")

    @property
    def summary(self) -> dict | None:
        return self.read_json("summary.json") if (self.dir / "summary.json").exists() else None

    def append(self, name: str, record: dict) -> None:
        """Append one JSON line and push it to disk, so a kill loses at most the line being written."""
        with open(self.dir / name, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self, name: str) -> list[dict]:
        """All complete records; a torn last line (the process was killed mid-write) is skipped,
        a corrupt line elsewhere is reported and skipped, so nothing else is lost."""
        path = self.dir / name
        if not path.exists():
            return []
        records = []
        lines = path.read_text(encoding="utf-8").splitlines()
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if lineno < len(lines):
                    log.warning("%s:%d: corrupt line skipped", path, lineno)
        return records

    def write_summary(self, summary: dict) -> None:
        self.write_json("summary.json", summary)
        best = summary.get("best") or {}
        (self.dir / "best_prompt.txt").write_text((best.get("prompt") or "") + "\n", encoding="utf-8")

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
        tmp = self.dir / (name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.dir / name)

    def read_json(self, name: str) -> dict:
        try:
            return json.loads((self.dir / name).read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise PromptSearchError(f"{self.dir / name}: bad JSON at line {e.lineno}") from None


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
