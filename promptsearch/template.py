"""Prompt templates: text with an ``{input}`` slot, rendered by safe substitution.

A template is never passed to ``str.format`` (which would let user text reach attributes and
indices); it is parsed here. ``{{`` and ``}}`` stand for literal braces.
"""

from __future__ import annotations

from .errors import PromptSearchError

SLOTS = ("input",)


def parse(template: str) -> list[str | None]:
    """Split a template into literal text pieces and ``None`` for each ``{input}`` slot."""
    parts: list[str | None] = []
    literal: list[str] = []
    i, n = 0, len(template)
    while i < n:
        ch = template[i]
        if ch == "{" and template.startswith("{{", i):
            literal.append("{")
            i += 2
        elif ch == "}" and template.startswith("}}", i):
            literal.append("}")
            i += 2
        elif ch == "{":
            end = template.find("}", i)
            name = template[i + 1 : end] if end != -1 else None
            if name not in SLOTS:
                shown = template[i : end + 1] if end != -1 else template[i : i + 20]
                raise PromptSearchError(
                    f"prompt has an unbalanced or unknown brace slot {shown!r} at character {i}; "
                    "use {input} for the input and {{ }} for literal braces"
                )
            parts.append("".join(literal))
            literal = []
            parts.append(None)
            i = end + 1
        elif ch == "}":
            raise PromptSearchError(f"prompt has an unbalanced '}}' at character {i}; write '}}}}' for a literal brace")
        else:
            literal.append(ch)
            i += 1
    parts.append("".join(literal))
    if None not in parts:
        raise PromptSearchError("prompt has no {input} slot; add {input} where the example's text goes")
    return parts


def validate(template: str) -> str:
    from .files import check_text

    check_text(template, "the prompt")  # command-line bytes that are not UTF-8 arrive as lone surrogates
    parse(template)
    return template


def render(template: str, text: str) -> str:
    """Put ``text`` into every ``{input}`` slot; braces inside ``text`` are taken literally."""
    return "".join(text if part is None else part for part in parse(template))


def escape(text: str) -> str:
    """Make literal text (a demonstration, a description) safe to embed in a template."""
    return text.replace("{", "{{").replace("}", "}}")


def prefix(template: str) -> str:
    """The literal text before the first ``{input}``: what every rendered prompt starts with."""
    return parse(template)[0] or ""


def prepend(prompt: str, sentence: str) -> str:
    """Put the sentence on its own line before the prompt."""
    return escape(sentence) + "\n" + prompt


def before_cue(prompt: str, sentence: str) -> str | None:
    """Put the sentence on its own line before the answer cue (the last line, if it holds no input)."""
    lines = prompt.split("\n")
    if len(lines) < 2 or "{input}" in lines[-1] or "{input}" not in "\n".join(lines[:-1]):
        return None
    return "\n".join(lines[:-1] + [escape(sentence), lines[-1]])

