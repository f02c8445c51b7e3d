"""Calibration and chosen demonstrations (scoring options of a candidate) on the tiny random model:
the corrected scores against a hand computation from raw log-likelihoods, retrieval on a pool whose
answer is known, balanced draws, the budget charge, export/eval-artifact and a killed run's resume."""

import json
import math
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from promptsearch import runner
from promptsearch.candidate import Candidate
from promptsearch.cli import main
from promptsearch.errors import PromptSearchError
from promptsearch.export import export_run
from promptsearch.scoring import Scorer, continuation, demos
from promptsearch.search import Budget, Search
from promptsearch.task import Example, Task, load_task
from promptsearch.testing import naive_loglik

from .conftest import one_thread
from .test_cli import ONE_THREAD, _cli, kill_halfway

PROMPT = "Review: {input}\nSentiment:"


@pytest.fixture(scope="module")
def sst2():
    return load_task("sst2-mini")


def _raw(model, context, words):
    return [naive_loglik(model, context, continuation(context, w)) for w in words]


def _softmax(xs):
    e = [math.exp(x) for x in xs]
    return [v / sum(e) for v in e]


def test_contextual_calibration_matches_a_hand_computation(tiny, sst2):
    words = sst2.label_words
    examples = sst2.dev[:6]
    results = Scorer(tiny).evaluate(sst2, Candidate(PROMPT, calibrate="contextual"), examples)
    cf = [_softmax(_raw(tiny, PROMPT.replace("{input}", text), words)) for text in ("N/A", "", "[MASK]")]
    p_cf = [sum(p[j] for p in cf) / 3 for j in range(len(words))]
    assert max(p_cf) - min(p_cf) > 1e-3  # the tiny model has a label bias to correct
    flips = 0
    for ex, r in zip(examples, results):
        raw = _raw(tiny, PROMPT.replace("{input}", ex.input), words)
        q = [p / b for p, b in zip(_softmax(raw), p_cf)]
        q = [v / sum(q) for v in q]
        assert r.label_logprobs == pytest.approx([math.log(v) for v in q], abs=1e-4)
        best = max(range(len(q)), key=q.__getitem__)
        assert r.prediction == words[best] and r.score == float(best == ex.label)
        assert r.logprob == pytest.approx(math.log(q[ex.label]), abs=1e-4)
        flips += best != max(range(len(raw)), key=raw.__getitem__)
    plain = Scorer(tiny).evaluate(sst2, Candidate(PROMPT), examples)
    assert sum(a.prediction != b.prediction for a, b in zip(plain, results)) == flips


def test_domain_calibration_is_pmi_against_the_answer_cue(tiny, sst2):
    words = sst2.label_words
    examples = sst2.dev[:4]
    results = Scorer(tiny).evaluate(sst2, Candidate(PROMPT, calibrate="domain"), examples)
    premise = _raw(tiny, "Sentiment:", words)  # the template's text after {input}, leading newline dropped
    for ex, r in zip(examples, results):
        raw = _raw(tiny, PROMPT.replace("{input}", ex.input), words)
        pmi = [a - b for a, b in zip(raw, premise)]
        assert r.label_logprobs == pytest.approx(pmi, abs=1e-4)
        assert r.prediction == words[max(range(2), key=pmi.__getitem__)]


def test_calibration_is_cached_counted_once_and_refused_where_it_means_nothing(tiny, sst2):
    scorer = Scorer(tiny)
    cand = Candidate(PROMPT, calibrate="contextual")
    scorer.evaluate(sst2, cand, sst2.dev[:4])
    scorer.evaluate(sst2, cand, sst2.dev[:8])
    assert scorer.stats["calibration_rows"] == 3  # the content-free rows run once per prompt
    rows = (Example("hot", "cold"), Example("up", "down"))
    gen = Task("antonyms", "generation", rows, rows, rows, "exact_match", "{input} ->")
    with pytest.raises(PromptSearchError, match="calibration corrects label scores; task antonyms is generation"):
        scorer.evaluate(gen, Candidate(gen.seed_prompt, calibrate="domain"), gen.dev)
    with pytest.raises(PromptSearchError, match="content-free input has no similar"):
        scorer.evaluate(sst2, Candidate(PROMPT, calibrate="contextual", demos="similar:2"), sst2.dev[:2])
    with pytest.raises(PromptSearchError, match="use one of contextual, domain"):
        scorer.evaluate(sst2, Candidate(PROMPT, calibrate="platt"), sst2.dev[:2])


