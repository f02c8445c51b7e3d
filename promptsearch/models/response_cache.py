"""Served models' answers on disk (SQLite, WAL), keyed by model fingerprint + the exact request, so a
rerun, a resumed run or a second strategy never sends the same request twice."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path

from ..errors import PromptSearchError
from ..files import present

log = logging.getLogger(__name__)


def default_path() -> Path:
    from .local import cache_root

    return cache_root() / "responses.sqlite"


def request_key(fingerprint: str, path: str, body: dict) -> str:
    raw = json.dumps([fingerprint, path, body], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


class ResponseCache:
    """One table; safe to share between threads (one connection behind a lock) and processes (WAL)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        self._db = None
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _guard(self):
        """A damaged, foreign or unwritable cache file is one line naming it, not an sqlite3 traceback."""
        try:
            yield
        except (OSError, sqlite3.Error) as e:
            raise PromptSearchError(f"response cache {self.path}: {e}; delete the file (and its -wal, -shm) to start "
                                    "an empty cache") from None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            if self.path.is_symlink() and not self.path.exists():  # sqlite would create what the link names
                raise PromptSearchError(f"response cache {self.path}: a symbolic link to nothing (or a loop of links)")
            if self.path.is_dir():
                raise PromptSearchError(f"response cache {self.path}: is a folder, not a file")
            with self._guard():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
                try:
                    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                    if tables and "responses" not in tables:  # another program's database: never written into
                        raise PromptSearchError(f"response cache {self.path}: an SQLite database, but not "
                                                "promptsearch's response cache; set PROMPTSEARCH_CACHE elsewhere")
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, fingerprint TEXT, path TEXT,"
                               " response TEXT, created REAL)")
                    db.commit()
                except BaseException:
                    db.close()
                    raise
            self._db = db
        return self._db

    def get(self, key: str):
        with self._lock, self._guard():
            row = self._conn().execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except (TypeError, ValueError, RecursionError):  # a damaged entry is a miss: asked again, then replaced
            log.warning("response cache %s: a damaged entry is asked again", self.path)
            return None

    def put(self, key: str, fingerprint: str, path: str, response) -> None:
        with self._lock, self._guard():
            db = self._conn()
            db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                       (key, fingerprint, path, json.dumps(response, ensure_ascii=False), time.time()))
            db.commit()

    def info(self) -> dict:
        if not present(self.path):  # a dangling link is there: _conn says so
            return {"path": str(self.path), "entries": 0, "bytes": 0, "models": {}}
        with self._lock, self._guard():
            rows = self._conn().execute("SELECT fingerprint, COUNT(*) FROM responses GROUP BY fingerprint").fetchall()
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        return {"path": str(self.path), "entries": sum(n for _, n in rows), "bytes": size, "models": dict(rows)}

    def clear(self, fingerprint: str | None = None) -> int:
        if not present(self.path):  # a dangling link is there: _conn says so
            return 0
        with self._lock, self._guard():
            db = self._conn()
            if fingerprint is None:
                n = db.execute("DELETE FROM responses").rowcount
            else:
                n = db.execute("DELETE FROM responses WHERE fingerprint = ?", (fingerprint,)).rowcount
            db.commit()
            db.execute("VACUUM")
        return n

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
