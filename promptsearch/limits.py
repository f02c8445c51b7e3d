"""The one set of rules for every number a run reads, from the command line or from a file: whole numbers
where a count is meant, finite (no NaN, no infinity: JSON cannot hold them and a NaN compares false with
everything, so a limit of NaN is no limit), and within a range that makes sense. ``racing.eta`` below 2 would
never grow a rung (a search that loops until memory runs out); a batch of 0 scores nothing."""

from __future__ import annotations

import math

from .errors import PromptSearchError

# name -> (whole number?, least, most); None: no bound
RULES = {
    "batch_size": (True, 1, 1024),
    "proposals_per_round": (True, 1, 10_000),
    "top_k": (True, 1, 10_000),
    "seed": (True, 0, 2**63 - 1),
    "budget.max_candidates": (True, 1, None),
    "budget.max_evals": (True, 1, None),
    "budget.max_seconds": (False, 1, None),
    "budget.max_tokens": (True, 1, None),
    "racing.min_examples": (True, 1, None),
    "racing.eta": (True, 2, 1000),
    "served.concurrency": (True, 1, 256),
    "served.timeout": (False, 0.1, 86_400),
}


def check(name: str, value, where: str):
    """The value if it keeps the rule for ``name``; else one line naming where it came from."""
    whole, least, most = RULES[name]
    kind = "a whole number" if whole else "a number"
    ok_type = not isinstance(value, bool) and (isinstance(value, int) or (not whole and isinstance(value, float)))
    if not ok_type or (isinstance(value, float) and not math.isfinite(value)):
        raise PromptSearchError(f"{where}: must be {kind}{_range(least, most)}, not {value!r:.40}")
    if (least is not None and value < least) or (most is not None and value > most):
        raise PromptSearchError(f"{where}: {value!r} is out of range; it must be {kind}{_range(least, most)}")
    return value


def _range(least, most) -> str:
    if most is None:
        return f" of at least {least:g}"
    return f" from {least:g} to {most:g}"


def check_config(config: dict, where: str) -> None:
    """Every number of a run config (config.json, or one built from the command line) against RULES."""
    for name in RULES:
        section, _, key = name.rpartition(".")
        holder = config.get(section) if section else config
        if isinstance(holder, dict) and key in holder and holder[key] is not None:
            check(name, holder[key], f"{where} {name}" if where else name)