def test_the_bias_rows_are_charged_to_the_budget_once_per_prompt_also_on_resume(tiny, sst2):
    def searched(scorer):
        search = Search(sst2, scorer, [], Budget(max_evals=10_000))
        search.tell([Candidate(PROMPT), Candidate(PROMPT, calibrate="contextual"), Candidate(PROMPT, calibrate="domain")])
        return search

    scorer = Scorer(tiny)
    first = searched(scorer)
    assert first.charged == 3 + 1
    assert first.evals_used == sum(first.scored.values()) + 4
    again = searched(scorer)  # every row cached now: the count must not change (resume replays it)
    assert again.charged == 4 and again.evals_used == first.evals_used


def _pool_task(train):
    rows = tuple(Example(text, word, label=label) for text, word, label in train)
    return Task("pool", "classification", rows, rows[:2], rows[:2], "accuracy", "{input}\nLabel:", ("x", "y"))


def test_similar_returns_the_nearest_pool_rows_and_never_the_input_itself():
    task = _pool_task([("the cat sat on the mat", "x", 0), ("stock markets fell sharply today", "y", 1),
                       ("a cat and a dog on a mat", "x", 0), ("interest rates and stock prices", "y", 1),
                       ("rain and wind tonight", "x", 0)])
    got = demos.Demonstrations().retriever(task).nearest(["my cat likes the mat", "stock markets fell sharply today"], 2)
    assert [ex.input for ex in got[0]] == ["the cat sat on the mat", "a cat and a dog on a mat"]
    rest = [ex.input for ex in demos.pool(task) if "stock" not in ex.input]  # no shared word: pool order decides
    assert [ex.input for ex in got[1]] == ["interest rates and stock prices", rest[0]]  # its own row is left out
    prompt = demos.Demonstrations().prompts(task, Candidate("{input}\nLabel:", demos="similar:1"), [Example("the cat sat", "x", label=0)])
    assert prompt == ["the cat sat on the mat\nLabel: x\n\n{input}\nLabel:"]  # clarify's format, escaped


def test_similar_per_class_shows_the_nearest_rows_of_every_class_most_similar_last():
    task = _pool_task([("the cat sat on the mat", "x", 0), ("a cat and a dog on a mat", "x", 0),
                       ("stock markets fell sharply today", "y", 1), ("the cat watched stock prices", "y", 1),
                       ("rain and wind tonight", "x", 0)])
    retriever = demos.Demonstrations().retriever(task)
    assert [ex.input for ex in retriever.nearest(["my cat on the mat"], 2)[0]] == [
        "the cat sat on the mat", "a cat and a dog on a mat"]  # similar:2: one class only
    got = retriever.nearest(["my cat on the mat"], 1, classes=2)[0]
    assert [ex.input for ex in got] == ["the cat sat on the mat", "the cat watched stock prices"]  # one of each
    assert len(retriever.nearest(["my cat on the mat"], 2, classes=2)[0]) == 4
    cand = Candidate("{input}\nLabel:", demos="similar-per-class:1")
    prompt = demos.Demonstrations().prompts(task, cand, [Example("my cat on the mat", "x", label=0)])
    assert prompt == ["the cat watched stock prices\nLabel: y\n\nthe cat sat on the mat\nLabel: x\n\n{input}\nLabel:"]
    assert demos.parse("similar-per-class:2") == ("similar-per-class", 2, 0) and demos.per_input("similar-per-class:2")
    with pytest.raises(PromptSearchError, match="content-free"):  # per input, as similar: no fixed prompt to calibrate
        from promptsearch.scoring import calibration
        calibration.check(task, Candidate("{input}\nLabel:", demos="similar-per-class:1", calibrate="contextual"))
    gen = Task("gen", "generation", task.train, task.dev, task.test, "exact_match", "{input}\nAnswer:")
    same = [demos.Demonstrations().prompts(gen, Candidate("{input}\nAnswer:", demos=r), task.dev)
            for r in ("similar:2", "similar-per-class:2")]
    assert same[0] == same[1]  # without classes it is similar:K


