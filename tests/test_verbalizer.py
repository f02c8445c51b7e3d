"""A verbalizer of several words per class: a class's score is the log of the summed probability of its label word
and its extra words; it is part of a candidate's identity, mined by templates, raced batch-calibrated, and exported
so that a prediction scores it exactly as the search did. Tiny model."""

import json
import math

import pytest

import promptsearch as ps
from promptsearch.candidate import Candidate
from promptsearch.errors import PromptSearchError
from promptsearch.scoring import Scorer, continuation, verbalizers
from promptsearch.store import RunStore

from .conftest import one_thread
from .test_scorer import _task

EXTRA = (("bad", "awful"), ("good", "great"))


def test_class_scores_are_the_log_of_summed_probabilities():
    lps = [math.log(0.1), math.log(0.2), math.log(0.05), math.log(0.15), math.log(0.3)]
    got = verbalizers.class_scores(lps, ("neg", "pos"), (("a",), ("b", "c")))
    assert got == pytest.approx([math.log(0.1 + 0.05), math.log(0.2 + 0.15 + 0.3)])
    assert verbalizers.class_scores(lps[:2], ("neg", "pos"), ()) == lps[:2]  # none: the label words alone
    assert verbalizers.class_scores([-math.inf, 0.0, -math.inf], ("a", "b"), (("x",), ())) == [-math.inf, 0.0]


def test_the_scorer_sums_each_class_over_its_words(tiny):
    task, scorer = _task(), Scorer(tiny)
    cand = Candidate(task.seed_prompt, verbalizer=EXTRA)
    results = scorer.evaluate(task, cand, task.dev)
    contexts = [scorer.render(task.seed_prompt, ex.input) for ex in task.dev]
    words = ["negative", "positive", "bad", "awful", "good", "great"]
    each = scorer.loglikelihoods(contexts, [[continuation(c, w) for w in words] for c in contexts])
    for ex, r, lps in zip(task.dev, results, each):
        neg = math.log(sum(math.exp(lps[i]) for i in (0, 2, 3)))
        pos = math.log(sum(math.exp(lps[i]) for i in (1, 4, 5)))
        assert list(r.label_logprobs) == pytest.approx([neg, pos], abs=1e-5)
        assert r.prediction == task.label_words[int(pos > neg)]  # the label word is what a prediction prints
    plain = scorer.evaluate(task, Candidate(task.seed_prompt), task.dev)
    assert [r.label_logprobs for r in plain] != [r.label_logprobs for r in results]  # not read from the plain cache


def test_one_word_list_per_class_or_one_line(tiny):
    task = _task()
    with pytest.raises(PromptSearchError, match="1 word lists for 2 classes"):
        Scorer(tiny).evaluate(task, Candidate(task.seed_prompt, verbalizer=(("bad",),)), task.dev)


def test_identity_and_round_trip():
    plain, verbal = Candidate("A {input}"), Candidate("A {input}", verbalizer=EXTRA)
    assert plain.id != verbal.id and "verbalizer" not in plain.to_json()  # older runs keep their ids
    assert Candidate.from_json(json.loads(json.dumps(verbal.to_json()))) == verbal


@pytest.mark.parametrize("value", ["abc", [["a", 1]], [[]], [["a"], "b"], 5, [["  "]]])
def test_a_damaged_logged_verbalizer_is_refused(value):
    with pytest.raises(ValueError):
        Candidate.from_json({"prompt": "A {input}", "verbalizer": value})


@pytest.fixture(scope="module")
def searched(tiny_dir, small_task_dir, tmp_path_factory):
    """A templates run that reaches its label-word phase, where it proposes verbalizers."""
    with one_thread():
        root = tmp_path_factory.mktemp("verbalizer")
        model = ps.load_model(tiny_dir, device="cpu", dtype="float32")
        task = ps.load_task(small_task_dir)
        result = ps.search(task, model, budget=ps.Budget(max_evals=2500), run_dir=root / "run", strategies=["templates"],
                           selection="dev", options={"templates": {"verbalizer_size": 3, "calibrations": []}},
                           final_calibration=None)
        return root, model, task, result


