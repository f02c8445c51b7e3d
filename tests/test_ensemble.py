"""Prompt ensembles on the tiny model: scoring against hand computations, the budget charge, the
selection strategy, export and resume."""

import itertools
import json
import math

import pytest
from click.testing import CliRunner
from promptsearch.strategies.ensemble import EnsembleSelection

from promptsearch import runner
from promptsearch.candidate import Candidate
from promptsearch.scoring import ExampleResult, Scorer, ensemble
from promptsearch.search import Budget, Racing, Search
from promptsearch.store import RunStore
from promptsearch.strategy import Strategy
from promptsearch.task import Example, Task, load_task

# Two prompts whose ensemble beats both on the tiny model's sst2-mini dev (found by trying; the tiny model
# is random, so most prompts predict one class).
COMPLEMENTARY = [Candidate("{input} It was", ("awful", "great")), Candidate("{input} It was", ("negative", "positive"))]
OTHERS = [Candidate("Review: {input}\nSentiment:", ("bad", "good")), Candidate("{input} It was", ("no", "yes")),
          Candidate("{input} It was", ("boring", "funny")), Candidate("{input} It was", ("bad", "good"))]


class Fixed(Strategy):
    name = "fixed"
    description = "proposes a fixed list of candidates"

    def __init__(self, candidates=()):
        self.candidates = list(candidates)

    def propose(self, context, n):
        out, self.candidates = self.candidates[:n], self.candidates[n:]
        return [Candidate(c.prompt, c.label_words, strategy=self.name) for c in out]


@pytest.fixture(scope="module")
def task():
    return load_task("sst2-mini")


def softmax(xs):
    exps = [math.exp(x) for x in xs]
    return [e / sum(exps) for e in exps]


def test_classification_is_the_weighted_mean_of_normalised_label_probabilities(tiny, task):
    scorer = Scorer(tiny)
    dev = list(task.dev[:12])
    a, b = COMPLEMENTARY
    raw = [scorer.evaluate(task, m, dev) for m in (a, b)]
    ens = ensemble.make([a, b], [1.0, 3.0])
    before = scorer.stats["examples_scored"]
    results = scorer.evaluate(task, ens, dev)
    assert scorer.stats["examples_scored"] - before == len(dev)  # combined from cached members: no member rescored
    for ex, ra, rb, r in zip(dev, *raw, results):
        # by hand: each member's raw label log-likelihoods softmaxed over its own two words, then 1:3 weighted
        pa, pb = softmax(ra.label_logprobs), softmax(rb.label_logprobs)
        mixed = [0.25 * x + 0.75 * y for x, y in zip(pa, pb)]
        assert r.label_logprobs == pytest.approx([math.log(p) for p in mixed], abs=1e-12)
        assert r.logprob == pytest.approx(math.log(mixed[ex.label]), abs=1e-12)
        best = 0 if mixed[0] >= mixed[1] else 1
        assert r.prediction == a.label_words[best]  # named by the best (first) member's words
        assert r.score == float(best == ex.label)
    assert scorer.evaluate(task, ens, dev) == results  # cached under the ensemble's own key
    assert ens.id != ensemble.make([a, b]).id  # weights are part of the identity


def generation_task():
    ex = Example("q", "Paris", ("Paris", "Paris, France"))
    return Task("capitals", "generation", (ex,), (ex,), (ex,), "exact_match", "{input}"), ex


@pytest.mark.parametrize("answers, weights, expected", [
    (["Rome", "paris ", "Paris"], None, "paris "),  # two of three, case and spaces aside; the first of them says it
    (["Rome", "Paris", "Oslo"], None, "Rome"),  # a three-way tie: the best member's answer
    (["Rome", "Paris", "Paris"], [2, 1, 1], "Rome"),  # weighted tie 2 vs 1+1: the best member's answer
    (["Rome", "Paris", "Paris"], [1.9, 1, 1], "Paris"),
])
def test_generation_is_a_vote_with_ties_to_the_best_member(answers, weights, expected):
    task, ex = generation_task()
    members = [Candidate(f"{i} {{input}}") for i in range(3)]
    results = [[ExampleResult(0.0, a)] for a in answers]
    (r,) = ensemble.combine(task, ensemble.make(members, weights), results, [ex])
    assert r.prediction == expected
    assert r.score == float(expected.strip().lower() == "paris")
    assert math.isnan(r.logprob)