def test_balanced_gives_k_per_class_the_same_for_every_input_and_keeps_the_prefix_cache(tiny, sst2):
    shots = demos.balanced(demos.pool(sst2), sst2, 3, 0)
    assert sorted(ex.label for ex in shots) == [0, 0, 0, 1, 1, 1]
    assert [ex.label for ex in shots] == [0, 1, 0, 1, 0, 1]  # interleaved by class
    assert demos.balanced(demos.pool(sst2), sst2, 3, 1) != shots  # another draw
    cand = Candidate(PROMPT, demos="balanced:3")
    fixed = demos.Demonstrations().prompts(sst2, cand, sst2.dev[:3])
    assert isinstance(fixed, str) and fixed.endswith(PROMPT) and fixed.count("Sentiment:") == 7
    scorer = Scorer(tiny)
    tiny.clear_cache()  # the model keeps the prefixes and counts the tokens it runs
    tiny.stats.clear()
    scorer.evaluate(sst2, cand, sst2.dev[:8])
    prefix = tiny.stats["prefix_tokens"]
    assert prefix > tiny.count_tokens(fixed.split("{input}")[0]) // 2  # the demonstrations ran once, as a prefix
    scorer.evaluate(sst2, cand, sst2.dev[8:16])
    assert tiny.stats["prefix_tokens"] == prefix and tiny.stats["prefix_hits"] >= 1
    similar = Scorer(tiny)
    similar.evaluate(sst2, Candidate(PROMPT, demos="similar:3"), sst2.dev[:8])
    assert tiny.stats["prefix_tokens"] - prefix < prefix // 4  # per-input demonstrations share little


def test_pool_of_a_pool_is_itself():
    task = load_task("sst2-mini")
    small = demos.with_pool(task, demos.pool_rows(task))
    assert [ex.key for ex in demos.pool(small)] == [ex.key for ex in demos.pool(task)]
    with pytest.raises(PromptSearchError, match="use similar:K, similar-per-class:K or balanced:K"):
        demos.parse("similar:0")


@pytest.fixture(scope="module")
def options_run(tiny_dir, small_task_dir, tmp_path_factory):
    """A finished tiny clarify run whose leaderboard holds calibrated and demos-rule candidates."""
    from promptsearch.models.local import FrozenModel

    with one_thread():
        out = tmp_path_factory.mktemp("options-run")
        config = runner.make_config(task=small_task_dir, model=tiny_dir, strategies=["clarify"], seed_prompt=PROMPT,
                                    options={"clarify": {"draws": 0, "rounds": 1, "demo_rules": ["similar:2", "similar-per-class:1", "balanced:1"],
                                                            "calibrations": ["contextual", "domain", "batch"]}},
                                    budget={"max_evals": 600})
        model = FrozenModel.load(tiny_dir, device="cpu")
        summary = runner.run(config, out / "run", parts=(runner.load_task_of(config), model, Scorer(model)))
        return out, summary


@pytest.mark.parametrize("option", [{"demos": "similar:2"}, {"demos": "similar-per-class:1"}, {"demos": "balanced:1"},
                                    {"calibrate": "contextual"},
                                    {"calibrate": "domain"}, {"calibrate": "batch"}])
