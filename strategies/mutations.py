"""Variation operators for the evolution strategy: small pure functions on prompt strings.

A prompt is split into an editable *instruction* (the free-text lines at its top) and a fixed *rest*
(demonstrations, the line holding ``{input}`` and the answer cue after it, e.g. ``"\\nSentiment:"``).
Operators edit only the instruction, at phrase boundaries (sentences and clauses), in the spirit of
GrIPS (Prasad et al. 2023): delete, swap, add, paraphrase; crossover joins the head of one parent's
instruction to the tail of another's. Every operator takes a ``random.Random`` and returns the new
prompt, or ``None`` when it does not apply; a returned prompt is always a valid template.

The model-proposed operators (EvoPrompt, Guo et al. 2024) are split in two pure halves: building the
meta-prompt text (``meta_paraphrase`` / ``meta_crossover``) and cleaning what the model answered
(``clean_proposal``); the strategy runs the model in between.
"""

from __future__ import annotations

import random
import re
from itertools import pairwise

from promptsearch.errors import PromptSearchError
from promptsearch.template import escape, validate

# ---- splitting a prompt --------------------------------------------------------------------------


def _slot_index(prompt: str) -> int:
    """Character index of the first real ``{input}`` slot (``{{input}}`` is a literal, skipped)."""
    i = 0
    while i < len(prompt):
        if prompt.startswith("{{", i) or prompt.startswith("}}", i):
            i += 2
        elif prompt.startswith("{input}", i):
            return i
        else:
            i += 1
    return -1


def split_prompt(prompt: str) -> tuple[str, str]:
    """(instruction, rest) with ``join_prompt(instruction, rest) == prompt``.

    The rest starts at the first line that belongs to the input/answer format or to a demonstration:
    the line holding ``{input}``, or an earlier line starting with one of the format's field labels
    ("Review:", "Sentiment:") or containing its literal text around the slot (" It was")."""
    slot = _slot_index(prompt)
    if slot < 0:
        return "", prompt
    start = prompt.rfind("\n", 0, slot) + 1
    head, fmt = prompt[:start], prompt[start:]
    labels, pieces = set(), []
    for line in fmt.split("\n"):
        label = line.split(":", 1)[0] if ":" in line else ""
        if label and "{" not in label and len(label) <= 30:
            labels.add(label.strip() + ":")
    first = fmt.split("\n", 1)[0]
    before, _, after = first.partition("{input}")
    pieces = [p.strip() for p in (before, after) if len(p.strip()) >= 3 and "{" not in p]
    lines = head.split("\n")[:-1] if head else []
    keep = 0
    for line in lines:
        stripped = line.strip()
        if any(stripped.startswith(lab) for lab in labels) or any(p in stripped for p in pieces):
            break
        keep += 1
    # drop trailing blank lines from the instruction: they belong to the rest
    while keep and not lines[keep - 1].strip():
        keep -= 1
    instruction = "\n".join(lines[:keep])
    rest = prompt[len(instruction) + (1 if keep else 0):] if keep else prompt
    return instruction, rest


def join_prompt(instruction: str, rest: str) -> str:
    instruction = instruction.strip()
    return f"{instruction}\n{rest}" if instruction else rest


# ---- phrases -------------------------------------------------------------------------------------

_BOUNDARY = re.compile(r"(?<=[.!?])\s+|\n+|(?<=[,;:])\s+")


def phrases(instruction: str) -> list[str]:
    """Sentences and clauses of an instruction, each with its own punctuation, no separators."""
    return [p.strip() for p in _BOUNDARY.split(instruction) if p and p.strip()]


def join_phrases(parts: list[str]) -> str:
    """Join phrases with a space; a phrase after sentence-final punctuation starts with a capital."""
    out = ""
    for p in parts:
        p = p.strip()
        if not p:
            continue
        if not out or out[-1] in ".!?":
            p = p[0].upper() + p[1:]
        elif p[:1].isupper() and p[1:2].islower():  # a sentence start moved mid-sentence
            p = p[0].lower() + p[1:]
        out = f"{out} {p}" if out else p
    out = out.strip(" ,;:")
    return out


def tidy(text: str) -> str:
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" ([,.;:!?])", r"\1", text)
    text = re.sub(r"([,;:])(?=[.!?]|$)", "", text)
    return text.strip()


def _finish(instruction: str, rest: str, original: str) -> str | None:
    """The edited prompt, if it is a valid template and differs from the original."""
    prompt = join_prompt(tidy(instruction), rest)
    if prompt == original:
        return None
    try:
        validate(prompt)
    except PromptSearchError:
        return None
    return prompt


# ---- phrase-level operators (GrIPS) ------------------------------------------------------------


