"""Comments -> edits: the instructions that low ratings' comments ask for ("too long" -> "Respond concisely.")."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from ..errors import PromptSearchError
from ..files import read_json
from .ratings import Rating

log = logging.getLogger(__name__)

LOW = 3  # comments on ratings at or below this become edits


# (pattern, instruction): the first patterns win when several match the same comment.
BUILTIN_EDITS: list[tuple[str, str]] = [
    (r"too (long|verbose|wordy|detailed)|shorter|rambl|less detail|concise", "Respond concisely."),
    (r"explain|explanation|extra text|chatty", "Do not explain."),
    (r"too (short|brief|terse)|more detail|elaborate|longer", "Give a detailed answer."),
    (r"too (abstract|vague|general)|be (more )?specific|more (concrete|specific)", "Give a concrete, specific answer."),
    (r"more abstract|too (specific|concrete|literal)|more general", "Give a more abstract answer."),
    (r"too (formal|stiff)|friendlier|more casual", "Use a friendly, natural tone."),
    (r"tone|rude|too (casual|informal)|impolite|more formal|polite", "Use a polite, formal tone."),
    (r"one word|single word", "Answer with one word."),
    (r"repeat|repetit|copies|echo", "Do not repeat the input."),
    (r"format|extra words|only the answer", "Give only the answer, nothing else."),
    (r"wrong|incorrect|mistake|not right|false", "Be precise."),
]


def load_edit_map(path) -> list[tuple[str, str]]:
    """A user's ``{"regex": "instruction"}`` JSON file, checked."""
    data = read_json(path)
    if not data:
        raise PromptSearchError(f"{path}: holds no edits; give at least one comment pattern")
    if not all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in data.items()):
        raise PromptSearchError(f"{path}: must be a JSON object mapping a comment pattern to an instruction")
    for pattern in data:
        try:
            re.compile(pattern)
        except re.error as e:
            raise PromptSearchError(f"{path}: pattern {pattern!r} is not a valid regular expression ({e})") from None
    return [(k, v.strip()) for k, v in data.items()]


@dataclass
class Edit:
    instruction: str
    comments: list[str] = field(default_factory=list)
    source: str = "built-in"  # built-in, user, or model

    def to_json(self) -> dict:
        return {"instruction": self.instruction, "comments": self.comments, "source": self.source}


MODEL_EDIT_PROMPT = ("A user read an answer and complained: \"{comment}\"\n"
                     "Write one short instruction that would fix the answer.\nInstruction:")


def comment_edits(ratings: list[Rating], mapping: list[tuple[str, str]] | None = None, propose=None,
                  low: int = LOW) -> list[Edit]:
    """Instructions asked for by the comments on low ratings, most asked-for first. User patterns are tried
    before the built-in ones; a comment nothing matches goes to ``propose(comment) -> str`` when given."""
    table = [(p, e, "user") for p, e in (mapping or [])] + [(p, e, "built-in") for p, e in BUILTIN_EDITS]
    edits: dict[str, Edit] = {}
    for r in ratings:
        comment = r.comment.strip()
        if not comment or r.rating > low:
            continue
        hit = None
        for pattern, instruction, source in table:
            if re.search(pattern, comment, flags=re.IGNORECASE):
                hit = (instruction, source)
                break
        if hit is None and propose is not None:
            proposed = _clean_instruction(propose(comment))
            hit = (proposed, "model") if proposed else None
        if hit is None:
            log.info("comment %r maps to no edit", comment)
            continue
        edits.setdefault(hit[0], Edit(hit[0], source=hit[1])).comments.append(comment)
    return sorted(edits.values(), key=lambda e: -len(e.comments))


def _clean_instruction(text: str) -> str:
    text = (text or "").strip().strip('"').strip()
    text = text.split("\n")[0].strip()
    if not text or len(text) > 120 or len(text.split()) < 2:
        return ""
    return text if text[-1] in ".!" else text + "."


def model_proposer(scorer, charge=None):
    """``propose(comment)``: the model's own one-line instruction for a comment (greedy)."""

    def propose(comment: str) -> str:
        if charge is not None:
            charge(1)
        return scorer.complete([MODEL_EDIT_PROMPT.replace("{comment}", comment)], max_new_tokens=24)[0]

    return propose
