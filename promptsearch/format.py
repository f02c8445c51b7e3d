"""The one set of text formatters for scores and prompts, shared by the CLI and the reports."""

from __future__ import annotations

import math

# A leaderboard's header: racing ranks a prompt scored on more dev rows above one with a higher score on fewer
# (a 16-row score is noise), which reads as a mis-sort unless the table says so (#30).
RANKED_BY = ("ranked as the search ranks (its winner is #1): most dev rows reached first (n, fewer where a prompt shows "
             "some of them as demonstrations), then {what}")


def flat(text: str, width: int | None = None, markdown: bool = False) -> str:
    """A prompt on one line (newlines shown as ⏎), cut to ``width`` with an ellipsis; ``markdown``
    also escapes the table separator."""
    out = str(text).replace("\n", "⏎")
    if markdown:
        out = out.replace("|", "\\|")
    return out if not width or len(out) <= width else out[: width - 1] + "…"


def one_line(prompt: str, width: int = 90) -> str:
    return flat(prompt, width)


def md_cell(text: str, width: int | None = None) -> str:
    return flat(text, width, markdown=True)


def missing(score: dict | None) -> bool:
    value = (score or {}).get("score")
    return value is None or (isinstance(value, float) and math.isnan(value))


def estimate_kind(summary: dict | None) -> str:
    """Which score a run's summary calls the winner's estimate: "holdout", "dev" (the rows that chose it), or ""
    in summaries from before the estimate (they say nothing either way). The CLI and the web page both read it."""
    return ((summary or {}).get("estimate") or {}).get("which", "")


def fmt(score: dict | None, ci: bool = False, n: bool = False) -> str:
    """``0.850``, with ``ci`` ``0.850 [0.783, 0.884]``, with ``n`` also `` n=200``; ``-`` when unscored (a score
    recorded without its interval or n shows without them)."""
    if missing(score):
        return "-"
    text = f"{score['score']:.3f}"
    if ci and score.get("ci_low") is not None and score.get("ci_high") is not None:
        text += f" [{score['ci_low']:.3f}, {score['ci_high']:.3f}]"
    if n and score.get("n") is not None:
        text += f" n={score['n']}"
    return text


def fmt_score(score: dict | None) -> str:
    """A score as the CLI prints it: value, 95% CI and n."""
    return fmt(score, ci=True, n=True)


CHOSE = "  (chose it: biased upward)"  # after a dev score that chose the prompt it scores


def score_lines(dev: dict, test: dict, holdout: dict | None = None, chose: str = "", estimate: bool = False) -> list[str]:
    """A prompt's scores as `run` prints them (and `prompts show` for an artifact): dev (``chose`` says what chose
    it), the held-out rows where the run kept some (``estimate``: marked as the winner's estimate), test."""
    held = [f"  held-out {fmt_score(holdout)}" + ("  <- the estimate: rows no choice saw" if estimate else "")] \
        if holdout else []
    return [f"  dev  {fmt_score(dev)}{chose}", *held, f"  test {fmt_score(test)}"]


def options_note(cand: dict) -> str:
    """A candidate's scoring options as shown next to its prompt: ``  {calibrate: contextual, demos: similar:4}``."""
    shown = [f"{k}: {cand[k]}" for k in ("calibrate", "demos") if cand.get(k)]
    if cand.get("verbalizer"):
        shown.append(verbalizer_note(cand["verbalizer"]))
    if cand.get("members"):
        shown.append(f"ensemble of {len(cand['members'])}")
    return "  {" + ", ".join(shown) + "}" if shown else ""


def verbalizer_note(verbalizer) -> str:
    """``verbalizer: +9 words a class``: how many words besides its label word each class's score sums."""
    sizes = sorted({len(words) for words in verbalizer})
    count = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
    return f"verbalizer: +{count} words a class"


def members_lines(cand: dict, indent: str = "    ", width: int = 80) -> list[str]:
    """An ensemble candidate's members (best first) with their weights, one line each; [] otherwise."""
    members = cand.get("members") or []
    if not members:
        return []
    weights = cand.get("weights") or [1.0] * len(members)
    total = sum(weights) or 1.0
    lines = [f"{indent}ensemble of {len(members)} prompts (weight, prompt, label words, scoring options):"]
    for m, w in zip(members, weights):
        words = f"  [{'/'.join(m['label_words'])}]" if m.get("label_words") else ""
        soft = " (soft)" if m.get("soft") else ""
        # a member's calibration or demonstrations change its scores as much as its text does
        lines.append(f"{indent}  {w / total:.3f}  {flat(m.get('prompt', ''), width)}{words}{soft}{options_note(m)}")
    return lines


def budget_line(s: dict) -> str:
    """A run summary's budget line. The final checks (the top candidates on all of dev) always finish and so
    can spend past --max-evals: the line says how much of the total they took (#30)."""
    used = s["budget_used"]
    text = f"budget used: {used['candidates']} candidates, {used['evals']} example-evaluations"
    searched = s.get("search_evals")
    if searched is not None and used["evals"] > searched:
        limit = (s.get("budget") or {}).get("max_evals")
        past = f"; --max-evals {limit} bounds the search, not the final checks" if limit else ""
        text += f" ({searched} searching, {used['evals'] - searched} in the final checks on all of dev{past})"
    return text + f", {used['seconds']:.0f} s"


def full_prompt_lines(cand: dict) -> list[str]:
    """A prompt whole and verbatim between two rules (so it can be copied as it is), then everything else that
    changes its scores: label words, soft prompt, calibration, demonstrations, ensemble members (`show --full`)."""
    rule = "-" * 40
    lines = [rule, *cand["prompt"].split("\n"), rule]
    if cand.get("label_words"):
        lines.append(f"label words: {', '.join(cand['label_words'])}")
    if cand.get("soft"):
        lines.append(f"soft prompt: {cand['soft']} (trained vectors prepended; the text is its nearest-token reading)")
    for key in ("calibrate", "demos"):
        if cand.get(key):
            lines.append(f"{key}: {cand[key]}")
    for c, words in enumerate(cand.get("verbalizer") or []):
        lines.append(f"verbalizer, class {c}: {', '.join(words)}")
    if cand.get("members"):
        lines += members_lines(cand, indent="", width=10**6)
    if not any(cand.get(k) for k in ("label_words", "soft", "calibrate", "demos", "members", "verbalizer")):
        lines.append("options: none (the task's label words, no demonstrations or calibration)")
    return lines