def test_generation_ensemble_on_the_model_votes_the_members_answers(tiny):
    task = load_task("sst2-mini")
    rows = tuple(Example(e.input, w, label=None) for e, w in zip(task.dev[:6], ["good", "bad"] * 3))
    gen = Task("echo", "generation", rows, rows, rows, "contains", "{input}")
    members = [Candidate("{input} It was"), Candidate("Review: {input}\nSentiment:"), Candidate("{input}\nAnswer:")]
    scorer = Scorer(tiny)
    answers = [[r.prediction for r in scorer.evaluate(gen, m, list(rows))] for m in members]
    results = scorer.evaluate(gen, ensemble.make(members), list(rows))
    for i, (ex, r) in enumerate(zip(rows, results)):
        said = [a[i] for a in answers]
        counts = [sum(s.strip().lower() == x.strip().lower() for s in said) for x in said]
        winner = said[max(range(3), key=lambda m: (counts[m], -m))]
        assert r.prediction == winner
        assert r.score == float(ex.output in winner.lower())


def test_an_ensemble_costs_k_evaluations_per_example_even_from_cache(tiny, task):
    members = COMPLEMENTARY + OTHERS[:1]
    search = Search(task, Scorer(tiny), [], Budget(max_evals=10_000), racing=Racing(16, 3))
    search.tell(list(members))
    used = search.evals_used
    rows_before = search.scorer.stats["rows"]
    (trial,) = search.tell([ensemble.make(members)])
    assert search.evals_used - used == 3 * trial.rung  # three members, charged per example
    assert search.per_example[trial.candidate.id] == 3
    # what the members had been scored on already ran no forward pass again
    scored = min(t.rung for t in search.trials.values() if not t.candidate.members)
    assert search.scorer.stats["rows"] - rows_before <= 3 * (trial.rung - scored)


def results_of(scores_by_member, labels):
    """Hand-made classification results: member -> per-example 0/1 correctness (two labels)."""
    out = {}
    for cid, scores in scores_by_member.items():
        rows = []
        for ok, gold in zip(scores, labels):
            pred = gold if ok else 1 - gold
            lps = (-0.1, -2.0) if pred == 0 else (-2.0, -0.1)
            rows.append(ExampleResult(float(ok), ("no", "yes")[pred], lps[gold], lps))
        out[cid] = rows
    return out


def test_selection_adds_only_members_that_raise_the_dev_score():
    labels = [0, 1] * 5
    dev = [Example(f"x{i}", "", label=y) for i, y in enumerate(labels)]
    task = Task("t", "classification", tuple(dev), tuple(dev), tuple(dev), "accuracy", "{input}", ("no", "yes"))
    pool = [Candidate(f"p{i} {{input}}") for i in range(4)]
    # p0 is wrong on 8-9, p1 on 0-2, p2 on 3-5, p3 everywhere. The three first are never wrong together, so
    # their vote is always right; no single one raises p0 (two members that disagree tie), so the pair is
    # taken together; p3 only drags it down.
    wrong = {0: {8, 9}, 1: {0, 1, 2}, 2: {3, 4, 5}, 3: set(range(10))}
    results = results_of({c.id: [float(i not in wrong[k]) for i in range(10)] for k, c in enumerate(pool)}, labels)
    chosen = EnsembleSelection().select(task, pool, results, dev, max_members=4)
    assert chosen == pool[:3]
    values = [EnsembleSelection._value(task, chosen[:i], results, dev)[0] for i in range(1, len(chosen) + 1)]
    assert values == [0.8, 0.8, 1.0]  # the pair is one step: 0.8 -> 1.0
    # nothing left would raise it further
    for c in pool:
        if c not in chosen:
            assert EnsembleSelection._value(task, chosen + [c], results, dev)[0] <= values[-1]


def test_strategy_never_adds_a_member_that_does_not_help_on_the_model(tiny, task):
    search = Search(task, Scorer(tiny), [Fixed(COMPLEMENTARY + OTHERS), EnsembleSelection(weights="fit")],
                    Budget(max_evals=20_000))
    summary = search.run()
    ensembles = [t for t in search.trials.values() if t.candidate.members]
    assert ensembles, "the complementary prompts make an ensemble that helps"
    dev = list(task.dev)
    results = {c.id: search.scorer.evaluate(task, c, dev) for c in COMPLEMENTARY + OTHERS}
    results.update({Candidate(c.prompt, c.label_words, strategy="fixed").id: results[c.id] for c in COMPLEMENTARY + OTHERS})
    uniform = next(t.candidate for t in ensembles if len(set(t.candidate.weights)) == 1)
    members = list(uniform.members)
    values = [EnsembleSelection._value(task, members[:i], results, dev)[0] for i in range(1, len(members) + 1)]
    assert all(b > a for a, b in itertools.pairwise(values))
    best_single = max(EnsembleSelection._value(task, [m], results, dev)[0] for m in members)
    assert values[0] == best_single
    board = summary["leaderboard"]
    full = [r for r in board if r["dev"]["n"] == len(dev)]
    assert full[0]["members"] and full[0]["dev"]["score"] > max(r["dev"]["score"] for r in full if not r.get("members"))


