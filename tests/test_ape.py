import random
from dataclasses import replace

import pytest
from promptsearch.strategies import mutations as mut
from promptsearch.strategies.ape import APE, ape_prompt, clean_instruction, opro_prompt

from promptsearch import runner
from promptsearch.candidate import Candidate, Trial
from promptsearch.scoring import Scorer
from promptsearch.search import Budget, Search
from promptsearch.strategy import SearchContext, make
from promptsearch.task import load_task


@pytest.fixture(scope="module")
def task():
    """sst2-mini with train, dev and test rows marked, so a meta-prompt shows where its rows came from."""
    base = load_task("sst2-mini")
    mark = lambda rows, split: tuple(replace(ex, input=f"{split}{i} {ex.input}") for i, ex in enumerate(rows))
    return replace(base, train=mark(base.train[:20], "TRAINROW"), dev=mark(base.dev[:30], "DEVROW"),
                   test=mark(base.test[:20], "TESTROW"))


def context(task, scorer, board=(), charged=None):
    return SearchContext(task, scorer, random.Random(0), leaderboard=lambda: list(board),
                         charge=(charged.append if charged is not None else (lambda n: None)),
                         remaining_evals=lambda: 1e9)


def scored(prompt, score, order, strategy="seed"):
    t = Trial(Candidate(prompt, strategy=strategy), order=order)
    t.rungs[16] = (score, -1.0)
    return t


def test_ape_prompt_is_the_forward_template():
    text = ape_prompt([("cold", "hot"), ("up", "down")])
    assert text == ("I gave a friend an instruction and two inputs. The friend read the instruction and wrote an output "
                    "for every one of the inputs. Here are the input-output pairs:\n\n"
                    "Input: cold\nOutput: hot\n\nInput: up\nOutput: down\n\nThe instruction was to")


def test_ape_messages_show_train_pairs_only_with_label_words(tiny, task):
    ape = APE(proposals=6, demo_counts=(5, 3))
    ctx = context(task, Scorer(tiny))
    ape.start(ctx)
    messages = ape.ape_messages(ctx)
    assert len(messages) == 6 and len(set(messages)) == 6  # different seeded draws
    for i, m in enumerate(messages):
        assert m.count("Input: ") == (5, 3)[i % 2]
        assert m.count("TRAINROW") == m.count("Input: ")
        assert "DEVROW" not in m and "TESTROW" not in m
        for line in m.split("\n"):
            if line.startswith("Output: "):
                assert line[len("Output: "):] in task.label_words
    assert ("five inputs" in messages[0]) and ("three inputs" in messages[1])


def test_opro_history_is_sorted_ascending_with_scores(tiny, task):
    fmt = "\nReview: {input}\nSentiment:"
    board = [scored("Say it well." + fmt, 0.9, 2), scored("Pick a word." + fmt, 0.5, 1),
             scored("Pick a word." + "\nText: {input}\nLabel:", 0.4, 3),  # same instruction, lower: left out
             scored("Be terse." + fmt, 0.625, 0)]
    board.sort(key=lambda t: t.sort_key(), reverse=True)
    ape = APE(per_round=2, exemplars=2)
    ctx = context(task, Scorer(tiny), board)
    ape.start(ctx)
    assert ape.scored_history(ctx) == [("Pick a word.", 0.5), ("Be terse.", 0.625), ("Say it well.", 0.9)]
    messages = ape.opro_messages(ctx)
    assert len(messages) == 2 and messages[0] != messages[1]
    m = messages[0]
    a, b, c = m.index("Instruction: Pick a word.\nScore: 50"), m.index("Instruction: Be terse.\nScore: 62"), \
        m.index("Instruction: Say it well.\nScore: 90")
    assert a < b < c  # ascending: the best nearest the request
    assert m.count("TRAINROW") == 2 and "DEVROW" not in m and "TESTROW" not in m
    assert m.endswith("Reply with the instruction only.") and "higher score" in m
    assert opro_prompt([("x y z", 0.1)], []) .count("Input:") == 0


