"""Reading the files a user or a run hands us: every failure (missing, unreadable, not UTF-8, bad JSON,
the wrong shape, unknown fields) becomes one PromptSearchError line naming the file and, where there is
one, the line."""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path

from .errors import PromptSearchError

# The most a file we read may hold. Every reader takes a whole file into memory (then parses it into rows several
# times its size), so a file past this is refused in one line rather than read until the machine runs out of memory;
# /dev/zero or /dev/urandom given as a file would otherwise never end. 1 GiB of rows is far past what a prompt
# search scores; PROMPTSEARCH_MAX_FILE_MB raises it.
MAX_FILE_MB_ENV = "PROMPTSEARCH_MAX_FILE_MB"
DEFAULT_MAX_FILE_MB = 1024


def max_file_bytes() -> int:
    given = os.environ.get(MAX_FILE_MB_ENV, "").strip()
    if not given:
        return DEFAULT_MAX_FILE_MB << 20
    try:
        mb = int(given)
    except ValueError:
        mb = 0
    if mb < 1:
        raise PromptSearchError(f"${MAX_FILE_MB_ENV}={given[:40]!r}: must be a whole number of MB, 1 or more")
    return mb << 20


def read_bytes(path) -> bytes:
    """A file's bytes: a regular file or a pipe (``<(...)``), never a device or socket, and at most
    ``max_file_bytes()``, counted as it is read (a pipe or a growing file has no size up front)."""
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
                raise PromptSearchError(f"{path}: not a file (a device or socket); give a file's path")
            return _read_capped(f, str(path))
    except FileNotFoundError:
        raise PromptSearchError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise PromptSearchError(f"{path}: is a folder, not a file") from None
    except OSError as e:
        raise PromptSearchError(f"{path}: cannot read ({e.strerror or e})") from None


def read_stdin() -> bytes:
    """Standard input's bytes, under the same cap as a file (``< /dev/zero`` would never end)."""
    try:
        return _read_capped(sys.stdin.buffer, "stdin")
    except OSError as e:
        raise PromptSearchError(f"stdin: cannot read ({e.strerror or e})") from None


def _read_capped(f, where: str) -> bytes:
    cap = max_file_bytes()
    data = f.read(cap + 1)
    if len(data) > cap:
        raise PromptSearchError(f"{where}: larger than {cap >> 20} MB, the most promptsearch reads from one file; "
                                f"split it, or raise ${MAX_FILE_MB_ENV}")
    return data


BOM = b"\xef\xbb\xbf"


