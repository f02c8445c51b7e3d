"""The one set of rules for every number a run reads, from the command line or from a file: whole numbers
where a count is meant, finite (no NaN, no infinity: JSON cannot hold them and a NaN compares false with
everything, so a limit of NaN is no limit), and within a range that makes sense. ``racing.eta`` below 2 would
never grow a rung (a search that loops until memory runs out); a batch of 0 scores nothing."""

from __future__ import annotations

import math

from .errors import PromptSearchError

# Label words (task.check_label_words, an artifact's): each row is scored once per class whose word is several
# tokens, on the prompt and the word, so a 20,000-character word took minutes a row and thousands of classes as
# long. Label words are short answers; long or open ones are a generation task's.
MAX_CLASSES = 1000
MAX_LABEL_CHARS = 200

# name -> (whole number?, least, most); None: no bound
RULES = {
    "batch_size": (True, 1, 1024),
    "proposals_per_round": (True, 1, 10_000),
    "top_k": (True, 1, 10_000),
    "seed": (True, 0, 2**63 - 1),
    "budget.max_candidates": (True, 1, None),
    "budget.max_evals": (True, 1, None),
    "budget.max_seconds": (False, 1, None),
    "budget.max_tokens": (True, 1, None),
    "racing.min_examples": (True, 1, None),
    "racing.eta": (True, 2, 1000),
    "served.concurrency": (True, 1, 256),
    "served.timeout": (False, 0.1, 86_400),
    "limit": (True, 1, None),  # `eval --limit`, evaluate(limit=): the first N examples; 0 would score none
}


def check(name: str, value, where: str):
    """The value if it keeps the rule for ``name``; else one line naming where it came from."""
    whole, least, most = RULES[name]
    kind = "a whole number" if whole else "a number"
    ok_type = not isinstance(value, bool) and (isinstance(value, int) or (not whole and isinstance(value, float)))
    if not ok_type or (isinstance(value, float) and not math.isfinite(value)):
        raise PromptSearchError(f"{where}: must be {kind}{_range(least, most)}, not {value!r:.40}")
    if (least is not None and value < least) or (most is not None and value > most):
        raise PromptSearchError(f"{where}: {value!r} is out of range; it must be {kind}{_range(least, most)}")
    return value


def _range(least, most) -> str:
    if least is None and most is None:
        return ""
    if most is None:
        return f" of at least {least:g}"
    if least is None:
        return f" of at most {most:g}"
    return f" from {least:g} to {most:g}"


def check_given(where: str = "", **values) -> None:
    """Keyword arguments of the Python API under RULES: ``check_given(batch_size=b, limit=n)``; None is the default."""
    for name, value in values.items():
        rule = name if name in RULES else f"served.{name}" if f"served.{name}" in RULES else f"budget.{name}"
        if value is not None:
            check(rule, value, f"{where}{name}")


def check_config(config: dict, where: str) -> None:
    """Every number of a run config (config.json, or one built from the command line) against RULES."""
    for name in RULES:
        section, _, key = name.rpartition(".")
        holder = config.get(section) if section else config
        if isinstance(holder, dict) and key in holder and holder[key] is not None:
            check(name, holder[key], f"{where} {name}" if where else name)


# ---- strategy options (-o STRATEGY.OPTION=VALUE, the API's ``options``, config.json's "options") -------------
# Each option's type is its constructor's annotation (int, float, str, bool, a list; "| None" where null is
# allowed); its range is here. A whole-number option of a strategy not listed here (a plugin's) keeps
# OPTION_WHOLE: a count far past any use is a run that never ends or runs out of memory, not a setting.
OPTION_WHOLE = (True, 0, 1_000_000)
OPTION_NUMBER = (False, None, None)
OPTION_RULES = {
    "ape.proposals": (True, 1, 1000), "ape.rounds": (True, 1, 1000), "ape.per_round": (True, 1, 1000),
    "ape.history": (True, 1, 1000), "ape.exemplars": (True, 1, 1000), "ape.max_input_words": (True, 1, 100_000),
    "ape.meta_tokens": (True, 1, 4096), "ape.demo_counts[]": (True, 1, 1000),
    "autoprompt.n_triggers": (True, 1, 1000), "autoprompt.top_k": (True, 1, 100_000),
    "autoprompt.batch_size": (True, 1, 1024), "autoprompt.iterations": (True, 0, 100_000),
    "autoprompt.proposals": (True, 1, 1000), "autoprompt.fluency": (False, 0, 1e6),
    "autoprompt.label_candidates": (True, 1, 1000), "autoprompt.label_examples": (True, 1, 100_000),
    "clarify.bases": (True, 1, 1000), "clarify.demo_counts[]": (True, 1, 1000), "clarify.draws": (True, 0, 1000),
    "clarify.rounds": (True, 1, 1000), "clarify.verbalizer_size": (True, 1, 100),
    "ensemble.pool": (True, 2, 1000), "ensemble.max_members": (True, 2, 100),
    "evolution.population": (True, 1, 10_000), "evolution.tournament": (True, 1, 1000),
    "evolution.elites": (True, 0, 10_000), "evolution.patience": (True, 1, 100_000),
    "evolution.similarity": (False, 0, 1), "evolution.library_seeds": (True, 0, 100_000),
    "evolution.meta_tokens": (True, 1, 4096), "evolution.max_generations": (True, 1, 100_000),
    "refine.bases": (True, 1, 1000),
    "soft-prompt.n_virtual_tokens": (True, 1, 1000), "soft-prompt.lr": (False, 0, 1000),
    "soft-prompt.epochs": (True, 1, 100_000), "soft-prompt.batch_size": (True, 1, 1024),
    "soft-prompt.patience": (True, 1, 100_000), "soft-prompt.eval_every": (True, 1, 10**9),
    "soft-prompt.dev_examples": (True, 1, 10**9), "soft-prompt.max_seconds": (False, 1, None),
    "templates.top": (True, 1, 1000), "templates.label_candidates": (True, 1, 1000),
    "templates.label_examples": (True, 1, 100_000), "templates.verbalizer_size": (True, 1, 100),
}
_KINDS = {"int": "a whole number", "float": "a number", "str": "a string", "bool": "true or false",
          "list": "a list", "None": "null"}


