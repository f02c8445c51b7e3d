"""What scoring a model really gave a run, in words: the summary's ``scoring`` line and, where scoring was less
than exact, the one-line note the README promises (#30). A served echo server that pairs log-probabilities with
the next position is scored by teacher forcing through top-k lists, so "exact" was not true of it."""

from __future__ import annotations


def describe(model) -> str:
    """The model's scoring as configured (capabilities), corrected for a late-pairing echo server."""
    if getattr(model, "late_echo", False):
        return ("served: label log-likelihoods by teacher forcing through the server's top-k lists (its echo pairs "
                "each log-probability with the next position): exact where each label token is listed, else an upper bound")
    return model.capabilities.describe()


def note(model) -> str | None:
    """One line when the scores a model gave were less than exact (counts from its stats), else None."""
    stats = getattr(model, "stats", None) or {}
    parts = []
    if stats.get("outside_topk"):
        parts.append(f"{stats['outside_topk']} label score(s) fell outside the server's top-k lists and count at "
                     "the list's upper bound")
    if stats.get("merged_boundaries"):
        parts.append(f"{stats['merged_boundaries']} label score(s) include a token that also held text before the label")
    return "scoring was less than exact: " + "; ".join(parts) + " (README: served models)" if parts else None
