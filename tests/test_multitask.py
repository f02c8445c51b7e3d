"""Universal prompts across tasks (promptsearch/multitask.py) on the tiny model: the objective against a
hand computation, racing over every task, per-task label words, the extension's constraint, resume."""

import json
import math
import shutil

import pytest
from click.testing import CliRunner

from promptsearch import runner
from promptsearch.candidate import Candidate
from promptsearch.cli import main
from promptsearch.errors import PromptSearchError
from promptsearch.metrics import summarize
from promptsearch.multitask import INFEASIBLE, MultiScorer, MultiSearch, aggregate, build_multitask, load_multitask
from promptsearch.scoring import Scorer
from promptsearch.search import Budget, Racing
from promptsearch.task import BUNDLED_DIR, load_task

from .test_search import ListStrategy

PROMPTS = ["Review: {input}\nSentiment:", "{input} It was", "Text: {input}\nLabel:", "{input}\nAnswer:",
           "Input: {input}\nLabel:", "Sentence: {input}\nCategory:"]


def write_task(directory, name, label_words, seed_prompt, start, train=24, dev=18, test=18):
    """Rows of the bundled SST-2 sample from ``start`` on, under other label words and another seed prompt."""
    directory.mkdir()
    src = BUNDLED_DIR / "sst2-mini"
    for split, n in (("train", train), ("dev", dev), ("test", test)):
        rows = [json.loads(line) for line in (src / f"{split}.jsonl").read_text().splitlines()[start:start + n]]
        for r in rows:
            r["output"] = label_words[r["label"]]
        (directory / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (directory / "task.json").write_text(json.dumps({"name": name, "label_words": label_words, "seed_prompt": seed_prompt}))
    return str(directory)


@pytest.fixture(scope="module")
def two_tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    a = write_task(root / "alpha", "alpha", ["negative", "positive"], "{input}\nIs this positive or negative?", 0)
    b = write_task(root / "beta", "beta", ["bad", "good"], "Review: {input}\nSentiment:", 40, dev=12)
    return a, b


def config_for(tasks, strategies=("list",), objective="mean", budget=None, extend=None, **extra):
    section = {"tasks": list(tasks), "objective": objective, "extend": extend, "compare": {}}
    return runner.make_config(task=tasks[0], strategies=list(strategies), multitask=section,
                              budget=budget or {"max_evals": 100_000, "max_seconds": None},
                              racing={"min_examples": 8, "eta": 3}, **extra)


def test_dev_interleaves_every_task_and_rungs_hold_equal_shares(two_tasks):
    task = load_multitask(config_for(two_tasks))
    assert [t.name for t in task.parts] == ["alpha", "beta"] and task.label_words == ()
    origins = [ex.origin for ex in task.dev]
    assert origins[:24] == ["alpha", "beta"] * 12 and origins[24:] == ["alpha"] * 6  # beta has 12 dev rows
    # each task's rows come in the seeded order a single-task run of that task would race them in
    from promptsearch.search import dev_order

    alpha = load_task(two_tasks[0])
    assert [ex.input for ex in task.dev if ex.origin == "alpha"] == [ex.input for ex in dev_order(alpha, 0)]
    search = MultiSearch(task, None, [], Budget(), racing=Racing(8, 3))  # racing set-up needs no model
    assert search.rungs == [8, 24, 30]  # whole rounds of the two tasks, then all of dev
    for size in search.rungs[:-1]:
        shares = [sum(ex.origin == n for ex in search.dev_order[:size]) for n in ("alpha", "beta")]
        assert shares[0] == shares[1] == size // 2


def test_each_row_is_scored_with_its_own_tasks_label_words(tiny, two_tasks):
    task = load_multitask(config_for(two_tasks))
    inner = Scorer(tiny)
    scorer = MultiScorer(inner, task)
    c = Candidate("Text: {input}\nLabel:")
    rows = list(task.dev[:6])
    results = scorer.evaluate(task, c, rows)
    for ex, r in zip(rows, results):
        part, plain = task.rows[ex.key]
        assert r == inner.evaluate(part, c, [plain])[0]
        assert r.prediction in part.label_words  # alpha answers negative/positive, beta bad/good
    assert {r.prediction for r, ex in zip(results, rows) if ex.origin == "beta"} <= {"bad", "good"}


def test_objective_is_the_mean_or_min_of_gains_over_each_tasks_own_seed(tiny, two_tasks):
    for objective in ("mean", "min"):
        task = load_multitask(config_for(two_tasks, objective=objective))
        scorer = Scorer(tiny)
        search = MultiSearch(task, scorer, [ListStrategy(PROMPTS)], Budget(max_evals=100_000), racing=Racing(8, 3))
        summary = search.run()
        best = Candidate.from_json(summary["best"])
        gains = {}
        for t in task.parts:  # by hand: each task's accuracy on all of its dev, minus its own seed prompt's
            mine = summarize(t.metric, scorer.evaluate(t, best, t.dev), t.dev, t.label_words).score
            seed = summarize(t.metric, scorer.evaluate(t, Candidate(t.seed_prompt), t.dev), t.dev, t.label_words).score
            gains[t.name] = mine - seed
        expected = sum(gains.values()) / 2 if objective == "mean" else min(gains.values())
        assert summary["best"]["dev"]["objective"] == pytest.approx(expected)
        assert summary["best"]["dev"]["n"] == len(task.dev)
        for row in summary["tasks"]:
            assert row["gain"]["dev"] == pytest.approx(gains[row["name"]])
            assert row["best"]["dev"]["n"] == len(task.part(row["name"]).dev)
            assert row["best"]["test"]["n"] == len(task.part(row["name"]).test)
        # the universal best is never worse on dev than the universal start prompt
        assert summary["best"]["dev"]["objective"] >= summary["seed"]["dev"]["objective"]
        # every candidate raced at least one rung holding rows of both tasks
        for t in search.trials.values():
            assert set(search.rungs[0:1]) <= set(t.rungs)


def test_aggregate_by_hand():
    value, lo, hi = aggregate("mean", {"a": 0.2, "b": -0.1}, {"a": 0.01, "b": 0.04})
    assert value == pytest.approx(0.05)
    assert hi - value == pytest.approx(1.959963984540054 * math.sqrt(0.05) / 2)
    value, lo, hi = aggregate("min", {"a": 0.2, "b": -0.1}, {"a": 0.01, "b": 0.04})
    assert value == pytest.approx(-0.1) and hi - value == pytest.approx(1.959963984540054 * 0.2)


def test_extension_constraint_ranks_a_candidate_that_drops_an_old_task_below_all_feasible(tiny, two_tasks):
    """The start prompt scores the old task; a candidate that scores it below the start's 95% CI on the
    same rows is infeasible, even with the larger objective."""
    start = "Text: {input}\nLabel:"
    extend = {"source": "test", "kind": "run", "prompt": start, "tasks": [two_tasks[0]]}
    task = load_multitask(config_for(two_tasks, extend=extend))
    assert task.constrained == ("alpha",) and task.seed_prompt == start
    scorer = Scorer(tiny)
    search = MultiSearch(task, scorer, [], Budget(), racing=Racing(8, 3))
    rows = list(task.dev)
    alpha = task.part("alpha")
    alpha_rows = [task.rows[ex.key][1] for ex in rows if ex.origin == "alpha"]
    before = summarize("accuracy", scorer.evaluate(alpha, Candidate(start), alpha_rows), alpha_rows, alpha.label_words)
    # a candidate whose every alpha answer is wrong: the start prompt's results with the scores flipped to 0
    bad = Candidate("Review: {input}\nSentiment:")
    results = search.scorer.evaluate(task, bad, rows)
    from dataclasses import replace

    forced = [replace(r, score=0.0) if ex.origin == "alpha" else replace(r, score=1.0) for ex, r in zip(rows, results)]
    score = search.objective(bad, forced, rows)
    assert before.ci_low > 0  # so an alpha accuracy of 0 is below it
    assert not score.feasible and score.score == pytest.approx(score.objective - INFEASIBLE)
    assert score.tasks["alpha"]["before"]["score"] == pytest.approx(before.score)
    # the start prompt itself is feasible and ranks above it, and so does a feasible prompt with a lower objective
    own = search.objective(Candidate(start), search.scorer.evaluate(task, Candidate(start), rows), rows)
    assert own.feasible and own.score > score.score
    worse = [replace(r, score=0.0) if ex.origin == "beta" else r for ex, r in zip(rows, search.scorer.evaluate(task, Candidate(start), rows))]
    low = search.objective(Candidate(start), worse, rows)
    assert low.feasible and low.objective < score.objective and low.score > score.score


def test_universal_run_resumes_to_the_same_result(tiny, two_tasks, tmp_path):
    config = config_for(two_tasks, strategies=("templates", "clarify"), budget={"max_evals": 700, "max_seconds": None})
    task = load_multitask(config)
    full = runner.run(config, tmp_path / "a", parts=(task, tiny, Scorer(tiny)))
    assert full["multitask"]["tasks"] == ["alpha", "beta"]
    # the summary has what a single-task run's has (one Search.summary builds both)
    assert full["schedule"] == config["schedule"] and [s["strategy"] for s in full["stages"]] == ["templates", "clarify"]
    assert full["budget_used"]["tokens"] > 0
    # each task's own seed is charged (18 + 12 dev rows); the start prompt is counted where it is raced
    assert full["budget_used"]["charged"] == 18 + 12
    lines = (tmp_path / "a" / "candidates.jsonl").read_text().splitlines()
    for rec in map(json.loads, lines):  # templates' label-word phase proposes nothing here: no candidate has its own
        assert rec["candidate"]["label_words"] is None
    cut = tmp_path / "b"
    cut.mkdir()
    shutil.copy(tmp_path / "a" / "config.json", cut / "config.json")
    base = (tmp_path / "a" / "baselines.jsonl").read_text().splitlines()
    (cut / "baselines.jsonl").write_text(base[0] + "\n")  # killed while logging the baselines' scores
    (cut / "candidates.jsonl").write_text("\n".join(lines[: len(lines) // 2]) + "\n" + lines[len(lines) // 2][:30])
    resumed = runner.run(None, cut, resume=True, parts=(load_multitask(config), tiny, Scorer(tiny)))
    assert resumed["leaderboard"] == full["leaderboard"]
    assert resumed["best"] == full["best"] and resumed["tasks"] == full["tasks"]
    assert resumed["budget_used"]["evals"] == full["budget_used"]["evals"]


def test_extend_run_resumes_to_the_same_result_and_reports_before_after(tiny, two_tasks, tmp_path):
    first = config_for(two_tasks, strategies=("templates",), budget={"max_evals": 300, "max_seconds": None})
    done = runner.run(first, tmp_path / "first", parts=(load_multitask(first), tiny, Scorer(tiny)))
    # extend the two-task run to a third task
    third = write_task(tmp_path / "gamma", "gamma", ["no", "yes"], "Input: {input}\nLabel:", 80, dev=12)
    from promptsearch.multitask import multitask_config

    section = multitask_config([third], None, str(tmp_path / "first"), [], None, ["templates"])
    assert section["extend"]["prompt"] == done["best"]["prompt"]
    assert section["tasks"][-1] == third and len(section["tasks"]) == 3
    config = runner.make_config(task=section["tasks"][0], strategies=["templates", "clarify"], multitask=section,
                                budget={"max_evals": 600, "max_seconds": None}, racing={"min_examples": 9, "eta": 3})
    full = runner.run(config, tmp_path / "ext", parts=(load_multitask(config), tiny, Scorer(tiny)))
    assert full["multitask"]["old_tasks"] == ["alpha", "beta"] and full["multitask"]["new_tasks"] == ["gamma"]
    assert full["seed"]["prompt"] == done["best"]["prompt"]
    for row in full["tasks"]:
        assert row["old"] == (row["name"] != "gamma")
        if row["old"]:  # the winner was feasible: each old task within the CI of before on all of dev
            assert row["within_ci"]["dev"] and row["best"]["dev"]["score"] >= row["start"]["dev"]["ci_low"]
    lines = (tmp_path / "ext" / "candidates.jsonl").read_text().splitlines()
    cut = tmp_path / "ext-cut"
    cut.mkdir()
    shutil.copy(tmp_path / "ext" / "config.json", cut / "config.json")
    shutil.copy(tmp_path / "ext" / "baselines.jsonl", cut / "baselines.jsonl")
    (cut / "candidates.jsonl").write_text("\n".join(lines[: len(lines) // 3]) + "\n")
    resumed = runner.run(None, cut, resume=True, parts=(load_multitask(config), tiny, Scorer(tiny)))
    assert resumed["leaderboard"] == full["leaderboard"] and resumed["tasks"] == full["tasks"]


def test_bad_input_is_one_line(two_tasks, tmp_path):
    cli = CliRunner()

    def fails(args, needle):
        result = cli.invoke(main, args)
        assert result.exit_code == 2, result.output
        assert needle in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1

    fails(["run", "--task", two_tasks[0], "--objective", "min"], "--objective needs two or more --task")
    fails(["run", "--task", two_tasks[0], "--compare-run", f"alpha={tmp_path}"], "--compare-run goes with a multi-task run")
    fails(["run", "--task", two_tasks[0], "--task", two_tasks[1], "--strategy", "autoprompt"], "does not run on several tasks")
    fails(["run", "--task", two_tasks[0], "--task", two_tasks[0]], "two tasks are named 'alpha'")
    fails(["run", "--extend", str(tmp_path / "nothing"), "--task", two_tasks[1]], "neither a run directory nor an artifact")
    fails(["run", "--extend", str(tmp_path), "--task", two_tasks[1]], "not a run directory")
    fails(["run", "--task", two_tasks[0], "--task", two_tasks[1], "--compare-run", "nope"], "must look like TASK=RUN_DIR")
    with pytest.raises(PromptSearchError, match="two tasks are named"):
        build_multitask([load_task(two_tasks[0])] * 2, 0)


def test_cli_run_show_report_extend_and_compare(tiny_dir, two_tasks, tmp_path):
    cli = CliRunner()

    def ok(*args):
        result = cli.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    single = tmp_path / "alpha-only"
    ok("run", "--model", tiny_dir, "--task", two_tasks[0], "--strategy", "templates", "--max-evals", "150",
       "--out", str(single), "--json", "--quiet")
    multi = tmp_path / "multi"
    s = json.loads(ok("run", "--model", tiny_dir, "--task", two_tasks[0], "--task", two_tasks[1], "--strategy", "templates",
                      "--max-evals", "250", "--objective", "min", "--compare-run", f"alpha={single}",
                      "--out", str(multi), "--json"))
    assert s["multitask"]["objective"] == "min" and [t["name"] for t in s["tasks"]] == ["alpha", "beta"]
    alpha = s["tasks"][0]
    assert alpha["single_task"]["test"] == json.loads((single / "summary.json").read_text())["best"]["test"]
    for t in s["tasks"]:
        for row in ("seed", "start", "best"):
            for split in ("dev", "test"):
                assert {"score", "n", "ci_low", "ci_high"} <= set(t[row][split])
    text = ok("show", str(multi))
    assert "universal prompt for alpha, beta" in text and "single-task best" in text and "own seed" in text
    shown = json.loads(ok("show", str(multi), "--json"))
    assert shown["tasks"] == s["tasks"]
    report = json.loads(ok("report", str(multi), "--json", "--quiet"))
    assert report["runs"][0]["tasks"] == s["tasks"] and "| alpha |" in report["table"]
    gamma = write_task(tmp_path / "gamma", "gamma", ["no", "yes"], "Input: {input}\nLabel:", 80, dev=12)
    ext = tmp_path / "ext"
    e = json.loads(ok("run", "--model", tiny_dir, "--extend", str(multi), "--task", gamma, "--strategy", "templates",
                      "--max-evals", "250", "--out", str(ext), "--json"))
    assert e["multitask"]["old_tasks"] == ["alpha", "beta"] and e["seed"]["prompt"] == s["best"]["prompt"]
    assert "adding a task" in ok("show", str(ext))
    result = cli.invoke(main, ["export", str(multi), "-o", str(tmp_path / "a.json")])
    assert result.exit_code == 2 and "multi-task run" in result.output
    # an exported single-task prompt extends too: its task becomes the old task
    ok("export", str(single), "-o", str(tmp_path / "alpha.json"))
    a = json.loads(ok("run", "--model", tiny_dir, "--extend", str(tmp_path / "alpha.json"), "--task", two_tasks[1],
                      "--strategy", "templates", "--max-evals", "150", "--out", str(tmp_path / "from-artifact"), "--json"))
    assert a["multitask"]["old_tasks"] == ["alpha"] and a["multitask"]["new_tasks"] == ["beta"]
    assert a["seed"]["prompt"] == json.loads((tmp_path / "alpha.json").read_text())["prompt"]
    result = cli.invoke(main, ["run", "--resume", str(ext), "--task", gamma])
    assert result.exit_code == 2 and "drop --task" in result.output


def test_compare_run_must_be_a_finished_single_task_run_of_the_same_task(two_tasks, tmp_path):
    from promptsearch.multitask_report import single_task_best
    from promptsearch.store import RunStore

    alpha, beta = load_task(two_tasks[0]), load_task(two_tasks[1])
    run = tmp_path / "r"
    RunStore.create(run, runner.make_config(task=two_tasks[0]))
    with pytest.raises(PromptSearchError, match="has not finished"):
        single_task_best(str(run), alpha)
    summary = {"best": {"prompt": "p {input}", "dev": {"score": 0.5}, "test": {"score": 0.6}}}
    (run / "summary.json").write_text(json.dumps(summary))
    assert single_task_best(str(run), alpha)["test"] == {"score": 0.6}
    with pytest.raises(PromptSearchError, match="not .*beta"):
        single_task_best(str(run), beta)


def test_evolution_runs_on_a_universal_prompt(tiny, two_tasks, tmp_path):
    """Evolution's paraphrases and edits go through the wrapped scorer; every candidate keeps per-task label words."""
    config = config_for(two_tasks, strategies=("evolution",), budget={"max_evals": 400, "max_seconds": None},
                        options={"evolution": {"population": 4}})
    summary = runner.run(config, tmp_path / "evo", parts=(load_multitask(config), tiny, Scorer(tiny)))
    records = [json.loads(line) for line in (tmp_path / "evo" / "candidates.jsonl").read_text().splitlines()]
    assert {r["candidate"]["strategy"] for r in records} >= {"seed", "evolution"}
    assert all(r["candidate"]["label_words"] is None for r in records)
    assert summary["best"]["dev"]["n"] == 30 and len(summary["tasks"]) == 2


def test_killed_multitask_and_extend_runs_resume_to_the_same_result(tiny_dir, two_tasks, tmp_path):
    """Real processes, SIGKILLed half-way through their log, then resumed: the same result as uninterrupted."""
    import subprocess

    from .test_cli import ONE_THREAD, _cli, kill_halfway

    gamma = write_task(tmp_path / "gamma", "gamma", ["no", "yes"], "Input: {input}\nLabel:", 80, dev=12)
    common = ["--model", tiny_dir, "--strategy", "templates", "--strategy", "clarify", "--max-evals", "600", "--quiet"]
    setups = {"multi": ["--task", two_tasks[0], "--task", two_tasks[1], "--objective", "min"],
              "extend": ["--extend", str(tmp_path / "multi-whole"), "--task", gamma]}
    for name, args in setups.items():
        whole = subprocess.run(_cli("run", *args, *common, "--out", str(tmp_path / f"{name}-whole"), "--json"),
                               capture_output=True, text=True, timeout=600, env=ONE_THREAD)
        assert whole.returncode == 0, whole.stderr
        expected = json.loads(whole.stdout)
        n_lines = len((tmp_path / f"{name}-whole" / "candidates.jsonl").read_text().splitlines())
        cut = tmp_path / f"{name}-cut"
        log = kill_halfway(_cli("run", *args, *common, "--out", str(cut)), cut, n_lines)
        resumed = subprocess.run(_cli("run", "--resume", str(cut), "--json"), capture_output=True, text=True, timeout=600,
                                 env=ONE_THREAD)
        assert resumed.returncode == 0, resumed.stderr
        got = json.loads(resumed.stdout)
        assert got["leaderboard"] == expected["leaderboard"] and got["tasks"] == expected["tasks"]
        assert got["best"] == expected["best"] and got["budget_used"]["evals"] == expected["budget_used"]["evals"]
        assert len(log.read_text().splitlines()) == n_lines  # nothing scored twice, nothing lost


@pytest.mark.parametrize("rule", ["similar:2", "balanced:1"])
def test_a_demonstration_rule_on_a_universal_prompt_shows_each_row_its_own_tasks_rows(tiny, two_tasks, rule):
    """One shared instruction, per-task demonstrations: a row of alpha is shown alpha's train rows answered
    in alpha's label words, never beta's (nor the interleaved union of both trains), and scored so."""
    from promptsearch.scoring import demos
    from promptsearch.template import render

    task = load_multitask(config_for(two_tasks))
    trains = {t.name: {ex.input for ex in t.train} for t in task.parts}
    assert not trains["alpha"] & trains["beta"]  # so a shown row tells which pool it came from
    c = Candidate("Text: {input}\nLabel:", demos=rule)
    rows = list(task.dev[:8])
    results = MultiScorer(Scorer(tiny), task).evaluate(task, c, rows)
    for ex, r in zip(rows, results):
        part, plain = task.rows[ex.key]
        other = next(t for t in task.parts if t is not part)
        prompt = demos.Demonstrations().prompts(part, c, [plain])
        text = render(prompt if isinstance(prompt, str) else prompt[0], plain.input)
        lines = text.split("\n")
        shown = [line[len("Text: "):] for line in lines if line.startswith("Text: ")]
        answers = [line[len("Label: "):] for line in lines if line.startswith("Label: ")]
        assert len(shown) == 3 and shown[-1] == plain.input  # two demonstrations, then the row itself
        assert all(s in trains[part.name] for s in shown[:-1]) and not any(s in trains[other.name] for s in shown[:-1])
        assert len(answers) == 2 and all(a in part.label_words for a in answers)
        if rule.startswith("balanced"):  # one per class of the row's own task
            assert sorted(answers) == sorted(part.label_words)
        assert r.prediction in part.label_words
    # the multi-task scorer's results are those of scoring each task's rows on that task alone
    for part in task.parts:
        mine = [(task.rows[ex.key][1], r) for ex, r in zip(rows, results) if task.rows[ex.key][0] is part]
        alone = Scorer(tiny).evaluate(part, c, [plain for plain, _ in mine])
        assert len(mine) == 4 and [r for _, r in mine] == alone


def test_clarify_proposes_the_rules_for_a_universal_prompt_and_an_extension_keeps_its_start_rule(tiny, two_tasks, tmp_path):
    from promptsearch.multitask import multitask_config
    from promptsearch.strategy import make

    task = load_multitask(config_for(two_tasks))
    search = MultiSearch(task, Scorer(tiny), [], Budget(max_evals=10_000), racing=Racing(8, 3))
    search.tell([Candidate(task.seed_prompt)])
    edits = make("clarify").edits(search.context(0), Candidate(task.seed_prompt))
    assert [c.demos for c in edits[:4]] == ["similar:4", "similar:8", "similar:16", "balanced:2"]  # first: the most promising lever here
    assert all(c.calibrate is None for c in edits)  # no shared label words to calibrate
    # a finished universal run whose best has a rule: the extension starts from prompt and rule, and the
    # old tasks' "before" (the constraint) is that candidate, not the bare prompt
    from promptsearch.store import RunStore

    config = config_for(two_tasks, strategies=("templates",))
    store = RunStore.create(tmp_path / "first", config)
    rules = [Candidate(p, strategy="list", demos=r) for p in PROMPTS[:3] for r in ("balanced:1", "similar:1", "similar:2")]
    done = MultiSearch(load_multitask(config), Scorer(tiny), [Proposes(rules)], Budget(max_evals=100_000),
                       store=store, racing=Racing(8, 3)).run()
    store.write_summary(done)
    assert done["best"]["demos"] in ("balanced:1", "similar:1", "similar:2")  # a rule won on the tiny model
    from promptsearch.multitask_report import render_summary

    assert f"demonstrations: {done['best']['demos']}, each task's rows" in render_summary(done)
    third = write_task(tmp_path / "gamma", "gamma", ["no", "yes"], "Input: {input}\nLabel:", 80, dev=12)
    section = multitask_config([third], None, str(tmp_path / "first"), [], None, ["clarify"])
    assert section["extend"]["demos"] == done["best"]["demos"]
    ext = load_multitask(config_for([*two_tasks, third], strategies=("clarify",), extend=section["extend"]))
    search = MultiSearch(ext, Scorer(tiny), [], Budget(max_evals=10_000), racing=Racing(8, 3))
    start = search.start_candidate()
    assert (start.prompt, start.demos) == (done["best"]["prompt"], done["best"]["demos"])
    rows = list(ext.dev)
    own = search.objective(start, search.scorer.evaluate(ext, start, rows), rows)
    assert own.feasible and own.tasks["alpha"]["before"] == own.tasks["alpha"]["score"]
    assert [(c, t.name) for c, t in search.baseline_candidates()][-2:] == [(start, "alpha"), (start, "beta")]


class Proposes(ListStrategy):
    """Proposes given candidates (with their scoring options) once."""

    def propose(self, context, n):
        out, self.prompts = self.prompts[:n], self.prompts[n:]
        return out
