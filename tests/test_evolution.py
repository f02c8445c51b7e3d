import json
import random

import pytest
from promptsearch.strategies import mutations as mut
from promptsearch.strategies.evolution import Evolution

from promptsearch import runner
from promptsearch.candidate import Candidate
from promptsearch.scoring import Scorer, calibration
from promptsearch.search import Budget, Search
from promptsearch.store import RunStore
from promptsearch.strategy import make
from promptsearch.task import load_task
from promptsearch.template import render, validate

from .conftest import cut_run

SEED = "output the opposite of\nInput: {input}\nOutput:"
LONG = "Answer with one word.\nClassify the text as negative or positive.\nReview: {input}\nSentiment:"
DEMOS = "Be precise, then answer.\nReview: a fine film\nSentiment: positive\n\nReview: {input}\nSentiment:"


def _ok(prompt, rest):
    """A valid template whose format (input slot and answer cue) is untouched."""
    validate(prompt)
    assert prompt.endswith(rest)
    return True


# ---- operators on plain strings ------------------------------------------------------------------

def test_split_prompt_keeps_format_and_demonstrations_fixed():
    assert mut.split_prompt(SEED) == ("output the opposite of", "Input: {input}\nOutput:")
    assert mut.split_prompt("Review: {input}\nSentiment:") == ("", "Review: {input}\nSentiment:")
    instruction, rest = mut.split_prompt(DEMOS)
    assert instruction == "Be precise, then answer."
    assert rest.startswith("Review: a fine film")
    assert mut.split_prompt("Say {{x}}.\n{input} It was") == ("Say {{x}}.", "{input} It was")
    for p in (SEED, LONG, DEMOS):
        assert mut.join_prompt(*mut.split_prompt(p)) == p


def test_phrases_split_at_sentence_and_clause_boundaries():
    assert mut.phrases("Answer with one word.\nClassify the text, then be precise; no more.") == [
        "Answer with one word.", "Classify the text,", "then be precise;", "no more."]


def test_delete_drops_one_phrase():
    rng = random.Random(0)
    out = mut.delete(LONG, rng)
    assert _ok(out, "Review: {input}\nSentiment:")
    assert out.split("\n")[0] in ("Answer with one word.", "Classify the text as negative or positive.")
    assert mut.delete(SEED, rng) is None  # one phrase: nothing to delete


def test_swap_exchanges_two_phrases_keeping_punctuation():
    out = mut.swap(LONG, random.Random(0))
    assert out == "Classify the text as negative or positive. Answer with one word.\nReview: {input}\nSentiment:"
    out = mut.swap(DEMOS, random.Random(0))
    assert out.startswith("Then answer, be precise.\nReview: a fine film")
    assert mut.swap(SEED, random.Random(0)) is None


def test_add_inserts_a_phrase_at_a_boundary():
    out = mut.add(SEED, "Answer with one word.", random.Random(1))
    assert _ok(out, "Input: {input}\nOutput:")
    assert "Answer with one word." in out and "opposite of" in out
    assert mut.add(LONG, "answer with one word", random.Random(0)) is None  # already there
    out = mut.add("Review: {input}\nSentiment:", "Be precise.", random.Random(0))
    assert out == "Be precise.\nReview: {input}\nSentiment:"


def test_paraphrase_uses_the_synonym_table_and_keeps_case():
    out, edit = mut.paraphrase(SEED, random.Random(0))
    assert _ok(out, "Input: {input}\nOutput:")
    assert edit in {"output->write", "output->give", "output->return", "output->provide", "the opposite of->the antonym of",
                    "the opposite of->a word opposite in meaning to"}
    outs = {mut.paraphrase(LONG, random.Random(s))[0].split("\n")[1] for s in range(20)}
    assert any(o.startswith(("Categorize", "Label")) for o in outs)
    assert mut.paraphrase("Zzz qqq.\n{input}", random.Random(0)) is None
    assert mut.paraphrase("Review: {input}\nSentiment:", random.Random(0)) is None  # the format is never edited


def test_crossover_joins_parents_at_phrase_boundaries_on_the_first_format():
    a = "Answer with one word. Be precise.\nInput: {input}\nOutput:"
    b = "Translate the word. Do not explain.\nQ: {input}\nA:"
    seen = set()
    for s in range(30):
        out = mut.crossover(a, b, random.Random(s))
        if out is None:
            continue
        assert _ok(out, "Input: {input}\nOutput:")
        instruction = mut.split_prompt(out)[0]
        assert instruction.startswith("Answer with one word.")
        seen.add(instruction)
    assert any("Do not explain." in x for x in seen)


