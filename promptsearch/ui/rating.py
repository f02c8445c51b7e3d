"""Rating in the browser: the same pairs and the same records as ``promptsearch rate``, appended so that two
people rating at once lose nothing.

Each rating is one ``write`` of one whole line to ``ratings.jsonl`` opened with O_APPEND, under an exclusive
flock on that file (so the check for a torn last line and the write happen as one step for every writer in any
process), then fsynced. The run's own lock is not taken: it belongs to a search writing the run, and rating a
run while it searches is fine (the search never reads ratings; ``refine`` reads them when it starts)."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from ..errors import PromptSearchError
from ..feedback.ratings import RATINGS, Feedback, Rating, check_rating
from ..feedback.session import rating_items
from ..files import link_refused, open_append
from ..store import RunStore

TOP, INPUTS, SEED = 3, 3, 0  # what `promptsearch rate` shows by default


def pending(run_dir: Path, task, top: int = TOP, n_inputs: int = INPUTS, seed: int = SEED):
    """(items not rated yet, ratings so far, problems reading them): the pairs ``rate`` would show."""
    store = RunStore(run_dir)
    existing, problems = Feedback(store).load()
    rated = {(r.candidate, r.example or r.input) for r in existing}
    items = rating_items(store, task, top=top, n_inputs=n_inputs, seed=seed, rated=rated)
    return items, existing, problems


def find_item(run_dir: Path, task, candidate: str, example: str, top: int = TOP, n_inputs: int = INPUTS, seed: int = SEED):
    """The pair a submitted form names, looked up again on the server (the prompt, output and reference
    written come from the run's log, never from the form)."""
    store = RunStore(run_dir)
    for item in rating_items(store, task, top=top, n_inputs=n_inputs, seed=seed):
        if item.candidate.id == candidate and item.example.key == example:
            return item
    return None


def append_rating(run_dir: Path, rating: Rating) -> dict:
    """Append one rating as one line, at once; returns the record written."""
    check_rating(rating.rating)
    record = rating.to_json()
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    path = Path(run_dir) / RATINGS
    try:
        fd = open_append(path)  # never through a link to a file elsewhere
    except OSError as e:
        raise PromptSearchError(link_refused(path, e)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd closes
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # a torn last line (a kill mid-write) keeps its own line
            line = b"\n" + line
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as e:
        raise PromptSearchError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    return record