def delete(prompt: str, rng: random.Random) -> str | None:
    """Drop one phrase of the instruction (the instruction keeps at least one)."""
    instruction, rest = split_prompt(prompt)
    parts = phrases(instruction)
    if len(parts) < 2:
        return None
    parts.pop(rng.randrange(len(parts)))
    return _finish(join_phrases(parts), rest, prompt)


def swap(prompt: str, rng: random.Random) -> str | None:
    """Exchange two phrases of the instruction."""
    instruction, rest = split_prompt(prompt)
    parts = phrases(instruction)
    if len(parts) < 2:
        return None
    i, j = rng.sample(range(len(parts)), 2)
    a, b = parts[i], parts[j]
    # punctuation stays in place: the sentence shape survives the swap
    pa, pb = _trail(a), _trail(b)
    parts[i], parts[j] = b[: len(b) - len(pb)] + pa, a[: len(a) - len(pa)] + pb
    return _finish(join_phrases(parts), rest, prompt)


def add(prompt: str, phrase: str, rng: random.Random) -> str | None:
    """Insert a phrase (a template fragment) at a random phrase boundary of the instruction."""
    phrase = tidy(phrase)
    if not phrase or "\n" in phrase:
        return None
    instruction, rest = split_prompt(prompt)
    if phrase.lower() in instruction.lower():
        return None
    parts = phrases(instruction)
    if parts and parts[-1][-1:] not in ".!?":
        parts[-1] += "."
    if phrase[-1:] not in ".!?":
        phrase += "."
    parts.insert(rng.randrange(len(parts) + 1), phrase)
    return _finish(join_phrases(parts), rest, prompt)


def _trail(p: str) -> str:
    m = re.search(r"[.!?,;:]+$", p)
    return m.group(0) if m else ""


# A small paraphrase table: each group holds interchangeable words or phrases (lowercase).
SYNONYMS: list[tuple[str, ...]] = [
    ("write", "output", "give", "return", "provide"),
    ("the opposite of", "the antonym of", "a word opposite in meaning to"),
    ("classify", "categorize", "label"),
    ("decide", "determine", "judge", "tell"),
    ("text", "sentence", "passage"),
    ("response", "reply"),
    ("correct", "right", "proper"),
    ("choose", "select", "pick"),
    ("first", "initial"),
    ("second", "2nd"),
    ("plurals", "plural forms"),
    ("plural", "plural form"),
    ("whether", "if"),
    ("sentiment", "feeling", "attitude"),
    ("following", "given"),
    ("word", "term"),
    ("only", "just"),
    ("one word", "a single word"),
    ("concisely", "briefly"),
    ("precise", "exact", "accurate"),
    ("translate", "convert"),
    ("number", "numeral"),
    ("letter", "character"),
    ("spelling", "letters"),
    ("find", "identify"),
    ("read", "look at"),
    ("category", "class", "type"),
    ("options", "choices"),
    ("do not explain", "no explanation"),
    ("nothing else", "no other text"),
    ("movie", "film"),
    ("meaning", "sense"),
    ("result", "outcome"),
    ("sum", "add"),
]
_SYNONYM_OF = {w: g for g in SYNONYMS for w in g}
_SYNONYM_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _SYNONYM_OF), key=len, reverse=True)) + r")\b",
                         re.IGNORECASE)


def paraphrase(prompt: str, rng: random.Random, table: dict | None = None) -> tuple[str, str] | None:
    """Replace one word or phrase of the instruction by a synonym from the table (case kept).
    Returns (prompt, "old->new"), or None when nothing in the instruction is in the table."""
    table = table or _SYNONYM_OF
    instruction, rest = split_prompt(prompt)
    pattern = _SYNONYM_RE if table is _SYNONYM_OF else re.compile(
        r"\b(" + "|".join(sorted(map(re.escape, table), key=len, reverse=True)) + r")\b", re.IGNORECASE)
    hits = list(pattern.finditer(instruction))
    if not hits:
        return None
    m = hits[rng.randrange(len(hits))]
    old = m.group(0)
    options = [w for w in table[old.lower()] if w != old.lower()]
    new = options[rng.randrange(len(options))]
    if old[0].isupper():
        new = new[0].upper() + new[1:]
    edited = instruction[: m.start()] + new + instruction[m.end():]
    out = _finish(edited, rest, prompt)
    return (out, f"{old.lower()}->{new.lower()}") if out else None