def test_operators_never_break_braces():
    p = "Say {{x}} then answer.\nInput: {input}\nOutput:"
    rng = random.Random(0)
    for _ in range(30):
        for out in (mut.delete(p, rng), mut.swap(p, rng), mut.add(p, "Use {{braces}} well.", rng),
                    mut.crossover(p, LONG, rng)):
            if out is not None:
                validate(out)
                assert render(out, "X").endswith("Input: X\nOutput:")


def test_clean_proposal_filters_model_replies():
    assert mut.clean_proposal('"New instruction: Write the antonym of the word."', SEED) == "Write the antonym of the word."
    assert mut.clean_proposal("1. Give the opposite word\nmore text") == "Give the opposite word"
    assert mut.clean_proposal("Sure, here is the rewritten instruction:") is None
    assert mut.clean_proposal("") is None
    assert mut.clean_proposal("output the opposite of", "output the opposite of") is None
    assert mut.clean_proposal("!!! ### 123 456 ???") is None
    assert mut.clean_proposal("Write {input} now") is None
    assert mut.clean_proposal("Use {{ curly }} marks") is None
    looping = "Answer the question \"What is the answer to the question 'What is the answer to the question"
    assert mut.clean_proposal(looping) is None


def test_meta_prompts_show_the_readable_instruction():
    assert "Instruction: say {x}" in mut.meta_paraphrase("say {{x}}")
    msg = mut.meta_crossover("first one", "second one")
    assert "Instruction 1: first one" in msg and "Instruction 2: second one" in msg


def test_jaccard_rejects_near_duplicates_and_sees_swaps():
    assert mut.jaccard("a b c", "a b c") == 1.0
    assert mut.jaccard("answer with one word", "one word answer with") < 0.9  # same words, other order
    assert mut.jaccard("write the opposite", "give the antonym") < 0.3


# ---- the strategy on the tiny model --------------------------------------------------------------

@pytest.fixture(scope="module")
def task():
    return load_task("sst2-mini")


def test_options_are_checked():
    from promptsearch.errors import PromptSearchError

    with pytest.raises(PromptSearchError, match="unknown operator"):
        make("evolution", {"operators": ["teleport"]})
    assert make("evolution", {"population": 4, "operators": ["delete", "format"]}).population == 4


def test_evolution_runs_records_lineage_and_charges_the_model(tiny, task):
    evo = Evolution(patience=2, max_generations=4)
    search = Search(task, Scorer(tiny), [evo], Budget(max_evals=900), seed=1)
    summary = search.run()
    mine = [t.candidate for t in search.trials.values() if t.candidate.strategy == "evolution"]
    assert len(mine) >= 6
    known = set(search.trials)
    for c in mine:
        validate(c.prompt)
        assert c.parents and all(p in known for p in c.parents)  # every parent was scored first
        assert c.edit.split(":")[0] in ("format", "instruction") + mut_ops()
    bred = [c for c in mine if c.edit.split(":")[0] not in ("format", "instruction")]
    assert bred and evo.generation >= 1
    assert any(len(c.parents) == 2 for c in bred) or evo.meta_stats["asked"] == 0
    # the random tiny model answers the meta-prompts with noise: asked, charged, (mostly) dropped
    assert evo.meta_stats["asked"] > 0 and search.charged > 0
    assert evo.meta_stats["usable"] <= evo.meta_stats["asked"]
    assert summary["best"]["dev"]["score"] >= summary["seed"]["dev"]["score"]


def mut_ops():
    from promptsearch.strategies.evolution import ALL_OPERATORS

    return ALL_OPERATORS


def test_patience_stops_the_stage(tiny, task):
    evo = Evolution(patience=1, library_seeds=0, operators=("paraphrase", "add"))
    search = Search(task, Scorer(tiny), [evo], Budget(max_evals=100_000), seed=0)
    search.run()
    assert evo.stale >= 1 and evo.generation < evo.max_generations


def test_same_seed_same_evolution(tiny, task):
    runs = [Search(task, Scorer(tiny), [Evolution(patience=2, max_generations=3, library_seeds=3)], Budget(max_evals=600), seed=4).run()
            for _ in range(2)]
    assert runs[0]["leaderboard"] == runs[1]["leaderboard"]
    assert runs[0]["budget_used"]["evals"] == runs[1]["budget_used"]["evals"]


class _Spy(Evolution):
    """Records what the stage was handed."""

    def start(self, context):
        self.handed = list(context.stage_best)
        self.top_then = context.leaderboard()[0].candidate
        super().start(context)


def test_chaining_hands_the_best_of_templates_to_evolution(tiny, task):
    spy = _Spy(patience=2, max_generations=3)
    search = Search(task, Scorer(tiny), [make("templates", {"search_labels": False}), spy], Budget(max_evals=1200), seed=0)
    search.run()
    assert spy.handed[0].id == spy.top_then.id  # the best of the run so far, templates' included
    assert any(c.strategy == "templates" for c in spy.handed)
    first = [t.candidate for t in search.trials.values() if t.candidate.strategy == "evolution"]
    assert first and first[0].parents[0] == spy.handed[0].id  # generation 0 builds on it


