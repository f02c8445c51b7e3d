"""Reading the files a user or a run hands us: every failure (missing, unreadable, not UTF-8, bad JSON,
the wrong shape, unknown fields) becomes one PromptSearchError line naming the file and, where there is
one, the line."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import PromptSearchError


def read_bytes(path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise PromptSearchError(f"{path}: file not found") from None
    except OSError as e:
        raise PromptSearchError(f"{path}: cannot read ({e.strerror or e})") from None


def decode(data: bytes, where: str, first_line: int = 1) -> str:
    """UTF-8 text, else an error naming the line of the first bad byte."""
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


def parse_json(text: str, where: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise PromptSearchError(f"{where}: bad JSON at line {e.lineno}: {e.msg}") from None


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