def option_kinds(annotation, default) -> list[str]:
    """What an option's value may be, from its constructor's annotation (a string under ``from __future__
    import annotations``) or, without one, from its default: some of int, float, str, bool, list, None."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", None)
    if annotation is None or text in (None, "_empty", "Any", "object"):
        if default is None:
            return []
        text = "list" if isinstance(default, (list, tuple)) else type(default).__name__
    kinds = []
    for part in text.replace("Optional[", "None | ").replace("]", " ").split("|"):
        word = part.strip().split("[")[0].strip()
        word = {"tuple": "list", "Sequence": "list", "NoneType": "None"}.get(word, word)
        if word not in _KINDS:
            return []  # a type this check does not know: the constructor checks it
        kinds.append(word)
    return kinds


def check_option(strategy: str, name: str, value, annotation, default):
    """One strategy option's value against its type and OPTION_RULES; one line naming it if it breaks them."""
    where = f"option {strategy}.{name}"
    kinds = option_kinds(annotation, default)
    if not kinds:
        return value
    if value is None:
        if "None" in kinds:
            return value
    elif isinstance(value, bool):
        if "bool" in kinds:
            return value
    elif isinstance(value, int) and ("int" in kinds or "float" in kinds):
        rule = OPTION_RULES.get(f"{strategy}.{name}", OPTION_WHOLE if "int" in kinds else OPTION_NUMBER)
        return _check_rule(rule, value, where)
    elif isinstance(value, float) and "float" in kinds:
        return _check_rule(OPTION_RULES.get(f"{strategy}.{name}", OPTION_NUMBER), value, where)
    elif isinstance(value, str) and "str" in kinds:
        return value
    elif isinstance(value, (list, tuple)) and "list" in kinds:
        items = list(default) if isinstance(default, (list, tuple)) else []
        if items and all(isinstance(x, str) for x in items):
            bad = [x for x in value if not isinstance(x, str)]
            if bad:
                raise PromptSearchError(f"{where}: must be a list of strings, not {value!r:.60}")
        elif items and all(isinstance(x, int) and not isinstance(x, bool) for x in items):
            # an empty list is a setting (clarify.demo_counts=[]: no drawn demonstrations); a strategy that needs
            # one entry at least (ape) says so in its constructor
            rule = OPTION_RULES.get(f"{strategy}.{name}[]", OPTION_WHOLE)
            for x in value:
                _check_rule((True, *rule[1:]), x, f"{where}: an entry")
        return list(value)
    wanted = " or ".join(_KINDS[k] for k in kinds)
    rule = OPTION_RULES.get(f"{strategy}.{name}") if "int" in kinds or "float" in kinds else None
    raise PromptSearchError(f"{where}: must be {wanted}{_range(*rule[1:]) if rule else ''}, not {value!r:.60}")


def _check_rule(rule, value, where: str):
    whole, least, most = rule
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or (whole and not isinstance(value, int)) or not isinstance(value, (int, float)) \
            or (isinstance(value, float) and not math.isfinite(value)):
        raise PromptSearchError(f"{where}: must be {kind}{_range(least, most)}, not {value!r:.40}")
    if (least is not None and value < least) or (most is not None and value > most):
        raise PromptSearchError(f"{where}: {value!r:.40} is out of range; it must be {kind}{_range(least, most)}")
    return value
