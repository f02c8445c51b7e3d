"""The winner's calibration after the final check (``final_calibration``, search/loop.py): the summary's best is
the winner's batch-calibrated twin scored on all of dev and test, export writes it by default, and ``none``,
``--plain``, a generation task and a config.json from before the setting keep the winner as found."""

import json

import pytest
from click.testing import CliRunner

from promptsearch import runner
from promptsearch.candidate import Candidate
from promptsearch.cli import main
from promptsearch.errors import PromptSearchError
from promptsearch.scoring import Scorer, calibration
from promptsearch.search import Budget, Search
from promptsearch.store import RunStore
from promptsearch.task import Example, Task

PROMPT = "Review: {input}\nSentiment:"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_twin_calibrates_a_prompt_or_each_uncalibrated_member():
    plain = Candidate(PROMPT, demos="similar:4")
    twin = calibration.twin(plain, "batch")
    assert (twin.calibrate, twin.demos, twin.parents, twin.strategy) == ("batch", "similar:4", (plain.id,), "final")
    assert calibration.twin(twin, "batch") is None  # calibrated already
    done = Candidate("Input: {input}\nLabel:", calibrate="contextual")
    group = Candidate(PROMPT, members=(plain, done), weights=(0.5, 0.5))
    both = calibration.twin(group, "batch")
    assert [m.calibrate for m in both.members] == ["batch", "contextual"] and both.weights == group.weights
    assert calibration.twin(both, "batch") is None
    assert calibration.twin(plain, "contextual") is None and calibration.twin(group, "domain") is None  # similar:4