def test_fitted_weights_never_lose_to_uniform_on_dev(tiny, task):
    dev = list(task.dev)
    scorer = Scorer(tiny)
    pool = COMPLEMENTARY + OTHERS[:2]
    results = {c.id: scorer.evaluate(task, c, dev) for c in pool}
    strategy = EnsembleSelection(weights="fit")
    w = strategy.fit_weights(task, pool, results, dev)
    assert sum(w) == pytest.approx(1.0)
    assert strategy._value(task, pool, results, dev, w) >= strategy._value(task, pool, results, dev)


def test_bad_options_are_clear_errors():
    from promptsearch.errors import PromptSearchError
    from promptsearch.strategy import make

    with pytest.raises(PromptSearchError, match="weights must be"):
        make("ensemble", {"weights": "best"})
    with pytest.raises(PromptSearchError, match="at least two"):
        ensemble.make([COMPLEMENTARY[0]])
    with pytest.raises(PromptSearchError, match="non-negative"):
        ensemble.normalized([1, -1], 2)


def ensemble_run(tiny, task, run_dir, config, schedule="even"):
    """A run with a fixed list of prompts then the ensemble stage, logged to run_dir (what runner.run does,
    with a strategy list of our own)."""
    store = RunStore.create(run_dir, config)
    search = Search(task, Scorer(tiny), [Fixed(COMPLEMENTARY + OTHERS), EnsembleSelection()],
                    Budget(max_evals=config["budget"]["max_evals"]), store=store, schedule=schedule)
    summary = search.run()
    store.write_summary({**summary, "run_dir": str(run_dir), "model": tiny.name, "model_fingerprint": tiny.fingerprint})
    return summary


