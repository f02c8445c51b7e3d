import pytest

from promptsearch.errors import PromptSearchError
from promptsearch.template import escape, parse, prefix, render


def test_render_substitutes_every_slot_and_keeps_braces_in_input():
    assert render("Q: {input}\nA:", "x") == "Q: x\nA:"
    assert render("{input} and {input}", "a") == "a and a"
    assert render("Review: {input}", "{input} {0.__class__}") == "Review: {input} {0.__class__}"


def test_double_braces_escape():
    assert render("{{json}}: {input} }}", "v") == "{json}: v }"
    assert render(escape("{a}") + " {input}", "b") == "{a} b"


@pytest.mark.parametrize("bad", ["no slot here", "{input", "{input} {", "x } {input}", "{name} {input}", "{0} {input}", "{input.__class__}"])
def test_bad_templates_are_clear_errors(bad):
    with pytest.raises(PromptSearchError):
        parse(bad)


def test_prefix_is_text_before_first_slot():
    assert prefix("Instruction.\n\n{input}\nA:") == "Instruction.\n\n"
    assert prefix("{input}") == ""