@pytest.fixture(scope="module")
def runs(tiny_dir, small_task_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("final-calibration")
    common = ["--model", tiny_dir, "--task", small_task_dir, "--strategy", "templates", "--max-evals", 300,
              "--json", "--quiet", "--device", "cpu"]
    found = {}
    for name, extra in (("batch", ["--final-ensemble", 1]), ("none", ["--final-calibration", "none"]),
                        ("plain", ["--plain"]), ("ensemble", [])):
        r = invoke("run", *common, *extra, "--out", out / name)
        assert r.exit_code == 0, r.output
        found[name] = json.loads(r.stdout)
    return out, found


def test_the_best_is_the_winners_batch_twin_scored_on_all_of_dev_and_test(runs, small_task_dir):
    out, found = runs
    s, kept = found["batch"], found["none"]
    winner = kept["best"]  # the same search without the last step: the same winner
    best = s["best"]
    assert best["calibrate"] == "batch" and best["strategy"] == "final" and best["parents"] == [winner["id"]]
    assert best["prompt"] == winner["prompt"] and not winner.get("calibrate")
    assert best["dev"]["n"] == winner["dev"]["n"]  # all of the choosing rows
    assert best["test"]["n"] == winner["test"]["n"]
    assert best["dev"]["score"] != winner["dev"]["score"] or best["test"]["score"] != winner["test"]["score"] or \
        best["dev"]["ci_low"] != winner["dev"]["ci_low"]  # scored anew, not copied
    board = RunStore.open(out / "batch").leaderboard()
    assert best["id"] in {row["id"] for row in board}
    assert s["budget_used"]["evals"] > kept["budget_used"]["evals"]  # its dev rows and bias rows are counted
    # export writes the best by default (it need not be the leaderboard's first)
    r = invoke("export", out / "batch", "-o", out / "best.json", "--json", "--quiet")
    assert r.exit_code == 0, r.output
    art = json.loads((out / "best.json").read_text())
    assert art["options"] == {"calibrate": "batch"} and art["demo_pool"]
    assert art["scores"]["test"]["score"] == pytest.approx(best["test"]["score"])
    r = invoke("eval", "--artifact", out / "best.json", "--task", small_task_dir, "--device", "cpu", "--check")
    assert r.exit_code == 0 and r.output.startswith("reproduced"), r.output


def test_none_and_plain_keep_the_winner_as_found(runs):
    out, found = runs
    for name in ("none", "plain"):
        best = found[name]["best"]
        assert not best.get("calibrate") and best["strategy"] != "final"
        assert best["id"] == RunStore.open(out / name).leaderboard()[0]["id"]
    assert RunStore.open(out / "none").config["final_calibration"] is None


def test_the_default_combines_the_final_checks_top_three_each_calibrated(runs, small_task_dir):
    """The final ensemble (search/loop.py): the first three distinct prompts the final check scored on all of dev, in
    the search's ranking, one uniform ensemble, each member calibrated; its lineage is its members; exported, it
    predicts as scored."""
    out, found = runs
    best = found["ensemble"]["best"]
    board = [row for row in RunStore.open(out / "none").leaderboard() if row["dev"]["n"] == best["dev"]["n"]]
    top = []
    for row in board:  # the same search without the last step: the same final check
        for m in row.get("members") or [row]:
            if m["id"] not in top and len(top) < 3:
                top.append(m["id"])
    assert len(top) == 3 and best["strategy"] == "final" and best["parents"] == top
    assert [m["calibrate"] for m in best["members"]] == ["batch"] * 3 and best["weights"] == [1.0, 1.0, 1.0]
    assert best["edit"] == "the final check's top 3 as one uniform ensemble, each member calibrate:batch"
    assert best["id"] in {row["id"] for row in RunStore.open(out / "ensemble").leaderboard()}
    r = invoke("export", out / "ensemble", "-o", out / "ensemble.json", "--json", "--quiet")
    assert r.exit_code == 0, r.output
    r = invoke("eval", "--artifact", out / "ensemble.json", "--task", small_task_dir, "--device", "cpu", "--check")
    assert r.exit_code == 0 and r.output.startswith("reproduced"), r.output
    r = invoke("show", out / "ensemble")
    assert "after the search: the final check's top 3 as one uniform ensemble" in r.output


def test_a_finished_run_resumes_to_the_same_best(runs):
    out, found = runs
    r = invoke("run", "--resume", out / "batch", "--json", "--quiet")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["best"] == found["batch"]["best"]


def test_bad_values_and_old_configs(tmp_path):
    with pytest.raises(PromptSearchError, match="final_calibration 'platt': use one of contextual, domain, batch or none"):
        runner.make_config(final_calibration="platt")
    assert runner.make_config()["final_calibration"] == "batch"
    assert runner.final_calibration(runner.make_config(plain=True)) is None
    store = RunStore.create(tmp_path / "old", {k: v for k, v in runner.make_config(task="sst2-mini").items()
                                               if k not in ("final_calibration", "final_ensemble")})
    assert runner.read_config(store)["final_calibration"] is None  # a run from before the setting finishes as it did
    assert runner.make_config()["final_ensemble"] == 3 and runner.read_config(store)["final_ensemble"] == 1
    for bad in (0, 11, 2.5, True, "3"):
        with pytest.raises(PromptSearchError, match="a whole number from 1"):
            runner.make_config(final_ensemble=bad)
    r = CliRunner().invoke(main, ["run", "--final-calibration", "sometimes"])
    assert r.exit_code == 2 and "sometimes" in r.output


def test_a_generation_task_is_left_alone(tiny):
    rows = tuple(Example(w, w[::-1]) for w in ("hot", "up", "left", "big", "wet", "old"))
    gen = Task("reverse", "generation", rows, rows, rows, "exact_match", "{input} ->")
    search = Search(gen, Scorer(tiny), [], Budget(max_evals=100), final_calibration="batch")
    summary = search.run()
    assert summary["best"]["strategy"] == "seed" and not summary["best"].get("calibrate")


@pytest.mark.parametrize("mode, bias", [("batch", calibration.BATCH_ROWS), ("contextual", 3), ("domain", 1)])
def test_the_final_check_reserves_what_the_twin_costs_in_its_mode(mode, bias):
    """Time and token limits stop a run early enough for the final check; the winner's twin costs all of dev and
    its mode's bias rows (32 inputs, 3 content-free ones or 1 premise), an ensemble's each member's."""
    from promptsearch.testing import FakeModel

    words = ("bad", "good")
    rows = tuple(Example(f"review {i} {words[i % 2]}", words[i % 2], label=i % 2) for i in range(40))
    task = Task("t", "classification", rows, rows[:20], rows[:10], "accuracy", PROMPT, words)

    def reserved(winner, final_calibration):
        search = Search(task, Scorer(FakeModel()), [], Budget(max_evals=1000), top_k=1, final_calibration=final_calibration)
        search.trials = {"w": type("T", (), {"candidate": winner, "rung": 20, "sort_key": lambda self: (1,)})()}
        return search.final_check_evals()

    plain = Candidate(PROMPT, demos="balanced:2")
    assert reserved(plain, mode) - reserved(plain, None) == 20 + bias
    group = Candidate(PROMPT, members=(plain, Candidate("Text: {input}\nLabel:")), weights=(0.5, 0.5))
    assert reserved(group, mode) - reserved(group, None) == 2 * 20 + 2 * bias
    assert reserved(calibration.twin(plain, mode), mode) == reserved(plain, None)  # calibrated already: no twin


def test_under_a_time_limit_the_final_ensemble_is_built_only_where_it_fits(tiny, small_task_dir, monkeypatch, caplog):
    """The reserve for the final check is the twin's, not the ensemble's (an optional last step must not end the
    search early); at the end the ensemble is built only if scoring it on test, at its members' own measured
    speeds, still ends the run within --max-seconds; otherwise the winner's twin alone, and the log says why."""
    from promptsearch.strategies.templates import TemplateEnumeration

    from promptsearch.task import load_task

    task = load_task(small_task_dir)

    def run(**budget):
        search = Search(task, Scorer(tiny), [TemplateEnumeration()], Budget(max_evals=300, **budget), final_calibration="batch",
                        final_ensemble=3)
        return search, search.run()

    _, roomy = run(max_seconds=10_000)
    assert roomy["best"]["edit"].startswith("the final check's top 3") and len(roomy["best"]["members"]) == 3
    monkeypatch.setattr(Search, "row_cost_seconds", lambda self, c: 1e6 if c.members else 0.0)
    with caplog.at_level("INFO", logger="promptsearch.search.loop"):
        search, tight = run(max_seconds=10_000)
    assert "the final ensemble is not built" in caplog.text
    assert tight["final_notes"] == ["the final ensemble is not built: scoring it on test would pass --max-seconds"]
    assert "final_notes" not in roomy
    from promptsearch.cli.search import render_single

    assert "    after the search: the final ensemble is not built: scoring it on test would pass --max-seconds (raise " \
           "the limit to have it)" in render_single(tight).splitlines()
    best = tight["best"]
    assert not best.get("members") and best["calibrate"] == "batch" and best["strategy"] == "final"
    assert best["parents"] == [next(r["id"] for r in tight["leaderboard"] if r["strategy"] != "final")]  # the winner's
    # the reserve is the same whatever the final ensemble's size
    one = Search(task, Scorer(tiny), [], Budget(max_seconds=100), final_calibration="batch", final_ensemble=1)
    one.trials = search.trials
    assert search.final_check_evals() == one.final_check_evals()


def test_whether_the_final_ensemble_fits_reads_each_members_measured_speed(tiny, small_task_dir):
    from promptsearch.task import load_task

    task = load_task(small_task_dir)
    search = Search(task, Scorer(tiny), [], Budget(max_seconds=100), final_calibration="batch", final_ensemble=3)
    fast, slow = Candidate(PROMPT), Candidate(PROMPT, demos="similar:8")
    search.row_seconds = {fast.id: [1.0, 100], slow.id: [30.0, 100]}  # 0.01 s and 0.3 s a row
    group = Candidate(PROMPT, members=(fast, slow), weights=(0.5, 0.5))
    assert search.row_cost_seconds(group) == pytest.approx(0.31)
    n_test = len(task.test)
    search.elapsed_before = 100 - 0.31 * n_test - 1  # just room for the members (the run's mean speed is 0 here)
    assert search._fits_in_time(group)
    search.elapsed_before += 2
    assert not search._fits_in_time(group)
    assert Search(task, Scorer(tiny), [], Budget(max_evals=10), final_ensemble=3)._fits_in_time(group)  # no time limit


def test_the_time_reserve_reads_the_top_prompts_measured_speed(tiny, small_task_dir):
    """A prompt with nearest demonstrations costs many plain rows a row: the reserve for the final checks counts its
    own measured seconds per row (its rows left on dev, the twin's bias rows, and test), not the run's mean."""
    from promptsearch.task import load_task

    task = load_task(small_task_dir)
    search = Search(task, Scorer(tiny), [], Budget(max_seconds=100), top_k=1, final_calibration="batch")
    slow = Candidate(PROMPT, demos="similar:8")
    search.trials = {slow.id: type("T", (), {"candidate": slow, "rung": 4, "sort_key": lambda self: (1,)})()}
    search.seconds_per_eval = lambda: 0.01
    search.row_seconds = {slow.id: [3.0, 10]}  # 0.3 s a row
    n_dev, n_test = len(task.dev), len(task.test)
    bias = calibration.extra_rows(calibration.twin(slow, "batch"))
    want = (n_dev - 4) * 0.3 + bias * 0.3 + (0.3 + 0.01 + 0.01) * n_test
    assert search.final_check_seconds() == pytest.approx(want)
    assert search.final_check_seconds() > 10 * search.final_check_evals() * search.seconds_per_eval()


def test_under_a_time_limit_the_winner_is_calibrated_only_where_its_bias_rows_fit(tiny, small_task_dir, caplog):
    """Batch calibration scores 32 more rows of the winner: where those rows show long nearest demonstrations
    they can cost more than the search did, so under --max-seconds the twin is made only if its bias rows and the
    test check still end the run in time; otherwise the winner ships as found, and the log says why."""
    from promptsearch.task import load_task

    task = load_task(small_task_dir)
    search = Search(task, Scorer(tiny), [], Budget(max_seconds=100), final_calibration="batch")
    winner = Candidate(PROMPT, demos="similar:8")
    found = calibration.twin(winner, "batch")
    search.row_seconds = {winner.id: [30.0, 100]}  # 0.3 s a row
    search.seconds_per_eval = lambda: 0.0
    need = calibration.extra_rows(found) * 0.3 + 0.3 * len(task.test)
    search.elapsed_before = 100 - need - 1
    assert search._twin_fits_in_time(winner, found)
    search.elapsed_before += 2
    assert not search._twin_fits_in_time(winner, found)
    with caplog.at_level("INFO", logger="promptsearch.search.loop"):
        assert search._calibrated_winner(winner) is None
    assert "the winner is not calibrated: its bias rows would pass --max-seconds" in caplog.text
    assert search.final_notes == ["the winner is not calibrated: its bias rows would pass --max-seconds"]
    roomy = Search(task, Scorer(tiny), [], Budget(max_evals=1000), final_calibration="batch")
    roomy.row_seconds = search.row_seconds
    assert roomy._calibrated_winner(winner) == found  # no time limit: always calibrated


def test_where_only_the_ensembles_calibration_would_pass_the_limit_the_winner_alone_is_calibrated(tiny, small_task_dir):
    """The final ensemble ships calibrated or not at all: where its members' bias rows would pass --max-seconds but
    the winner's alone fit, the winner alone is calibrated, and the summary names the ensemble as left out, not
    the calibration."""
    from promptsearch.strategies.templates import TemplateEnumeration

    from promptsearch.task import load_task

    task = load_task(small_task_dir)
    search = Search(task, Scorer(tiny), [TemplateEnumeration()], Budget(max_evals=300, max_seconds=10_000),
                    final_calibration="batch", final_ensemble=3)
    search._twin_fits_in_time = lambda winner, found: not winner.members
    s = search.run()
    assert s["final_notes"] == ["the final ensemble is not built: calibrating its members would pass the limit"]
    assert not s["best"].get("members") and s["best"]["calibrate"] == "batch" and s["best"]["strategy"] == "final"
    search = Search(task, Scorer(tiny), [TemplateEnumeration()], Budget(max_evals=300, max_seconds=10_000),
                    final_calibration="batch", final_ensemble=3)
    search._twin_fits_in_time = lambda winner, found: False
    s = search.run()
    assert s["final_notes"] == ["the final ensemble is not built: calibrating its members would pass the limit",
                                "the winner is not calibrated: its bias rows would pass --max-seconds"]
    assert not s["best"].get("members") and not s["best"].get("calibrate")
