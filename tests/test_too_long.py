"""Rows a prompt cannot be scored on because, with its demonstrations, they pass the model's context: a run still
finishes and reports them as wrong (saying how many), the final check drops such a prompt as racing does, an export
records them, and predict answers every other input. Tiny model (a context of 2,048 tokens), float32."""

import json

import pytest
from click.testing import CliRunner

import promptsearch as ps
from promptsearch.candidate import Candidate
from promptsearch.cli import main
from promptsearch.cli.search import render_summary
from promptsearch.errors import TooLongError
from promptsearch.scoring import Scorer
from promptsearch.scoring.scorer import evaluate_fitting
from promptsearch.store import RunStore

from .conftest import one_thread, sst2_slice


def _lengthen(path, rows: dict[int, int]) -> None:
    """Repeat the input of each row i of a jsonl file ``times`` times."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for i, times in rows.items():
        lines[i]["input"] = " ".join([lines[i]["input"]] * times)
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))


@pytest.fixture(scope="module")
def long_inputs(tiny_dir, tmp_path_factory):
    """Test row 0 about 1,000 tokens (it fits alone, not with demonstrations), row 1 over the context whatever the
    prompt; a default search on the rest."""
    with one_thread():
        root = tmp_path_factory.mktemp("too-long")
        (root / "task").mkdir()
        task_dir = sst2_slice(root / "task", 32, 32, 30)
        _lengthen(task_dir / "test.jsonl", {0: 60, 1: 200})
        model = ps.load_model(tiny_dir, device="cpu", dtype="float32")
        task = ps.load_task(task_dir)
        assert len(model.encode(task.test[0].input)) < 2000 < len(model.encode(task.test[1].input))
        result = ps.search(task, model, budget=ps.Budget(max_evals=500), run_dir=root / "run", seed=0, selection="dev")
        return root, model, task, result


def test_a_run_with_test_rows_too_long_finishes_and_scores_them_wrong(long_inputs):
    root, _, _, result = long_inputs
    s = result.summary
    assert "1 of 30 test rows do not fit the model's context with the seed prompt: scored as wrong" in s["final_notes"]
    logged = {rec["candidate"]["id"]: rec["results"] for rec in RunStore.open(root / "run").read("test.jsonl")}
    seed_rows = logged[s["seed"]["id"]]
    assert seed_rows[1] == [0.0, "", None, []] and seed_rows[0][1] != ""  # row 0 fits the seed prompt, row 1 nothing
    assert s["seed"]["test"]["score"] == pytest.approx(sum(r[0] for r in seed_rows) / 30)
    best_rows = logged[s["best"]["id"]]
    wrong = sum(r[1] == "" for r in best_rows)
    assert wrong >= 1 and s["best"]["test"]["n"] == 30
    if wrong > 1:
        assert f"{wrong} of 30 test rows do not fit the model's context with the winner: scored as wrong" in s["final_notes"]
    shown = render_summary(s)
    assert "after the search: 1 of 30 test rows do not fit the model's context with the seed prompt: scored as wrong\n" in shown
    assert "raise the limit" not in shown


def test_predict_answers_every_input_that_fits_and_says_which_do_not(long_inputs, tmp_path):
    _, model, task, result = long_inputs
    result.export(tmp_path / "prompt.json")
    art = json.loads((tmp_path / "prompt.json").read_text())
    predicted = ps.load_prompt(tmp_path / "prompt.json").predict([ex.input for ex in task.test], model)
    words = art["label_words"]
    assert [p.prediction for p in predicted] == [words[i] if i >= 0 else None for i in art["test_outcomes"]["preds"]]
    assert predicted[1].prediction is None and "does not fit the model's context of 2048 tokens" in predicted[1].error
    assert predicted[1].to_json()["prediction"] is None and "error" not in predicted[2].to_json()
    r = CliRunner().invoke(main, ["predict", "--artifact", str(tmp_path / "prompt.json"), "--device", "cpu", "--json",
                                  task.test[1].input, task.test[2].input])
    out = json.loads(r.stdout)
    assert r.exit_code == 0 and out["unanswered"] == 1 and out["predictions"][0]["prediction"] is None
    assert out["predictions"][1]["prediction"] in words
    r = CliRunner().invoke(main, ["predict", "--artifact", str(tmp_path / "prompt.json"), "--device", "cpu",
                                  task.test[1].input, task.test[2].input])
    assert "note: 1 of 2 inputs have no prediction: with this prompt they do not fit the model's context" in r.stderr
    r = CliRunner().invoke(main, ["eval", "--artifact", str(tmp_path / "prompt.json"), "--device", "cpu", "--check"])
    assert r.exit_code == 0 and r.output.startswith("reproduced: accuracy"), r.output  # the long rows wrong, as recorded


def test_evaluate_fitting_scores_only_the_rows_it_was_given_as_wrong(long_inputs):
    _, model, task, _ = long_inputs
    scorer = Scorer(model)
    rows = list(task.test[:4])
    results, over = evaluate_fitting(scorer, task, Candidate("Review: {input}\nSentiment:"), rows)
    assert over == [rows[1]] and results[1].prediction == "" and results[1].score == 0.0
    assert [r.prediction for i, r in enumerate(results) if i != 1] == \
        [r.prediction for r in scorer.evaluate(task, Candidate("Review: {input}\nSentiment:"), rows[:1] + rows[2:])]
    long_pool = ps.Task(task.name, task.kind, tuple(rows), task.dev, task.test, task.metric, task.seed_prompt, task.label_words)
    with pytest.raises(TooLongError):  # a bias row (the pool's inputs) is not a row of the call: no score to fail
        evaluate_fitting(scorer, long_pool, Candidate("Review: {input}\nSentiment:", calibrate="batch"), rows[2:3])
    loglik = ps.Task("gen", "generation", (), (), tuple(rows), "loglik", "Q: {input}\nA:")
    with pytest.raises(TooLongError):  # a log-likelihood has no "wrong" value
        evaluate_fitting(scorer, loglik, Candidate("Q: {input}\nA:"), rows)


def _search_failing_at_the_final_check(tiny_dir, tmp_path, monkeypatch, fails, max_evals: int):
    """A search on 100 dev rows whose final check raises TooLongError for each prompt ``fails(candidate)`` picks
    (racing untouched): a budget this small stops racing before all of dev, so the final check scores past the
    last rung."""
    from promptsearch.search import loop

    (tmp_path / "task").mkdir()
    task = ps.load_task(sst2_slice(tmp_path / "task", 40, 100, 10))
    score, top_k = loop.Search._score, loop.Search._top_k_on_all_dev

    def in_final(self):
        self._final = True
        return top_k(self)

    def failing(self, trial, size):
        if getattr(self, "_final", False) and fails(trial.candidate):
            raise TooLongError("example dev-7: prompt and answer take 2049 tokens, over the model's context of 2048")
        return score(self, trial, size)

    monkeypatch.setattr(loop.Search, "_top_k_on_all_dev", in_final)
    monkeypatch.setattr(loop.Search, "_score", failing)
    model = ps.load_model(tiny_dir, device="cpu", dtype="float32")
    with one_thread():
        return ps.search(task, model, budget=ps.Budget(max_evals=max_evals), run_dir=tmp_path / "run", seed=0,
                         selection="dev", final_calibration=None, top_k=3)


def test_the_final_check_drops_a_prompt_too_long_for_a_dev_row_and_checks_the_next(tiny_dir, tmp_path, monkeypatch,
                                                                                  caplog):
    """As racing does: the run goes on with the next prompt of the leaderboard in its place (the first prompt but
    the seed that the final check scores past its last rung is made to fail)."""
    dropped = []

    def first_but_the_seed(c):
        if dropped or c.strategy == "seed":
            return False
        dropped.append(c.id)
        return True

    with caplog.at_level("WARNING"):
        result = _search_failing_at_the_final_check(tiny_dir, tmp_path, monkeypatch, first_but_the_seed, 250)
    assert dropped and "dropped a" in caplog.text and "2049 tokens" in caplog.text
    board = result.summary["leaderboard"]
    assert dropped[0] not in [row["id"] for row in board]
    assert sum(row["dev"]["n"] == 100 for row in board) == 3  # the next prompt was checked in its place


def test_a_winner_whose_bias_rows_do_not_fit_is_shipped_uncalibrated_and_the_summary_says_why(tiny_dir, small_task_dir,
                                                                                            tmp_path, monkeypatch):
    """The final ensemble and the calibrated twin read 32 pool inputs shown with the winner's demonstrations; where
    those do not fit, the run ships the winner as raced, and says so without blaming a limit."""
    from promptsearch.search import loop

    score = loop.Search._score

    def bias_rows_too_long(self, trial, size):
        if trial.candidate.strategy == "final":
            raise TooLongError("example train-3: prompt and answer take 2051 tokens, over the model's context of 2048")
        return score(self, trial, size)

    monkeypatch.setattr(loop.Search, "_score", bias_rows_too_long)
    model = ps.load_model(tiny_dir, device="cpu", dtype="float32")
    with one_thread():
        result = ps.search(ps.load_task(small_task_dir), model, budget=ps.Budget(max_evals=300), run_dir=tmp_path / "run",
                           seed=0, selection="dev")
    s = result.summary
    assert s["best"]["strategy"] != "final" and s["best"]["test"]["n"] == 30
    assert s["final_notes"][0] == ("the final ensemble is not built: its bias rows, with its demonstrations, do not fit "
                                   "the model's context")
    assert s["final_notes"][1].startswith("the winner is not calibrated: its bias rows, with its demonstrations, do "
                                          "not fit the model's context (example train-3: prompt and answer take 2051")
    assert "raise the limit" not in render_summary(s)


def test_eval_scores_a_row_too_long_as_wrong_and_counts_it(long_inputs, tiny_dir):
    root, model, task, _ = long_inputs
    found = ps.evaluate(task, model, split="test")  # the seed prompt: only row 1 is past the context
    assert found.too_long == 1 and found.results[1]["prediction"] == "" and found.results[1]["score"] == 0.0
    assert found.score == pytest.approx(sum(r["score"] for r in found.results) / 30)
    args = ["eval", "--task", str(root / "task"), "--split", "test", "--model", tiny_dir, "--device", "cpu",
            "--dtype", "float32"]
    r = CliRunner().invoke(main, args + ["--json"])
    out = json.loads(r.stdout)
    assert r.exit_code == 0 and out["too_long"] == 1 and out["score"] == pytest.approx(found.score)
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0 and "note: 1 of 30 rows do not fit the model's context with this prompt: scored as wrong" in r.stdout


def test_the_final_check_keeps_the_seed_at_its_rung_where_a_late_dev_row_does_not_fit(tiny_dir, tmp_path, monkeypatch,
                                                                                      caplog):
    """The summary reports the seed whatever happens: a dev row past the context at the final check leaves it at
    the rung it reached, with a warning, and the run ends as usual."""
    with caplog.at_level("WARNING"):
        result = _search_failing_at_the_final_check(tiny_dir, tmp_path, monkeypatch, lambda c: c.strategy == "seed", 100)
    assert "the seed prompt is not checked on all of dev: example dev-7" in caplog.text
    s = result.summary
    assert s["seed"]["dev"]["n"] < 100 and s["seed"]["test"]["n"] == 10 and s["best"]["strategy"] != "seed"