def test_options_round_trip_through_export_and_eval_artifact(options_run, small_task_dir, option, tmp_path):
    out, _ = options_run
    from promptsearch.store import RunStore

    board = RunStore.open(out / "run").leaderboard()
    rank = next(i + 1 for i, row in enumerate(board) if {k: row.get(k) for k in option} == option and row.get("edit", "").count("+") == 0)
    art = export_run(out / "run", tmp_path / "a.json", rank=rank)
    assert art.options == option and art.candidate().options() == option
    saved = json.loads((tmp_path / "a.json").read_text())
    assert saved["options"] == option
    assert (saved.get("demo_pool") is not None) == ("demos" in option or option == {"calibrate": "batch"})
    # another train split: the artifact's own pool, not the task's train, chooses the demonstrations (and the
    # inputs batch calibration averages)
    moved = tmp_path / "task"
    shutil.copytree(small_task_dir, moved)
    (moved / "train.jsonl").write_text((moved / "train.jsonl").read_text().splitlines()[0] + "\n")
    r = CliRunner().invoke(main, ["eval", "--artifact", str(tmp_path / "a.json"), "--task", str(moved),
                                  "--device", "cpu", "--check"], catch_exceptions=False)
    assert r.exit_code == 0 and r.output.startswith("reproduced"), r.output
    shown = CliRunner().invoke(main, ["show", str(out / "run"), "--top", "50"], catch_exceptions=False).output
    assert "{calibrate: contextual}" in shown and "{demos: similar:2}" in shown


def test_killed_run_with_options_resumes_to_the_same_result(tiny_dir, small_task_dir, tmp_path):
    args = ["--model", tiny_dir, "--task", small_task_dir, "--strategy", "templates", "--strategy", "clarify",
            "-o", "clarify.demo_rules=[\"similar:2\",\"balanced:1\"]", "--max-evals", "900", "--seed", "3", "--quiet"]
    whole = subprocess.run(_cli("run", *args, "--out", str(tmp_path / "whole"), "--json"), check=False, capture_output=True, text=True,
                           timeout=900, env=ONE_THREAD)
    assert whole.returncode == 0, whole.stderr
    expected = json.loads(whole.stdout)
    lines = (tmp_path / "whole" / "candidates.jsonl").read_text().splitlines()
    logged = [json.loads(line)["candidate"] for line in lines]
    assert any(c.get("calibrate") for c in logged) and any(c.get("demos") for c in logged)
    log = kill_halfway(_cli("run", *args, "--out", str(tmp_path / "cut")), tmp_path / "cut", len(lines))
    resumed = subprocess.run(_cli("run", "--resume", str(tmp_path / "cut"), "--json"), check=False, capture_output=True, text=True,
                             timeout=900, env=ONE_THREAD)
    assert resumed.returncode == 0, resumed.stderr
    got = json.loads(resumed.stdout)
    assert got["best"] == expected["best"] and got["leaderboard"] == expected["leaderboard"]
    assert got["budget_used"]["evals"] == expected["budget_used"]["evals"]
    assert len(log.read_text().splitlines()) == len(lines)


@pytest.mark.integration
def test_calibration_and_demos_on_a_served_model(llama_server, tmp_cache):
    """A served model gives only log-likelihoods: enough for both options, same rule as in process."""
    from promptsearch.models.served import ServedModel

    task = load_task("sst2-mini")
    scorer = Scorer(ServedModel.connect([llama_server.url], concurrency=2))
    words, examples = task.label_words, task.dev[:4]
    plain = scorer.evaluate(task, Candidate(PROMPT), examples)
    cf = [scorer.loglikelihoods([scorer.render(PROMPT, t)], [[continuation(scorer.render(PROMPT, t), w) for w in words]])[0]
          for t in ("N/A", "", "[MASK]")]
    p_cf = [sum(_softmax(row)[j] for row in cf) / 3 for j in range(len(words))]
    for r, got in zip(plain, scorer.evaluate(task, Candidate(PROMPT, calibrate="contextual"), examples)):
        q = [p / b for p, b in zip(_softmax(list(r.label_logprobs)), p_cf)]
        assert got.label_logprobs == pytest.approx([math.log(v / sum(q)) for v in q], abs=1e-6)
    premise = scorer.loglikelihoods(["Sentiment:"], [[" " + w for w in words]])[0]
    for r, got in zip(plain, scorer.evaluate(task, Candidate(PROMPT, calibrate="domain"), examples)):
        assert got.label_logprobs == pytest.approx([a - b for a, b in zip(r.label_logprobs, premise)], abs=1e-6)
    for rule in ("similar:2", "balanced:1"):
        results = scorer.evaluate(task, Candidate(PROMPT, demos=rule), examples)
        assert len(results) == 4 and all(r.prediction in words for r in results)


