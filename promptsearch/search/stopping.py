"""Why a search stopped, and the warning when its limits leave no room to search at all.

A run whose budget is eaten by the seed prompt and the reserve for the final checks used to end silently
with the seed as its best; these helpers make it say so, with the numbers, at the start and at the end.
They read the search's public counters only (``budget``, ``trials``, ``evals_used``, ``seconds``,
``tokens_used``, ``seconds_per_eval()``, ``final_check_evals()``, ``final_check_seconds()``, ``handovers``,
``arms_stop``)."""

from __future__ import annotations

import logging
import math

log = logging.getLogger(__name__)

# summary["stop_reason"] -> the words the final line uses
REASONS = {
    "evals": "the evaluation budget (--max-evals) is spent",
    "candidates": "the candidate limit (--max-candidates) is reached",
    "tokens": "the token budget (--max-tokens) is spent",
    "time": "the time limit (--max-seconds) is reached",
    "final_reserve": "the time left is reserved for what runs after the search (the final strategies, the top "
                     "candidates on all of dev, best and seed on test) at the speed measured so far",
    "exhausted": "the strategies had nothing new left to propose",
}


def budget_stop(search, limits=None) -> str | None:
    """The limit that is hit now, or None: the run-wide budget's, or (``limits``: candidates, evals, seconds,
    tokens, as ``Search.limits``) the ones a part of the run was held to, such as the bandit's arms, which leave
    the final strategies their share of the time."""
    b = search.budget
    if limits is None:
        limits = tuple(math.inf if x is None else x for x in (b.max_candidates, b.max_evals, b.max_seconds, b.max_tokens))
    max_c, max_e, max_s, max_t = limits
    if search.evals_used >= max_e:
        return "evals"
    if len(search.trials) >= max_c:
        return "candidates"
    if search.tokens_used >= max_t:
        return "tokens"
    if max_s != math.inf:
        if search.seconds >= max_s:
            return "time"
        if search.seconds + final_reserve_seconds(search) >= max_s:
            return "final_reserve"
    return None


def final_reserve_seconds(search) -> float:
    return search.final_check_seconds()


def stop_reason(search) -> str:
    """Why the search loop ended (called before the final checks, which always run): a run-wide limit, else the
    limit the bandit's arms stopped at (``Search.arms_stop``), else the strategies had nothing left."""
    return budget_stop(search) or search.arms_stop or "exhausted"


def no_room_warning(search, limits=None) -> str | None:
    """After the seed prompt is scored: a warning with the numbers when the limits already stop the search (the
    run-wide ones, or ``limits``, those the strategies search under; see ``budget_stop``)."""
    reason = budget_stop(search, limits)
    if reason is None:
        return None
    b, used = search.budget, search.evals_used
    head = f"the limits leave no room to search: after the seed prompt ({used} example-evaluations, {search.seconds:.0f} s)"
    if reason == "evals":
        kept = b.max_evals - limits[1] if limits is not None and limits[1] < b.max_evals else 0
        less = f", less the {kept:.0f} kept for the final strategies," if kept else ""
        return f"{head} the evaluation budget of {b.max_evals}{less} is spent; raise --max-evals well above {used + kept:.0f}"
    if reason == "candidates":
        return f"{head} the candidate limit of {b.max_candidates} is reached; raise --max-candidates"
    if reason == "tokens":
        return f"{head} the token budget of {b.max_tokens} is spent ({search.tokens_used} tokens); raise --max-tokens"
    need, spent = final_reserve_seconds(search), search.seconds
    # the strategies may search until `share` of the time left after the seed; the rest is the final stages'
    share = 1.0 if limits is None or b.max_seconds <= spent else (limits[2] - spent) / (b.max_seconds - spent)
    kept = "" if share >= 1.0 else f" and {1 - share:.0%} of the rest is kept for the final strategies"
    return (f"{head} the final checks still need about {search.final_check_evals()} example-evaluations "
            f"(~{need:.0f} s at the speed measured so far){kept}, so --max-seconds {b.max_seconds:g} leaves "
            f"nothing for the strategies; raise it to well over {spent + need / max(share, 0.05):.0f} s")


def warn_no_room(search, limits=None) -> str | None:
    """Log the no-room warning (the CLI shows it on stderr as the run starts) and return it for the summary."""
    warning = no_room_warning(search, limits)
    if warning:
        bar = getattr(search, "_bar", None)
        if bar is not None:  # on a line of its own, not glued to the progress bar (it redraws on its next update)
            bar.clear()
        log.warning(warning)
    return warning


def stop_fields(search, warning: str | None = None) -> dict:
    """What the summary records about stopping, taken when the search loop ends (before the final checks):
    the reason, the start warning if there was one, which strategies really spent evaluations, and the
    evaluations spent so far (the budget line tells them from what the final checks add past the budget)."""
    stages, reason = list(search.handovers), stop_reason(search)
    out = {"stop_reason": reason, "stop_detail": REASONS[reason], "stages": stages,
           "strategies_run": [s["strategy"] for s in stages if s.get("evals", 0) > 0],
           "search_evals": search.evals_used}
    if warning:
        out["no_room_warning"] = warning
    return out


def stop_line(summary: dict) -> str:
    """The last line of a run's text output: why it stopped and who searched ('' for summaries before it)."""
    reason = summary.get("stop_reason")
    if not reason:
        return ""
    ran = summary.get("strategies_run") or []
    idle = [s["strategy"] for s in summary.get("stages") or [] if s["strategy"] not in ran]
    who = f"strategies that spent evaluations: {', '.join(ran) if ran else 'none'}"
    if idle:
        who += f" (never ran: {', '.join(dict.fromkeys(idle))})"
    return f"stopped: {REASONS.get(reason, reason)}; {who}"