def decode(data: bytes, where: str, first_line: int = 1) -> str:
    """UTF-8 text, else an error naming the line of the first bad byte. A byte-order mark opening a file (as
    Windows editors save UTF-8) is no text: dropped, so the file reads as it does without one."""
    if first_line == 1 and data.startswith(BOM):
        data = data[len(BOM):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = first_line + data[: e.start].count(b"\n")
        raise PromptSearchError(f"{where}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); save the file as UTF-8") from None


def read_text(path) -> str:
    return decode(read_bytes(path), str(path))


def read_lines(path):
    """(line number, text) for each line; a line that is not UTF-8 raises with its number."""
    for lineno, raw in enumerate(read_bytes(path).splitlines(), 1):
        yield lineno, decode(raw, str(path), lineno)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def parse_json(text: str, where: str):
    """Any JSON value; refused in one line: bad syntax, nesting past Python's recursion limit (the C parser
    raises RecursionError there), and lone surrogates (\\ud800: valid JSON, but no UTF-8 file can hold it,
    so writing it back later would fail half-way through a run)."""
    try:
        value = json.loads(text, object_pairs_hook=_no_repeats)
    except _Repeated as e:
        raise PromptSearchError(f"{where}: field {e.args[0][:40]!r} is given twice; keep one") from None
    except json.JSONDecodeError as e:
        raise PromptSearchError(f"{where}: bad JSON at line {e.lineno}: {e.msg}") from None
    except RecursionError:
        raise PromptSearchError(f"{where}: JSON nested too deeply") from None
    if _SURROGATE_ESCAPE.search(text) and not _encodable(value):
        raise PromptSearchError(f"{where}: holds a lone surrogate escape (such as \\ud800), which is not text")
    return value


class _Repeated(ValueError):
    pass


def _no_repeats(pairs):
    """An object's fields, refusing one given twice (json keeps the last silently: a row with two "output"s
    would be read as whichever came last)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _Repeated(key)
            seen.add(key)
    return obj


def check_text(value, where: str) -> None:
    """Refuse, in one line, a value holding text no UTF-8 file can store (a lone surrogate: from a JSON escape, or
    from command-line bytes that are not UTF-8), before anything is written with it."""
    if not _encodable(value):
        raise PromptSearchError(f"{where}: holds text that is not valid Unicode (a lone surrogate, or bytes that are "
                                "not UTF-8)")


def _encodable(value) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return True


def present(path) -> bool:
    """Whether a file is there to be read: a dangling or looping symlink counts as there (reading it then
    fails in one line) rather than silently as absent; a folder we may not look into is one line."""
    try:
        os.lstat(path)
        return True
    except FileNotFoundError:
        return False
    except OSError as e:
        raise PromptSearchError(f"{path}: cannot read ({e.strerror or e})") from None


SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def check_file_name(name, where: str) -> str:
    """A file name read from a file must be a bare name (no folder part, no '..', not absolute, not hidden),
    so a hostile file cannot point a read or a write anywhere else."""
    if not isinstance(name, str) or not SAFE_NAME.match(name) or ".." in name:
        raise PromptSearchError(f"{where}: {name!r} must be a plain file name in the same folder "
                                "(letters, digits, . _ + -; no '/' or '..')")
    return name


def confined(folder, name: str, where: str) -> Path:
    """``folder/name`` for a file name read from a file (see check_file_name); a symbolic link there is
    refused too, as it could lead out of the folder."""
    path = Path(folder) / check_file_name(name, where)
    if path.is_symlink():
        raise PromptSearchError(f"{where}: {path} is a symbolic link; it must be a plain file")
    return path


_NAMES = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false",
          type(None): "null"}


def read_json(path, kind: type = dict):
    """A whole-file JSON value that must be a ``kind`` (dict: 'a JSON object', list: 'a JSON list')."""
    data = parse_json(read_text(path), str(path))
    if not isinstance(data, kind):
        shape = {dict: "a JSON object", list: "a JSON list"}.get(kind, kind.__name__)
        raise PromptSearchError(f"{path}: must be {shape}, not {_NAMES.get(type(data), type(data).__name__)}")
    return data


def check_fields(record: dict, known, where: str, hint: str = "") -> None:
    """Refuse fields nobody reads: a typo ('ouput') must not pass silently."""
    unknown = sorted(set(record) - set(known))
    if unknown:
        raise PromptSearchError(f"{where}: unknown field {unknown[0]!r}; known fields are {', '.join(known)}{hint}")


# ---- writing into a folder a file may have planted links in -------------------------------------------------
def open_append(path) -> int:
    """A descriptor appending to ``path`` (created if absent), never through a symbolic link: a run folder handed
    over with ``ratings.jsonl`` or ``lock`` linked to a file elsewhere must not have that file appended to or
    truncated. Raises OSError (ELOOP for a link) for the caller's own one-line message."""
    return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)


def link_refused(path, e: OSError) -> str:
    """The reason to give for an OSError from open_append / write_replacing."""
    if Path(path).is_symlink():
        return f"cannot write {path}: it is a symbolic link; a run's files must be plain files in its folder"
    return f"cannot write {path}: {e.strerror or e}"


def write_replacing(path, data: bytes) -> None:
    """``path`` replaced whole by ``data`` through a new temporary file beside it (created afresh: a link left
    at the temporary name is removed, never written through), so a reader sees the old file or the new one.
    Raises OSError."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