def test_templates_and_clarify_propose_the_options_as_edits_of_their_bases(tiny, sst2):
    from promptsearch.strategy import make

    search = Search(sst2, Scorer(tiny), [], Budget(max_evals=10_000))
    search.tell([Candidate(PROMPT), Candidate("Input: {input}\nLabel:")])
    ctx = search.context(0)
    templates = make("templates")
    templates.start(ctx)
    got = templates._next_phase(ctx, "calibrations")  # its last phase: calibrated variants of the best two
    best = [t.candidate.id for t in search.leaderboard()[:2]]
    assert sorted((c.parents[0], c.calibrate) for c in got) == sorted((b, m) for b in best for m in ("contextual", "domain"))
    clarify = make("clarify", {"draws": 0})
    edits = clarify.edits(ctx, Candidate(PROMPT))
    assert [(c.demos, c.calibrate) for c in edits[:6]] == [("similar:4", None), ("similar:8", None), ("similar:16", None),
                                                          ("balanced:2", None), (None, "contextual"), (None, "domain")]
    calibrated = clarify.edits(ctx, edits[4])  # a calibrated base: no similar demonstrations, keeps its option
    assert {c.demos for c in calibrated} == {"balanced:2", None} and all(c.calibrate == "contextual" for c in calibrated)
    # with drawn demonstrations too: on classification the rules come first, then one draw of each count
    first = [c.edit for c in make("clarify").edits(ctx, Candidate(PROMPT))[:8]]
    assert first == ["demos=similar:4", "demos=similar:8", "demos=similar:16", "demos=balanced:2", "demos:1#0",
                     "demos:2#0", "demos:4#0", "demos:8#0"]
    rows = tuple(Example(w, w[::-1]) for w in ("hot", "up", "left", "big", "wet", "old", "new", "dry", "low"))
    gen = Task("reverse", "generation", rows, rows, rows, "exact_match", "{input} ->")
    gen_search = Search(gen, Scorer(tiny), [], Budget(max_evals=10_000))
    gen_search.tell([Candidate(gen.seed_prompt)])
    first = [c.edit for c in make("clarify").edits(gen_search.context(0), Candidate(gen.seed_prompt))[:8]]
    assert first == ["demos:1#0", "demos:2#0", "demos:4#0", "demos:8#0", "demos=similar:4", "demos=similar:8",
                     "demos=similar:16", "demos=balanced:2"]


def test_similar_demonstrations_need_no_words_in_the_inputs():
    """Inputs without a word of two letters ("1+2") once failed the TF-IDF retriever (an empty vocabulary) with a
    traceback mid-run: character n-grams take over, and a pool of empty inputs keeps its order."""
    from promptsearch.scoring.demos import Retriever
    from promptsearch.task import Example

    rows = [Example(q, a) for q, a in (("1+2", "3"), ("7*8", "56"), ("1+3", "4"), ("9-1", "8"))]
    near = [[ex.input for ex in group] for group in Retriever(rows).nearest(["1+4", "7*9", "1+2"], 2)]
    assert near == [["1+2", "1+3"], ["7*8", "9-1"], ["1+3", "9-1"]]  # shared characters first; never itself
    empty = [Example("", "a"), Example("", "b")]
    assert [ex.output for ex in Retriever(empty).nearest(["x"], 2)[0]] == ["a", "b"]