def test_resume_replays_evolution_exactly(tiny, task, tmp_path):
    config = runner.make_config(task="sst2-mini", strategies=["evolution"], budget={"max_evals": 700, "max_seconds": None},
                                options={"evolution": {"patience": 2, "library_seeds": 3}})
    full = runner.run(config, tmp_path / "a", parts=(task, tiny, Scorer(tiny)))
    cut = cut_run(tmp_path / "a", tmp_path / "b")
    resumed = runner.run(None, cut, resume=True, parts=(task, tiny, Scorer(tiny)))
    assert resumed["leaderboard"] == full["leaderboard"]
    assert resumed["budget_used"]["evals"] == full["budget_used"]["evals"]
    # lineage: any bred candidate leads back to a root; a crossover names its other parent's prompt
    store = RunStore.open(tmp_path / "a")
    logged = {r["candidate"]["id"]: r["candidate"] for r in store.read("candidates.jsonl")}
    for cid, c in logged.items():
        chain = store.lineage(cid)
        assert chain[0]["id"] == cid and chain[-1]["parents"] == []
        assert len(chain[0]["mates"]) == max(0, len(c["parents"]) - 1)


# ---- the real model ------------------------------------------------------------------------------

@pytest.mark.integration
def test_model_paraphrases_on_smollm(smollm):
    """SmolLM2 answers the meta-prompts (chat template) with usable rewrites often enough."""
    from promptsearch.strategy import SearchContext

    task = load_task("sst2-mini")
    scorer = Scorer(smollm)
    charged = []
    ctx = SearchContext(task, scorer, random.Random(0), leaderboard=list, charge=charged.append,
                        remaining_evals=lambda: 1e9)
    evo = Evolution()
    evo.start(ctx)
    first = Candidate("Classify the text as negative or positive.\nReview: {input}\nSentiment:")
    second = Candidate("Answer with one word.\nText: {input}\nLabel:")
    slots = [["model-paraphrase", first, None, mut.meta_paraphrase(mut.split_prompt(first.prompt)[0]), None],
             ["model-crossover", first, second, mut.meta_crossover("Classify the text as negative or positive.",
                                                                   "Answer with one word."), None]]
    assert "<|im_start|>" in evo.meta_text(ctx, "hi")  # SmolLM2-Instruct's chat template is used
    evo._answer(ctx, slots)
    assert sum(charged) == 2
    made = [s[4] for s in slots if s[4] is not None]
    assert made, [evo._meta_cache]
    for c in made:
        assert c.prompt.endswith("\nReview: {input}\nSentiment:")
        validate(c.prompt)


@pytest.mark.integration
def test_evolution_on_smollm_through_the_cli(smollm, tmp_path, monkeypatch):
    from dataclasses import replace

    from click.testing import CliRunner

    from promptsearch import cli

    task = load_task("sst2-mini")
    task = replace(task, dev=task.dev[:32], test=task.test[:20])  # small: the run itself is what is tested
    real_load = runner.load_parts
    monkeypatch.setattr(runner, "load_parts", lambda config, task_=None, named=None: (task, smollm, Scorer(smollm, batch_size=16)))
    out = tmp_path / "run"
    result = CliRunner().invoke(cli.main, ["run", "--task", "sst2-mini", "--strategy", "evolution", "--max-evals", "120",
                                           "--top-k", "1", "-o", "evolution.patience=1", "-o", "evolution.library_seeds=2",
                                           "--out", str(out), "--json", "--quiet"])
    monkeypatch.setattr(runner, "load_parts", real_load)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # limit, one rung past it, the final check, and the final ensemble (up to three members, each calibrated) on dev
    # with its bias rows
    n_dev = len(task.dev)
    assert summary["budget_used"]["evals"] <= 120 + n_dev + n_dev + 3 * (n_dev + calibration.BATCH_ROWS)
    assert any(r["strategy"] == "evolution" for r in summary["leaderboard"])
    shown = CliRunner().invoke(cli.main, ["show", str(out), "--lineage", "--json"])
    assert shown.exit_code == 0, shown.output
    chain = json.loads(shown.stdout)["lineage"]
    assert chain[0]["id"] == summary["best"]["id"]
    assert chain[-1]["parents"] == []  # ends at a root (the seed or a library format)
    store = RunStore.open(out)
    ids = {r["candidate"]["id"] for r in store.read("candidates.jsonl")}
    for c in chain[:-1]:
        assert c["parents"][0] in ids and c["edit"]
