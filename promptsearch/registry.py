"""The prompt registry: named prompts kept in versions (v1, v2, ...) in one SQLite file.

Where: ``$PROMPTSEARCH_REGISTRY``, else ``$XDG_DATA_HOME/promptsearch/registry.db`` (by default
``~/.local/share/promptsearch/registry.db``). An add is one ``BEGIN IMMEDIATE`` transaction: the
next version number is read and the row written under the write lock, so concurrent adds queue
(up to the busy timeout) instead of colliding, and a process killed mid-add leaves nothing behind.
Each version stores the artifact's JSON as given and a soft prompt's vectors, so an export later
is byte-identical to what was added.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import artifact
from .errors import PromptSearchError

BUSY_TIMEOUT_S = 60
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
REF = re.compile(r"^(?P<name>[^@]+)(?:@v(?P<version>[0-9]+))?$")
SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    artifact TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    soft BLOB,
    added TEXT NOT NULL,
    PRIMARY KEY (name, version)
)"""


def default_path() -> Path:
    if os.environ.get("PROMPTSEARCH_REGISTRY"):
        return Path(os.environ["PROMPTSEARCH_REGISTRY"]).expanduser()
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "promptsearch" / "registry.db"


@dataclass(frozen=True)
class Version:
    name: str
    version: int
    artifact: artifact.Artifact
    text: str  # the artifact's JSON exactly as added
    sha256: str
    soft: bytes | None
    added: str
    new: bool = True  # False: `add` found this exact artifact as the latest version and stored nothing (#30)

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` (the latest version) or ``NAME@vN``."""
    m = REF.match(ref)
    if not m or not NAME.match(m["name"]):
        raise PromptSearchError(f"{ref!r} is not a prompt reference; use NAME or NAME@vN (NAME: letters, digits, . _ -)")
    return m["name"], int(m["version"]) if m["version"] else None


class Registry:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_path()

    def _connect(self, create: bool = False) -> sqlite3.Connection:
        if self.path.is_symlink() and not self.path.exists():  # sqlite would create the file the link names
            raise PromptSearchError(f"registry {self.path}: a symbolic link to nothing (or a loop of links); point "
                                    "PROMPTSEARCH_REGISTRY at the registry file itself")
        if not create and not self.path.exists():
            raise PromptSearchError(f"no registry at {self.path} yet; add a prompt with: promptsearch prompts add FILE --name NAME")
        if self.path.is_dir():
            raise PromptSearchError(f"registry {self.path}: is a folder, not a file; point PROMPTSEARCH_REGISTRY at a file")
        conn = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are ours (BEGIN IMMEDIATE), not the module's implicit ones.
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "versions" not in tables:  # someone else's database: never add a table to it
                conn.close()
                raise PromptSearchError(f"registry {self.path}: an SQLite database, but not a promptsearch registry "
                                        f"(it holds {', '.join(sorted(tables)[:3])}); point PROMPTSEARCH_REGISTRY elsewhere")
            conn.execute(SCHEMA)
        except (OSError, sqlite3.Error) as e:
            if conn is not None:
                conn.close()
            raise PromptSearchError(f"registry {self.path}: {e}") from None
        return conn

    def add(self, name: str, text: str, soft: bytes | None = None) -> Version:
        """Store an artifact (its JSON text, validated) as the next version of ``name``."""
        if not NAME.match(name):
            raise PromptSearchError(f"prompt name {name!r}: use letters, digits, '.', '_' and '-' (start with a letter or digit)")
        art = artifact.parse(text.encode("utf-8"), f"{name} (artifact)")
        if (art.soft is None) != (soft is None):
            raise PromptSearchError("a soft-prompt artifact is added together with its vectors, a text prompt without")
        if soft is not None and hashlib.sha256(soft).hexdigest() != art.soft["sha256"]:
            raise PromptSearchError(f"{name}: the soft prompt's vectors do not match the hash the artifact records")
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        added = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        conn = self._connect(create=True)
        try:
            conn.execute("BEGIN IMMEDIATE")  # take the write lock before reading the next version number
            (latest,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM versions WHERE name = ?", (name,)).fetchone()
            same = conn.execute("SELECT * FROM versions WHERE name = ? AND version = ? AND sha256 = ? AND soft IS ?",
                                (name, latest, digest, soft)).fetchone()
            if same is not None:  # the same artifact again: a new version would differ only in its number
                conn.execute("ROLLBACK")
                return replace(_version(same), new=False)
            conn.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)", (name, latest + 1, text, digest, soft, added))
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise PromptSearchError(f"registry {self.path}: {e}") from None
        finally:
            conn.close()
        return Version(name, latest + 1, art, text, digest, soft, added)

    def get(self, ref: str) -> Version:
        name, version = parse_ref(ref)
        conn = self._connect()
        try:
            if version is None:
                row = conn.execute("SELECT * FROM versions WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)).fetchone()
            else:
                row = conn.execute("SELECT * FROM versions WHERE name = ? AND version = ?", (name, version)).fetchone()
        except sqlite3.Error as e:
            raise PromptSearchError(f"registry {self.path}: {e}") from None
        finally:
            conn.close()
        if row is None:
            raise PromptSearchError(f"no prompt {ref!r} in {self.path}" + ("" if version is None else "; see: promptsearch prompts show " + name))
        return _version(row)

    def versions(self, name: str | None = None) -> list[Version]:
        """Every version (of one name), oldest first."""
        conn = self._connect()
        try:
            query = "SELECT * FROM versions" + (" WHERE name = ?" if name else "") + " ORDER BY name, version"
            rows = conn.execute(query, (name,) if name else ()).fetchall()
        except sqlite3.Error as e:  # a damaged file ("database disk image is malformed") or not a registry
            raise PromptSearchError(f"registry {self.path}: {e}") from None
        finally:
            conn.close()
        return [_version(r) for r in rows]


def _version(row) -> Version:
    """A stored row, checked on every read: its text must still hash to the sha256 recorded when it was added,
    and a soft prompt's vectors to the hash its artifact records. This catches a row changed by hand or by
    damage; it proves nothing about who wrote it: anyone who can write the file can store a matching hash."""
    if len(row) != 6 or not isinstance(row[2], str) or not isinstance(row[3], str):
        raise PromptSearchError("registry: a row does not have the registry's shape")
    name, version, text, digest, soft, added = row
    where = f"registry row {name}@v{version}"
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise PromptSearchError(f"{where}: its artifact text is not valid text") from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise PromptSearchError(f"{where}: its artifact no longer matches the sha256 recorded when it was added "
                                "(edited or damaged); add the artifact again")
    art = artifact.parse(data, where)
    if art.soft is not None and (not isinstance(soft, bytes) or hashlib.sha256(soft).hexdigest() != art.soft["sha256"]):
        raise PromptSearchError(f"{where}: its soft prompt's vectors do not match the hash the artifact records")
    return Version(name, version, art, text, digest, soft, added)
