"""The public Python API on the tiny model: the README's example runs, the API and the CLI share their defaults
and pick the same winner, a custom metric drives a search and resumes, --plain keeps only plain prompts, and tasks
come from rows in memory."""

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import promptsearch as ps
from promptsearch import runner
from promptsearch.candidate import Candidate
from promptsearch.cli import main
from promptsearch.errors import PromptSearchError
from promptsearch.prompt import Prompt
from promptsearch.search.stopping import stop_line
from promptsearch.store import RunStore

from .conftest import cut_run

README = Path(__file__).resolve().parent.parent / "README.md"


def invoke(*args, **kwargs):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kwargs)


def test_the_package_exports_the_api():
    assert set(ps.__all__) >= {"load_task", "load_model", "evaluate", "search", "load_prompt", "Budget", "Task", "Prompt"}
    assert callable(ps.search) and ps.Budget(max_evals=5).max_evals == 5


def test_readme_python_example_runs_on_the_tiny_model(tiny_dir, tmp_path, monkeypatch):
    block = re.search(r"## Python\n.*?```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert block, "README.md has a Python section with a python code block"
    code = block.group(1)
    assert "ps.load_model()" in code and "max_evals=2000" in code
    # the same code on the tiny model and a small budget
    code = code.replace("ps.load_model()", f"ps.load_model({tiny_dir!r}, device='cpu')").replace("max_evals=2000", "max_evals=120")
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 (our own README)
    assert isinstance(scope["result"], ps.SearchResult) and (tmp_path / "prompt.json").exists()
    assert len(scope["predictions"]) == 2 and scope["predictions"][0].prediction in ("negative", "positive")
    assert scope["score"].n == 200 and scope["score"].ci_low <= scope["score"].score <= scope["score"].ci_high


def test_make_config_defaults_are_the_cli_defaults(tiny_dir, small_task_dir, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(runner, "run", lambda config, *a, **k: seen.append(config) or {})
    monkeypatch.setattr("promptsearch.cli.search.render_summary", lambda s: "")
    invoke("run", "--model", tiny_dir, "--task", small_task_dir, "--out", tmp_path / "r", "--quiet")
    api = runner.make_config(task=small_task_dir, model=tiny_dir)
    assert seen[0] == {**api, "executor": seen[0]["executor"], "served": seen[0]["served"]}
    assert api["strategies"] == ["templates", "clarify", "ensemble"] and api["schedule"] == "bandit"
    assert runner.make_config(strategies=["clarify"])["schedule"] == "even"
    assert runner.make_config(plain=True)["strategies"] == ["templates", "clarify"]  # no ensemble


def test_api_and_cli_pick_the_same_winner(tiny_dir, small_task_dir, tmp_path):
    r = invoke("run", "--model", tiny_dir, "--task", small_task_dir, "--max-evals", 300, "--seed", 2,
               "--out", tmp_path / "cli", "--json", "--quiet", "--device", "cpu")
    cli = json.loads(r.stdout)
    result = ps.search(ps.load_task(small_task_dir), ps.load_model(tiny_dir, device="cpu"),
                       budget=ps.Budget(max_evals=300), run_dir=tmp_path / "api", seed=2)
    assert result.summary["best"] == cli["best"]
    assert result.leaderboard == cli["leaderboard"] and result.summary["stages"] == cli["stages"]
    assert result.best.text == cli["best"]["prompt"] and result.best.scores["test"] == cli["best"]["test"]
    # what a newcomer prints: why it stopped (the CLI's last line), and a result that shows the winner's options
    assert result.stopped.startswith("stopped: ") and result.stopped == stop_line(cli)
    assert f"estimate={result.estimate['score']:.3f} ({result.estimate['which']}, n={result.estimate['n']})" in repr(result)
    shown = repr(result)
    for key in ("calibrate", "demos"):
        assert (f"{key}: {cli['best'].get(key)}" in shown) == bool(cli["best"].get(key))


def test_a_prompt_prints_short_with_what_decides_its_score(small_task_dir):
    """Before 2026-12-06 `print(result.best)` printed the dataclass, demonstration pool and all (6,786 characters
    for a TREC winner of 90 rows), and a winner whose text is the seed's looked like the seed."""
    task = ps.load_task(small_task_dir)
    cand = Candidate("Review: {input}\nSentiment:", calibrate="batch", demos="similar:2")
    prompt = Prompt.from_candidate(cand, task, scores={"dev": {"score": 0.75, "n": 20}, "test": {"score": 0.7, "n": 30}})
    assert prompt.demo_pool and repr(prompt) == ("Prompt('Review: {input}\\nSentiment:', classification, calibrate=batch, "
                                                 "demos=similar:2, dev=0.750 (n=20), test=0.700 (n=30))")


def test_search_resumes_an_unfinished_run_and_reads_back_a_finished_one(tiny_dir, small_task_dir, tmp_path):
    model, task = ps.load_model(tiny_dir, device="cpu"), ps.load_task(small_task_dir)
    whole = ps.search(task, model, budget=ps.Budget(max_evals=200), run_dir=tmp_path / "whole", strategies=["templates"])
    cut = cut_run(tmp_path / "whole", tmp_path / "cut")
    resumed = ps.search(task, model, budget=ps.Budget(max_evals=200), run_dir=cut, strategies=["templates"])
    assert resumed.summary["best"] == whole.summary["best"] and resumed.leaderboard == whole.leaderboard
    assert resumed.summary["budget_used"]["evals"] == whole.summary["budget_used"]["evals"]
    again = ps.search(task, model, budget=ps.Budget(max_evals=200), run_dir=cut, strategies=["templates"])
    assert again.summary == resumed.summary
    with pytest.raises(PromptSearchError, match="holds another search \\(budget"):
        ps.search(task, model, budget=ps.Budget(max_evals=300), run_dir=cut, strategies=["templates"])


def test_custom_metric_drives_a_search_and_resumes(tiny_dir, small_task_dir, tmp_path):
    # the winner as found (not calibrated after the search), so that ps.evaluate below scores the same prompt
    args = ["--model", tiny_dir, "--task", small_task_dir, "--strategy", "templates", "--max-evals", 200,
            "--metric", "tests.metric_fixture:says_positive", "--json", "--quiet", "--device", "cpu",
            "--final-calibration", "none"]
    whole = json.loads(invoke("run", *args, "--out", tmp_path / "whole").stdout)
    assert whole["metric"] == "tests.metric_fixture:says_positive"
    assert RunStore.open(tmp_path / "whole").config["metric"] == "tests.metric_fixture:says_positive"
    # every logged score is the metric's: 1 exactly where the prediction is 'positive'
    for rec in RunStore.open(tmp_path / "whole").read("candidates.jsonl"):
        assert all(row[0] == float(row[1] == "positive") for row in rec["results"].values())
    accuracy = ps.evaluate(ps.load_task(small_task_dir), ps.load_model(tiny_dir, device="cpu"), whole["best"]["prompt"],
                           label_words=whole["best"]["label_words"], split="test")
    by_metric = ps.evaluate(ps.load_task(small_task_dir), ps.load_model(tiny_dir, device="cpu"), whole["best"]["prompt"],
                            label_words=whole["best"]["label_words"], split="test", metric="tests.metric_fixture:says_positive")
    assert by_metric.score == whole["best"]["test"]["score"] == sum(r["prediction"] == "positive" for r in accuracy.results) / 30
    cut_run(tmp_path / "whole", tmp_path / "cut")
    resumed = json.loads(invoke("run", "--resume", tmp_path / "cut", "--json", "--quiet").stdout)
    assert resumed["best"] == whole["best"] and resumed["leaderboard"] == whole["leaderboard"]
    # eval --metric scores the same; the exported artifact records the metric and --check reproduces under it
    cli = json.loads(invoke("eval", "--model", tiny_dir, "--task", small_task_dir, "--prompt", whole["best"]["prompt"],
                            "--label-words", ",".join(whole["best"]["label_words"] or ["negative", "positive"]),
                            "--split", "test", "--metric", "tests.metric_fixture:says_positive", "--json").stdout)
    assert cli["score"] == by_metric.score and cli["metric"] == "tests.metric_fixture:says_positive"
    invoke("export", tmp_path / "whole", "-o", tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text())["task"]["metric"] == "tests.metric_fixture:says_positive"
    checked = invoke("eval", "--artifact", tmp_path / "m.json", "--check", "--device", "cpu")
    assert checked.exit_code == 0 and checked.stdout.startswith("reproduced"), checked.stdout


def test_a_metric_callable_from_python_and_bad_metrics_in_one_line(tiny_dir, small_task_dir, tmp_path):
    from tests.metric_fixture import half

    model, task = ps.load_model(tiny_dir, device="cpu"), ps.load_task(small_task_dir)
    result = ps.search(task, model, budget=ps.Budget(max_evals=100), run_dir=tmp_path / "r", strategies=["templates"],
                       metric=half)
    assert result.summary["metric"] == "tests.metric_fixture:half"
    assert result.summary["best"]["test"]["score"] <= 0.5
    with pytest.raises(PromptSearchError, match="must lie in \\[0, 1\\]"):
        ps.evaluate(task, model, metric="tests.metric_fixture:out_of_range")
    r = CliRunner().invoke(main, ["run", "--model", tiny_dir, "--task", small_task_dir, "--metric", "no_such_module:f",
                                  "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "cannot import no_such_module" in r.stderr and not (tmp_path / "x").exists()


def test_plain_keeps_only_prompts_whose_text_is_the_whole_prompt(tiny_dir, small_task_dir, tmp_path):
    r = invoke("run", "--model", tiny_dir, "--task", small_task_dir, "--plain", "--max-evals", 400, "--out", tmp_path / "p",
               "--json", "--quiet", "--device", "cpu")
    out = json.loads(r.stdout)
    logged = [rec["candidate"] for rec in RunStore.open(tmp_path / "p").read("candidates.jsonl")]
    assert len(logged) > 5 and RunStore.open(tmp_path / "p").config["plain"] is True
    assert not any(c.get("calibrate") or c.get("demos") or c.get("members") for c in logged)
    assert [s["strategy"] for s in out["stages"]] == ["templates", "clarify"]
    assert (tmp_path / "p" / "best_prompt.txt").read_text() == out["best"]["prompt"] + "\n"
    r = CliRunner().invoke(main, ["run", "--model", tiny_dir, "--task", small_task_dir, "--plain", "--strategy",
                                  "ensemble", "--out", str(tmp_path / "e")])
    assert r.exit_code == 2 and "--plain" in r.stderr


def test_tasks_from_records_and_pandas_search_and_resume_from_the_saved_copy(tiny_dir, tmp_path):
    pd = pytest.importorskip("pandas")
    words = ["fun", "dull", "love", "hate", "plot", "story", "acting", "great", "good", "bad"]
    rows = [{"text": f"{a} {b}", "label": "positive" if i % 2 else "negative"}
            for i, (a, b) in enumerate((a, b) for a in words for b in words[:4])]
    task = ps.Task.from_pandas(pd.DataFrame(rows), input="text", output="label", label_words=["negative", "positive"])
    same = ps.Task.from_records(rows, input="text", output="label", label_words=["negative", "positive"])
    assert task == same and (len(task.train), len(task.dev), len(task.test)) == (24, 8, 8)
    assert sum(ex.label for ex in task.test) == 4  # stratified: half of each split per class
    model = ps.load_model(tiny_dir, device="cpu")
    result = ps.search(task, model, budget=ps.Budget(max_evals=60), run_dir=tmp_path / "r", strategies=["templates"])
    saved = RunStore.open(tmp_path / "r").config["task"]
    assert Path(saved) == (tmp_path / "r" / "task").resolve() and ps.load_task(saved).test == task.test
    resumed = json.loads(invoke("run", "--resume", tmp_path / "r", "--json", "--quiet").stdout)
    assert resumed["best"] == result.summary["best"]
    with pytest.raises(PromptSearchError, match="holds a search of other data"):
        ps.search(ps.Task.from_records(rows[:-2], input="text", output="label", label_words=["negative", "positive"]),
                  model, budget=ps.Budget(max_evals=60), run_dir=tmp_path / "r", strategies=["templates"])


def test_evaluate_matches_cli_eval(tiny_dir):
    r = invoke("eval", "--model", tiny_dir, "--prompt", "Review: {input}\\nSentiment:", "--limit", 20, "--json",
               "--calibrate", "contextual", "--device", "cpu")
    cli = json.loads(r.stdout)
    got = ps.evaluate("sst2-mini", ps.load_model(tiny_dir, device="cpu"), "Review: {input}\nSentiment:", limit=20,
                      calibrate="contextual")
    assert (got.score, got.n, got.ci_low, got.ci_high) == (cli["score"], cli["n"], cli["ci_low"], cli["ci_high"])
    assert [r["prediction"] for r in got.results] == [r["prediction"] for r in cli["results"]]


def test_a_proposer_writes_the_text_as_run_proposer_does(tiny_dir, small_task_dir, tmp_path, monkeypatch):
    """Before: ps.search(proposer=...) recorded the proposer and added ape to the strategies, but built its scorer
    without it, so the scored model wrote the instructions (`run --proposer` loads it: runner.load_parts)."""
    proposer = ps.load_model(tiny_dir)
    calls = []
    generate = proposer.generate
    monkeypatch.setattr(proposer, "generate", lambda texts, *a, **k: calls.append(len(texts)) or generate(texts, *a, **k))
    model = ps.load_model(tiny_dir)
    result = ps.search(small_task_dir, model, budget=ps.Budget(max_evals=60), run_dir=tmp_path / "given",
                       strategies=["ape"], proposer=proposer, final_calibration=None)
    assert calls and RunStore.open(result.run_dir).config["proposer"] == tiny_dir  # it wrote; the config names it
    seen = {}
    run = runner.run
    monkeypatch.setattr(runner, "run", lambda config, run_dir, **kw: seen.update(kw["parts"][2].__dict__) or run(config, run_dir, **kw))
    ps.search(small_task_dir, model, budget=ps.Budget(max_evals=30), run_dir=tmp_path / "spec", strategies=["ape"],
              proposer=tiny_dir, final_calibration=None)
    assert seen["proposer"] is not model and seen["proposer"].name == proposer.name  # loaded from the spec


def test_loading_the_embedded_model_prints_no_bar_and_leaves_transformers_bars_as_they_were(capfd):
    """transformers' "Loading weights" bar printed through ps.search(progress=False); the cached embedded copy loads
    in under a second, so it loads without one, and the user's own setting of transformers' bars is kept."""
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()
    model = ps.load_model(device="cpu", dtype="float32")
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled() and model.spec is None
