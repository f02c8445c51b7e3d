"""Plain prompts: whose text alone is the whole prompt (no calibration, no demonstration rule, no ensemble,
no soft prompt), for users who paste the result into a generation API.

- ``--plain`` (``plain=True`` in the API, ``"plain": true`` in config.json) runs a search limited to them: the
  built-in strategies are told not to propose the options, and every strategy's proposals are filtered, so a
  plugin's too. ``ensemble`` is refused (it is nothing but an option).
- ``lacks`` says what a candidate's text alone leaves out; ``best_prompt.txt`` never drops it silently: a plain
  winner is written as its text, any other with a header naming what the text lacks and what it scored alone.
"""

from __future__ import annotations

from . import strategy as strategy_registry
from .candidate import Candidate
from .errors import PromptSearchError
from .strategy import SearchContext, Strategy

# What the built-in strategies would otherwise propose as options (unless the user set these themselves).
NO_OPTIONS = {"templates": {"calibrations": []}, "clarify": {"calibrations": [], "demo_rules": []}}
HEADER = "#"  # header lines of best_prompt.txt start with this; the text starts after the '# ---' line


def is_plain(c: Candidate) -> bool:
    return not (c.calibrate or c.demos or c.members or c.soft or c.verbalizer)


def lacks(c: Candidate | dict) -> list[str]:
    """What the text alone leaves out of how the candidate is scored, one phrase each ([] for a plain one)."""
    c = Candidate.from_json(c) if isinstance(c, dict) else c
    out = []
    if c.members:
        out.append(f"an ensemble of {len(c.members)} prompts (the text is its first member's; the label "
                   "scores are the members' weighted mean)")
    if c.demos:
        rule = c.demos.split(":")[0]
        out.append(f"demonstrations {c.demos}: " + {
            "similar": "train rows most similar to each input, chosen per input",
            "similar-per-class": "the train rows of each class most similar to each input, chosen per input",
        }.get(rule, "train rows per class, put in front"))
    modes = list(dict.fromkeys(m.calibrate for m in (c, *c.members) if m.calibrate))  # an ensemble's members' too
    if modes:
        out.append(f"calibration ({', '.join(modes)}): the label scores corrected for the prompt's own bias"
                   + (" (each member's)" if c.members and not c.calibrate else ""))
    if any(m.verbalizer for m in (c, *c.members)):
        out.append("a verbalizer: each class's score sums the probabilities of more words than its label word")
    if c.soft:
        out.append("a trained soft prompt: vectors before the text, which is only their nearest-token reading")
    return out


def text_alone(c: Candidate) -> Candidate:
    """The candidate its text alone makes: prompt and label words, no option."""
    return Candidate(c.prompt, c.label_words)


def plain_strategies(config: dict) -> list[Strategy]:
    names = config["strategies"]
    if "ensemble" in names:
        raise PromptSearchError("--plain keeps prompts whose text is the whole prompt; an ensemble is several "
                                "prompts: drop --strategy ensemble")
    out = []
    for name in names:
        options = {**NO_OPTIONS.get(name, {}), **(config["options"].get(name) or {})}
        out.append(PlainOnly(strategy_registry.make(name, options)))
    return out


class PlainOnly(Strategy):
    """A strategy whose proposals are kept only when plain; it asks again while a batch had none."""

    def __init__(self, inner: Strategy):
        self.inner = inner
        self.name, self.description, self.final = inner.name, inner.description, inner.final

    def reserve(self, task) -> int:
        return self.inner.reserve(task)

    def start(self, context: SearchContext) -> None:
        self.inner.start(context)

    def propose(self, context: SearchContext, n: int) -> list[Candidate]:
        while True:
            proposals = self.inner.propose(context, n)
            if not proposals:
                return proposals
            kept = [c for c in proposals if is_plain(c)]
            if kept:
                return kept

    def observe(self, context: SearchContext, trials) -> None:
        self.inner.observe(context, trials)


def text_alone_score(task, scorer, best: Candidate) -> dict:
    """What the winner's text alone scores on test (reported only: it steers nothing); a test row too long for
    the model's context with that text is scored as wrong, and counted (``too_long``)."""
    from .metrics import summarize
    from .scoring.scorer import evaluate_fitting

    alone = text_alone(best)
    results, too_long = evaluate_fitting(scorer, task, alone, task.test)
    return {"prompt": alone.prompt, **({"too_long": len(too_long)} if too_long else {}),
            "test": summarize(task.metric, results, task.test, alone.label_words or task.label_words).to_json()}


def best_prompt_text(best: dict) -> str:
    """best_prompt.txt: the text of a plain winner; any other with a header saying what the text lacks."""
    missing = lacks(best) if best.get("prompt") else []
    if not missing:
        return (best.get("prompt") or "") + "\n"
    from .format import fmt_score

    lines = ["# promptsearch: the text below alone is NOT the whole prompt that won. It was scored with:"]
    lines += [f"#   - {m}" for m in missing]
    if best.get("test"):
        lines.append(f"# with them it scored test {fmt_score(best['test'])}")
    alone = (best.get("text_alone") or {}).get("test")
    lines.append(f"# the text alone scored test {fmt_score(alone)}" if alone else "# the text alone was not scored")
    lines += ["# For the whole prompt: promptsearch export RUN -o prompt.json, then promptsearch predict --artifact",
              "# prompt.json (or ps.load_prompt in Python). Search with --plain for a prompt whose text is all of it.",
              "# --- the prompt text starts on the next line"]
    return "\n".join(lines) + "\n" + best["prompt"] + "\n"