def crossover(first: str, second: str, rng: random.Random) -> str | None:
    """One-point crossover of two prompts at phrase boundaries: the head of the first's instruction
    joined to the tail of the second's, on the first's format (its rest)."""
    ia, rest = split_prompt(first)
    ib, _ = split_prompt(second)
    pa, pb = phrases(ia), phrases(ib)
    if not pa and not pb:
        return None
    cut_a = rng.randint(1 if pa else 0, len(pa))
    cut_b = rng.randint(0, max(0, len(pb) - 1)) if pb else 0
    parts = pa[:cut_a] + [p for p in pb[cut_b:] if p not in pa[:cut_a]]
    if parts and cut_a < len(parts) and parts[cut_a - 1][-1:] not in ".!?" and cut_a > 0:
        parts[cut_a - 1] += "."
    return _finish(join_phrases(parts), rest, first)


def swap_format(prompt: str, fmt: str) -> str | None:
    """The instruction on another input/answer format (a library format with ``{input}``)."""
    instruction, rest = split_prompt(prompt)
    if "\n\n" in rest:  # demonstrations are rendered in the old format: keep them consistent
        return None
    return _finish(instruction, fmt, prompt)


# ---- model-proposed operators (EvoPrompt) ------------------------------------------------------


def readable(instruction: str) -> str:
    """The instruction as a person (or the model) reads it: template braces unescaped."""
    return instruction.replace("{{", "{").replace("}}", "}")


META_PARAPHRASE = ("Rewrite this instruction in different words, keeping its meaning. "
                   "Reply with the new instruction only.\nInstruction: {0}")
META_CROSSOVER = ("Combine these two instructions into one new instruction. "
                  "Reply with the new instruction only.\nInstruction 1: {0}\nInstruction 2: {1}")
PLAIN_CUE = "\nNew instruction:"


def as_request(proposer, message: str) -> str:
    """A meta-prompt as the proposer reads it: its chat template when it has one, else plain text and a cue
    (a served proposer has no tokenizer here)."""
    tok = getattr(proposer, "tokenizer", None)
    if getattr(tok, "chat_template", None):
        return tok.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                       add_generation_prompt=True)
    return message + PLAIN_CUE


def meta_paraphrase(instruction: str) -> str:
    """The user message asking for a paraphrase (built by concatenation, not str.format of user text)."""
    head, _, tail = META_PARAPHRASE.partition("{0}")
    return head + readable(instruction) + tail


def meta_crossover(a: str, b: str) -> str:
    head, _, rest = META_CROSSOVER.partition("{0}")
    mid, _, tail = rest.partition("{1}")
    return head + readable(a) + mid + readable(b) + tail


_PREFIX = re.compile(r"^\s*(?:(?:new|rewritten|combined|revised|paraphrased)\s+)?"
                     r"(?:instructions?|answer|output|response)\s*(?:\d+\s*)?:\s*", re.IGNORECASE)
_DESCRIBED = re.compile(r"^(?:the\s+)?(?:new\s+|rewritten\s+|combined\s+)?(?:instructions?|task)\s+"
                        r"(?:is|are|was|would be)\s*:?\s+(?:to\s+)?", re.IGNORECASE)
_PREAMBLE = re.compile(r"^(sure|here|certainly|okay|ok|i )\b", re.IGNORECASE)


def clean_proposal(text: str, original: str = "", max_words: int = 40) -> str | None:
    """The model's reply made into an instruction, or None when it is not usable: first line,
    quotes, list markers and "New instruction:"-style prefixes stripped; must be readable English
    of 3..max_words words, not a preamble ("Sure, here is...") and not the original again."""
    line = text.strip().split("\n", 1)[0].strip() if text.strip() else ""
    for _ in range(3):
        line = _PREFIX.sub("", line).strip()
        line = re.sub(r"^(?:[-*•]|\d+[.)])\s+", "", line).strip()
        line = line.strip("\"'`“”‘’ ").strip()
    line = _DESCRIBED.sub("", line).strip().strip("\"'`“”‘’ ").strip()
    line = line[:1].upper() + line[1:]
    if not line or _PREAMBLE.match(line) or line.endswith(":"):
        return None
    words = line.split()
    letters = sum(c.isalpha() for c in line)
    if not 3 <= len(words) <= max_words or letters < 0.6 * len(line) or not line.isascii():
        return None
    if "{" in line or "}" in line or "input:" in line.lower():
        return None
    grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
    if len(grams) != len(set(grams)):  # the small model loops ("What is the answer to the question 'What is...")
        return None
    if original and _norm(line) == _norm(readable(original)):
        return None
    return escape(line)


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


# ---- similarity ----------------------------------------------------------------------------------


def shingles(text: str) -> set[str]:
    """Lowercase words and word pairs: a swap of two phrases changes the pairs, not the words."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return set(words) | {a + " " + b for a, b in pairwise(words)}


def jaccard(a: str, b: str) -> float:
    """Token Jaccard similarity of two prompts, on words and word pairs."""
    ta, tb = shingles(a), shingles(b)
    if not ta and not tb:
        return 1.0
    return len(ta & tb) / len(ta | tb)