def test_templates_proposes_a_mined_verbalizer_raced_batch_calibrated(searched):
    root, _, task, _ = searched
    rows = [row for row in RunStore.open(root / "run").leaderboard() if row.get("verbalizer")]
    assert rows, "no verbalizer candidate was proposed"
    for row in rows:
        assert row["calibrate"] == "batch" and row["edit"] == "verbalizer"
        assert len(row["verbalizer"]) == len(task.label_words)
        assert all(len(words) == 2 for words in row["verbalizer"])  # size 3: the label word and two more
        flat = [w.lower() for words in row["verbalizer"] for w in words]
        assert len(flat) == len(set(flat)) and not set(flat) & {w.lower() for w in task.label_words}


def test_an_exported_verbalizer_predicts_as_it_was_scored(searched, tmp_path):
    root, model, task, result = searched
    rank = next(row["rank"] for row in RunStore.open(root / "run").leaderboard() if row.get("verbalizer"))
    result.export(tmp_path / "prompt.json", rank=rank)
    art = json.loads((tmp_path / "prompt.json").read_text())
    assert art["options"]["verbalizer"] and art["options"]["calibrate"] == "batch"
    prompt = ps.load_prompt(tmp_path / "prompt.json")
    predictions = prompt.predict([ex.input for ex in task.test], model)
    assert [p.prediction for p in predictions] == [art["label_words"][i] for i in art["test_outcomes"]["preds"]]
    assert "verbalizer of" in repr(prompt)
    art["options"]["verbalizer"] = [["x"], "y"]
    (tmp_path / "bad.json").write_text(json.dumps(art))
    with pytest.raises(PromptSearchError, match=r"options\.verbalizer' must list one list of words per class"):
        ps.load_prompt(tmp_path / "bad.json")


def test_clarify_proposes_it_on_its_bases_only_when_asked(tiny_dir, small_task_dir, tmp_path):
    with one_thread():
        model = ps.load_model(tiny_dir, device="cpu", dtype="float32")
        task = ps.load_task(small_task_dir)
        runs = {}
        for size in (1, 4):
            ps.search(task, model, budget=ps.Budget(max_evals=600), run_dir=tmp_path / f"run{size}",
                      strategies=["clarify"], selection="dev", final_calibration=None,
                      options={"clarify": {"draws": 0, "rounds": 1, "demo_rules": [], "verbalizer_size": size}})
            runs[size] = RunStore.open(tmp_path / f"run{size}").leaderboard()
    assert not any(row.get("verbalizer") for row in runs[1])  # the default: none proposed, nothing mined
    found = [row for row in runs[4] if row.get("verbalizer")]
    assert len(found) == 1 and found[0]["edit"] == "verbalizer" and found[0]["calibrate"] == "batch"
    assert all(len(words) == 3 for words in found[0]["verbalizer"])
    assert {row["id"] for row in runs[1]} < {row["id"] for row in runs[4]}  # the rest of the round is the same


def test_what_the_text_alone_lacks_and_show_full_name_the_words():
    from promptsearch import format as fmt
    from promptsearch.plain import is_plain, lacks

    cand = Candidate("Review: {input}\nSentiment:", calibrate="batch", verbalizer=EXTRA)
    assert not is_plain(cand) and not is_plain(Candidate(cand.prompt, verbalizer=EXTRA))
    assert any(line.startswith("a verbalizer") for line in lacks(cand))
    lines = fmt.full_prompt_lines(cand.to_json())
    assert "verbalizer, class 0: bad, awful" in lines and "verbalizer, class 1: good, great" in lines
    assert "verbalizer: +2 words a class" in fmt.options_note(cand.to_json())
