"""Built-in phrase libraries shared by the strategies: instructions, formats, clarifiers.

Entries are template fragments: ``{input}`` is the example slot; ``<labels>`` is replaced by the
task's label words ("negative or positive") before use. Nothing here is passed to str.format.
"""

from __future__ import annotations

from promptsearch.template import escape

# Input/answer formats: where the input goes and what cue precedes the answer.
CLASSIFICATION_FORMATS = [
    "Review: {input}\nSentiment:",
    "Text: {input}\nLabel:",
    "Input: {input}\nLabel:",
    "{input}\nAnswer:",
    "Sentence: {input}\nCategory:",
    "Question: {input}\nType:",
    "Article: {input}\nTopic:",
    "{input} It was",
    "{input} All in all, it was",
    "{input}\nThe answer is",
    "Text: {input}\nQuestion: Which label fits best: <labels>?\nAnswer:",
]
GENERATION_FORMATS = [
    "Input: {input}\nOutput:",
    "Q: {input}\nA:",
    "{input}\nAnswer:",
    "Input: {input}\nAnswer:",
    "{input} ->",
    "Word: {input}\nResult:",
]

# Instruction phrasings (placed before the format).
CLASSIFICATION_INSTRUCTIONS = [
    "Classify the text as <labels>.",
    "Decide whether the text is <labels>.",
    "Read the text and choose the correct label: <labels>.",
    "What is the category of the following text? Options: <labels>.",
    "Label the following example.",
]
GENERATION_INSTRUCTIONS = [
    "Follow the instruction for the input.",
    "Give the correct output for the input.",
    "Answer the following.",
]

# Clarifying sentences ("keep what helps").
CLARIFIERS = [
    "Answer with one word.",
    "Respond concisely.",
    "Use only the labels <labels>.",
    "Give only the answer, nothing else.",
    "Think about the overall meaning before answering.",
    "Be precise.",
    "Give a more abstract answer.",
    "Do not explain.",
]


def check_calibrations(calibrations) -> None:
    """A strategy's ``calibrations`` option: calibration modes (scoring/calibration.py), each known."""
    from promptsearch.scoring.calibration import MODES

    for mode in calibrations:
        if mode not in MODES:
            raise ValueError(f"calibrations: {mode!r} is not a calibration; use {', '.join(MODES)}")


def fill_labels(fragment: str, label_words) -> str:
    """Put the task's label words where a fragment says <labels>; drop fragments that need them when there are none."""
    if "<labels>" not in fragment:
        return fragment
    words = list(label_words or ())
    if not words:
        return ""
    spoken = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
    return fragment.replace("<labels>", escape(spoken))


def formats(task) -> list[str]:
    base = CLASSIFICATION_FORMATS if task.kind == "classification" else GENERATION_FORMATS
    return [f for f in (fill_labels(x, task.label_words) for x in base) if f]


def instructions(task) -> list[str]:
    """The task's own instruction (seed prompt's and description's) first, then the library's."""
    own = [escape(task.description.strip())] if task.description.strip() else []
    base = CLASSIFICATION_INSTRUCTIONS if task.kind == "classification" else GENERATION_INSTRUCTIONS
    out = []
    for x in own + [fill_labels(x, task.label_words) for x in base]:
        if x and x not in out:
            out.append(x)
    return out


def clarifiers(task) -> list[str]:
    out = [fill_labels(x, task.label_words) for x in CLARIFIERS]
    return [x for x in out if x]


# Function words are never label words: they win tiny dev subsets by predicting one class and
# carry no meaning (AutoPrompt's label search proposed "negative/the" on SST-2).
STOPWORDS = frozenset(["the", "and", "for", "but", "not", "you", "your", "his", "her", "its", "our", "their", "this", "that", "these", "those", "with", "from", "into", "onto", "about", "above", "after", "again", "against", "all", "any", "are", "was", "were", "been", "being", "have", "has", "had", "having", "does", "did", "doing", "would", "should", "could", "can", "will", "just", "than", "then", "there", "here", "when", "where", "which", "who", "whom", "what", "why", "how", "very", "too", "also", "only", "own", "same", "such", "some", "more", "most", "other", "each", "few", "both", "nor", "off", "out", "over", "under", "until", "while", "once", "further", "yes"])


# Words that ask a question stay in: "who", "where", "how many" are what tells a question's kind from another's.
_CONTRAST_STOP = STOPWORDS - {"what", "who", "whom", "where", "when", "why", "how", "which"}


def distinctive_words(rows, n_classes: int, per_class: int = 5, min_rows: int = 2) -> list[list[str]]:
    """Per class, the words (lower-case, 3+ letters) of its rows that most set them apart from the other classes'
    rows: the smoothed log-ratio of the share of the class's rows that contain the word to the share of the others'.
    A word must occur in ``min_rows`` of the class's rows (one row's words are luck). Read from labels only, so the
    same for any task: no word list of any task."""
    import math
    import re

    docs = [(set(re.findall(r"[a-z]{3,}", ex.input.lower())) - _CONTRAST_STOP, ex.label) for ex in rows]
    out = []
    for c in range(n_classes):
        inside = [words for words, label in docs if label == c]
        outside = [words for words, label in docs if label != c]
        scored = []
        for word in set().union(*inside) if inside else ():
            a, b = sum(word in d for d in inside), sum(word in d for d in outside)
            ratio = math.log((a + 0.5) / (len(inside) + 1)) - math.log((b + 0.5) / (len(outside) + 1))
            if a >= min_rows and ratio > 0:
                scored.append((-ratio, -a, word))  # ties: the commoner word, then alphabetical (deterministic)
        out.append([word for _, _, word in sorted(scored)[:per_class]])
    return out


def contrast_instruction(task, rows) -> str:
    """An instruction written from the contrast between the classes in labelled ``rows``: the label words, then
    each class's distinctive words ("Texts about gaza, troops are world."). Empty when it cannot say something
    for every class. Escaped: row words are literal text in a template."""
    words = list(task.label_words or ())
    if task.kind != "classification" or len(words) < 2:
        return ""
    cues = distinctive_words([ex for ex in rows if ex.label is not None], len(words))
    if not all(cues):
        return ""
    sentences = " ".join(f"Texts about {', '.join(cue)} are {word}." for word, cue in zip(words, cues))
    return fill_labels("Each text is one of: <labels>.", words) + "\n" + escape(sentences)
