"""clarify's instruction written from the contrast between classes (library.distinctive_words,
contrast_instruction): words read from labelled rows, escaped, and never from the rows that score."""
from dataclasses import replace

from promptsearch.task import Example, Task
from strategies import clarify, library


def _rows(texts_by_label):
    return tuple(Example(text, str(label), label=label, id=f"r{label}-{i}")
                 for label, texts in enumerate(texts_by_label) for i, text in enumerate(texts))


ROWS = _rows([
    ["Who wrote the rain song?", "Who was the first king?", "Who sang it in the rain?"],
    ["Where is the tallest tower in the rain?", "Where was the first king born?", "Where does rain fall most?"],
])


def _task(train, dev=()):
    return Task(name="qs", kind="classification", train=train, dev=dev or train[:1], test=(), metric="accuracy",
                seed_prompt="Q: {input}\nA:", label_words=("person", "place"))


def test_distinctive_words_set_a_class_apart_and_keep_question_words():
    cues = library.distinctive_words(ROWS, 2)
    assert cues[0][0] == "who" and cues[1][0] == "where"  # in every row of its class, none of the other's
    assert all("rain" not in c and "first" not in c for c in cues)  # as common in both classes: tells nothing
    assert all("the" not in c for c in cues)  # a function word never
    # one row's word is luck: "wrote" is in one row only
    assert "wrote" not in cues[0]


def test_contrast_instruction_names_every_class_and_is_escaped():
    rows = _rows([["{x} who a", "{x} who b"], ["where c", "where d"]])
    text = library.contrast_instruction(_task(rows), rows)
    assert text.startswith("Each text is one of: person or place.\n")
    assert "Texts about who are person." in text and "Texts about where are place." in text
    from promptsearch.template import parse
    parse(text + "\n{input}")  # braces in row words would break the template: there are none here, and escape holds
    braced = _rows([["{who} a", "{who} b"], ["where c", "where d"]])
    assert "{" not in library.contrast_instruction(_task(braced), braced).replace("{{", "")
    # a class with nothing of its own: no instruction rather than a half one
    flat = _rows([["same words", "same words"], ["same words", "where x"]])
    assert library.contrast_instruction(_task(flat), flat) == ""
    assert library.contrast_instruction(replace(_task(rows), kind="generation"), rows) == ""


def test_clarify_reads_the_contrast_from_train_rows_that_do_not_score():
    task = _task(ROWS)
    assert "Texts about who" in clarify.contrast(replace(task, dev=(ROWS[-1],)))
    # every train row scores too (selection holdout/labelled): nothing is left to read the contrast from
    assert clarify.contrast(replace(task, dev=ROWS)) == ""


def test_the_contrast_edit_is_proposed_on_classification_when_asked():
    from promptsearch.candidate import Candidate

    class Ctx:
        task = _task(ROWS, dev=(ROWS[0],))
        scorer = None

    base = Candidate("Q: {input}\nA:")
    off = clarify.ClarifyContext(draws=0, demo_rules=())
    on = clarify.ClarifyContext(draws=0, demo_rules=(), contrast=True)
    assert not any(c.edit == "contrast" for c in off.edits(Ctx, base))
    edits = [c for c in on.edits(Ctx, base) if c.edit == "contrast"]
    assert len(edits) == 1 and edits[0].prompt.endswith("\nQ: {input}\nA:") and "Texts about where" in edits[0].prompt