def test_clean_up_is_evolutions_plus_the_completion_cue():
    assert clean_instruction(" to write the opposite of the word. The output was", completion=True) == \
        "Write the opposite of the word."
    assert clean_instruction(': "Give the plural form."', completion=True) == "Give the plural form."
    assert clean_instruction("to give the plural of the word.", "Give the plural of the word", completion=True) is None
    assert clean_instruction(":", completion=True) is None
    # shared with evolution: "The task is to ..." and "The instruction was: ..." are descriptions, not instructions
    assert clean_instruction("The task is to write the plurals of the inputs.") == "Write the plurals of the inputs."
    assert mut.clean_proposal('The instruction was: "Name the opposite word."') == "Name the opposite word."
    # a request's reply goes through clean_proposal unchanged
    reply = "New instruction: Name the category of the text."
    assert clean_instruction(reply) == mut.clean_proposal(reply) == "Name the category of the text."


def test_a_proposal_that_copies_a_shown_example_is_dropped():
    from promptsearch.strategies.ape import copies_an_example

    message = opro_prompt([("Label the review.", 0.5)],
                          [("Designed to make you care about music you may not have heard before", "positive")])
    assert copies_an_example("Designed to make you care about music, they say.", message)
    assert not copies_an_example("Label the review as positive or negative.", message)  # history may be reused
    assert not copies_an_example("Make you care about it.", message)  # four words in a row are not a copy


def test_candidates_keep_the_format_and_label_words_and_use_the_cache(tiny, task):
    base = Candidate("Old words here.\nReview: {input}\nSentiment:", ("bad", "good"), strategy="templates")
    charged = []
    ctx = context(task, Scorer(tiny), charged=charged)
    ctx.stage_best = [base]
    ape = APE(proposals=2, demo_counts=(2,))
    ape.start(ctx)
    ape.round = 1
    messages = ape.ape_messages(ctx)
    ape._replies = {messages[0]: " to tell how the review feels. Then", messages[1]: " gibberish"}
    made = ape._candidates(ctx, messages)
    assert charged == []  # both answers were cached: nothing run, nothing charged
    assert [c.prompt for c in made] == ["Tell how the review feels.\nReview: {input}\nSentiment:"]
    assert made[0].label_words == ("bad", "good") and made[0].parents == (base.id,) and made[0].edit == "ape"


def test_ape_runs_charges_its_generations_and_replays_on_resume(tiny, task, tmp_path):
    ape = make("ape", {"proposals": 3, "rounds": 2, "per_round": 2, "meta_tokens": 12})
    search = Search(task, Scorer(tiny), [ape], Budget(max_evals=600), seed=3)
    summary = search.run()
    assert search.charged == 3 + 2  # one pass per distinct meta-prompt: 3 APE draws, 2 OPRO draws
    assert summary["budget_used"]["charged"] == 5
    config = runner.make_config(task="sst2-mini", strategies=["ape"], budget={"max_evals": 600, "max_seconds": None},
                                options={"ape": {"proposals": 3, "rounds": 2, "per_round": 2, "meta_tokens": 12}},
                                seed=3)
    full = runner.run(config, tmp_path / "a", parts=(task, tiny, Scorer(tiny)))
    lines = (tmp_path / "a" / "candidates.jsonl").read_text().splitlines()
    cut = tmp_path / "b"
    cut.mkdir()
    (cut / "config.json").write_text((tmp_path / "a" / "config.json").read_text())
    (cut / "candidates.jsonl").write_text("\n".join(lines[: max(1, len(lines) // 2)]) + "\n")
    resumed = runner.run(None, cut, resume=True, parts=(task, tiny, Scorer(tiny)))
    assert resumed["leaderboard"] == full["leaderboard"]
    assert resumed["budget_used"] == {**full["budget_used"], "seconds": resumed["budget_used"]["seconds"]}


def test_options_are_checked():
    from promptsearch.errors import PromptSearchError

    with pytest.raises(PromptSearchError, match="option ape.proposals: 0 is out of range"):  # limits.OPTION_RULES
        make("ape", {"proposals": 0})
    assert make("ape", {"demo_counts": [2, 4]}).demo_counts == (2, 4)


def test_a_proposer_without_chat_template_gets_plain_text_and_a_cue(tiny, task):
    """The path a served proposer (no tokenizer here) takes too: a request gets a cue, a completion stays one."""
    assert not getattr(tiny.tokenizer, "chat_template", None)
    ctx = context(task, Scorer(tiny))
    ape = APE()
    assert ape.meta_text(ctx, ape_prompt([("a", "b")])).endswith("The instruction was to")
    assert ape.meta_text(ctx, "Write a new one.") == "Write a new one." + mut.PLAIN_CUE