@pytest.mark.parametrize("schedule", ["even", "bandit"])  # bandit: the ensemble is a final stage in its reserve
def test_a_killed_run_with_an_ensemble_stage_resumes_to_the_same_result(tiny, task, tmp_path, schedule):
    config = runner.make_config(task="sst2-mini", strategies=["templates"], budget={"max_evals": 3000})
    full = ensemble_run(tiny, task, tmp_path / "a", config, schedule)
    assert full["best"].get("members") and full["stages"][-1]["strategy"] == "ensemble"
    lines = (tmp_path / "a" / "candidates.jsonl").read_text().splitlines()
    ens_line = next(i for i, line in enumerate(lines) if '"members"' in line)
    for cut_at in (ens_line, len(lines) // 2):  # killed as the ensemble was raced, and before the stage
        cut = tmp_path / f"cut{cut_at}"
        cut.mkdir()
        (cut / "config.json").write_text((tmp_path / "a" / "config.json").read_text())
        (cut / "candidates.jsonl").write_text("\n".join(lines[:cut_at]) + "\n" + lines[cut_at][:25])
        store = RunStore.open(cut)
        store.repair()
        search = Search(task, Scorer(tiny), [Fixed(COMPLEMENTARY + OTHERS), EnsembleSelection()],
                        Budget(max_evals=3000), store=store, schedule=schedule)
        search.resume_from_log()
        resumed = search.run()
        assert resumed["leaderboard"] == full["leaderboard"] and resumed["stages"] == full["stages"]
        assert resumed["best"] == full["best"] and resumed["budget_used"]["evals"] == full["budget_used"]["evals"]
        assert len((cut / "candidates.jsonl").read_text().splitlines()) == len(lines)


def test_export_carries_members_and_eval_reproduces_it(tiny, tiny_dir, task, tmp_path):
    from promptsearch import artifact
    from promptsearch.cli import main
    from promptsearch.export import export_run
    from promptsearch.models.local import FrozenModel

    model = FrozenModel.load(tiny_dir, device="cpu")
    config = runner.make_config(task="sst2-mini", model=tiny_dir, strategies=["templates"], budget={"max_evals": 3000})
    summary = ensemble_run(model, task, tmp_path / "run", config)
    art = export_run(tmp_path / "run", tmp_path / "ens.json", parts=(task, model, Scorer(model)))
    best = Candidate.from_json(summary["best"])
    assert art.options["members"] == [m.to_json() for m in best.members] and art.options["weights"] == list(best.weights)
    again = artifact.read(tmp_path / "ens.json")
    assert again == art and again.candidate().id == best.id
    assert art.scores["test"] == summary["best"]["test"]
    r = CliRunner().invoke(main, ["eval", "--artifact", str(tmp_path / "ens.json"), "--check", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["check"]["ok"] and out["score"] == pytest.approx(art.scores["test"]["score"])
    shown = CliRunner().invoke(main, ["show", str(tmp_path / "run")])
    assert shown.exit_code == 0 and "ensemble of" in shown.output
    assert all(m["prompt"].split("\n")[0][:20] in shown.output for m in art.options["members"])
    # a single prompt and the ensemble, side by side in the registry: the diff names the members
    export_run(tmp_path / "run", tmp_path / "single.json", rank=2, parts=(task, model, Scorer(model)))
    env = {"PROMPTSEARCH_REGISTRY": str(tmp_path / "registry.db")}
    for f in ("single.json", "ens.json"):
        assert CliRunner().invoke(main, ["prompts", "add", str(tmp_path / f), "--name", "p"], env=env).exit_code == 0
    diff = CliRunner().invoke(main, ["prompts", "diff", "p@v1", "p@v2", "--json"], env=env)
    assert diff.exit_code == 0, diff.output
    out = json.loads(diff.stdout)
    assert out["options"][0] == {} and out["options"][1]["weights"] == art.options["weights"]
    assert out["paired_test"] is not None  # both scored on the same test examples


def test_cli_chain_with_an_ensemble_stage_runs(tiny_dir, small_task_dir, tmp_path):
    from promptsearch.cli import main

    r = CliRunner().invoke(main, ["run", "--task", small_task_dir, "--model", tiny_dir, "--strategy", "templates",
                                  "--strategy", "ensemble", "-o", "ensemble.weights=fit", "-o", "ensemble.pool=4",
                                  "--max-evals", "600", "--out", str(tmp_path / "run"), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["budget_used"]["evals"] <= 600 + 3 * 30  # the final check of the top 3 may go past it


def test_bad_ensemble_options_in_an_artifact_are_one_line(tiny_dir, task, tmp_path, tiny):
    from promptsearch import artifact
    from promptsearch.errors import PromptSearchError
    from promptsearch.export import export_run
    from promptsearch.models.local import FrozenModel

    model = FrozenModel.load(tiny_dir, device="cpu")
    config = runner.make_config(task="sst2-mini", model=tiny_dir, strategies=["templates"], budget={"max_evals": 3000})
    ensemble_run(model, task, tmp_path / "run", config)
    export_run(tmp_path / "run", tmp_path / "ens.json", parts=(task, model, Scorer(model)))
    data = json.loads((tmp_path / "ens.json").read_text())
    data["options"]["weights"] = data["options"]["weights"][:1]
    with pytest.raises(PromptSearchError, match="one non-negative number per member"):
        artifact.parse(json.dumps(data).encode(), "x.json")


def test_under_the_bandit_the_final_ensemble_combines_what_the_arms_found(tiny, task):
    # the arms find the complementary pair; the ensemble is a final stage (not an arm) in its reserve of 3 x dev
    arms = [Fixed(COMPLEMENTARY[:1] + OTHERS[:2]), Fixed(COMPLEMENTARY[1:] + OTHERS[2:])]
    arms[1].name = "fixed2"
    final = EnsembleSelection()
    assert final.final and final.reserve(task) == 3 * len(task.dev)
    out = Search(task, Scorer(tiny), [*arms, final], Budget(max_evals=3000), schedule="bandit").run()
    assert [st["strategy"] for st in out["stages"]] == ["fixed", "fixed2", "ensemble"]
    assert out["stages"][-1]["final"] and out["stages"][-1]["evals"] > 0
    ids = {m["id"] for m in out["best"]["members"]}
    assert {c.id for c in COMPLEMENTARY} <= ids  # the pair whose ensemble beats both
    singles = [r for r in out["leaderboard"] if not r.get("members")]
    assert out["best"]["dev"]["score"] > singles[0]["dev"]["score"]


def test_an_ensembles_members_are_shown_with_their_scoring_options():
    from promptsearch.format import members_lines

    a = Candidate("Review: {input}\nSentiment:", calibrate="domain")
    b = Candidate("{input} It was", ("bad", "good"), demos="balanced:2")
    lines = members_lines(ensemble.make([a, b], [3.0, 1.0]).to_json())
    assert lines[1] == "      0.750  Review: {input}⏎Sentiment:  {calibrate: domain}"
    assert lines[2] == "      0.250  {input} It was  [bad/good]  {demos: balanced:2}"
