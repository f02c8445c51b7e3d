"""Artifacts on the tiny random model: export from a run, schema round trip, bad files, the model
fingerprint refusal, and the monitor's decision on unchanged and label-flipped test data."""

import json
import shutil

import pytest
from click.testing import CliRunner

from promptsearch import artifact, monitor, runner
from promptsearch.cli import main
from promptsearch.cli.prompts import describe
from promptsearch.errors import PromptSearchError
from promptsearch.export import export_run
from promptsearch.format import fmt_score
from promptsearch.prompt import Prompt
from promptsearch.scoring import Scorer
from promptsearch.store import RunStore
from promptsearch.task import load_task

from .conftest import one_thread, sst2_slice


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """The tiny model (seed 0) and a different one (seed 1), each saved as a model directory."""
    from promptsearch.testing import tiny_model

    dirs = []
    for seed in (0, 1):
        d = tmp_path_factory.mktemp(f"tiny-{seed}")
        m = tiny_model(seed)
        m.model.save_pretrained(d)
        m.tokenizer.save_pretrained(d)
        dirs.append(str(d))
    return dirs


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    """sst2-mini with small train/dev (a quick search) and its whole 200-row test split."""
    return sst2_slice(tmp_path_factory.mktemp("task"), 40, 30, 200)


@pytest.fixture(scope="module")
def exported(model_dirs, task_dir, tmp_path_factory):
    """A finished tiny run and its best prompt exported: (run dir, artifact path, artifact, summary)."""
    from promptsearch.models.local import FrozenModel

    with one_thread():
        out = tmp_path_factory.mktemp("exported")
        # the winner as found: the monitor test rescores it with the `tiny` fixture (float32) where the run loaded the
        # model in the host's dtype, and calibration puts the random model's labels on near-ties that the dtype flips
        config = runner.make_config(task=str(task_dir), model=model_dirs[0], strategies=["templates"], budget={"max_evals": 120},
                                    final_calibration="none")
        model = FrozenModel.load(model_dirs[0], device="cpu")
        parts = (load_task(str(task_dir)), model, Scorer(model))
        summary = runner.run(config, out / "run", parts=parts)
        art = export_run(out / "run", out / "best.json")
        return out / "run", out / "best.json", art, summary


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_export_records_what_was_found_and_round_trips(exported, model_dirs):
    _, path, art, summary = exported
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert on_disk["schema"] == artifact.SCHEMA and on_disk["schema_version"] == 1
    assert artifact.read(path) == art
    assert artifact.Artifact.from_json(json.loads(artifact.dumps(art))) == art
    assert art.prompt == summary["best"]["prompt"] and art.seed_prompt == summary["seed"]["prompt"]
    assert art.model["fingerprint"] == artifact.weights_fingerprint(model_dirs[0]) and art.model["spec"] == model_dirs[0]
    run_task = runner.load_task_of(runner.read_config(RunStore.open(exported[0])))  # as the run saw it (selection.py)
    assert art.task["splits"]["test"]["n"] == 200 and art.task["splits"]["dev"]["n"] == len(run_task.dev) < 30
    assert art.scores["test"] == summary["best"]["test"] and art.scores["seed_test"] == summary["seed"]["test"]
    assert art.scores["paired_test"] == summary["paired_test"]
    outcomes = art.test_outcomes["scores"]
    assert len(outcomes) == 200 and sum(outcomes) / 200 == art.scores["test"]["score"]
    assert art.provenance["lineage"][0]["id"] == art.provenance["candidate_id"] == summary["best"]["id"]
    assert art.provenance["strategies"] == ["templates"] and art.label_words == ("negative", "positive")
    # the held-out estimate `run` printed travels with the winner (a few labelled rows: a quarter held out)
    assert summary["estimate"]["which"] == "holdout" and art.scores["holdout"] == summary["best"]["holdout"]
    assert art.scores["seed_holdout"] == summary["seed"]["holdout"]
    assert Prompt.from_artifact(art).scores["holdout"] == summary["best"]["holdout"]
    shown = describe(art)
    assert f"  held-out {fmt_score(summary['best']['holdout'])}  <- the estimate: rows no choice saw" in shown
    assert shown[shown.index(f"  held-out {fmt_score(summary['best']['holdout'])}  <- the estimate: rows no choice saw") - 1] \
        .endswith("(chose it: biased upward)")


def _broken(data, **changes):
    data = json.loads(json.dumps(data))
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = data
        for key in path:
            node = node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value
    return json.dumps(data).encode()


@pytest.mark.parametrize("change,message", [
    ({"schema_version": 2}, "schema version 2 is not supported"),
    ({"schema": "other"}, "not a promptsearch prompt artifact"),
    ({"model": KeyError}, "missing field 'model'"),
    ({"model__fingerprint": KeyError}, "missing field 'model.fingerprint'"),
    ({"chat": "yes"}, "field 'chat' must be bool, not str"),
    ({"scores__test__n": "200"}, "field 'scores.test.n' must be int, not str"),
    ({"prompt": "no slot"}, "field 'prompt'"),
    ({"label_words": ["", "x"]}, "non-empty strings"),
    ({"task__label_words": "positive"}, "field 'task.label_words' must be a list of non-empty strings"),
    ({"label_words": ["x" * 201, "y"]}, "field 'label_words': at most 1000 label words of at most 200 characters each"),
    ({"task__label_words": [f"w{i}" for i in range(1001)]}, "field 'task.label_words': at most 1000 label words"),
    ({"test_outcomes__scores": [1.0]}, "'test_outcomes' lists must all hold scores.test.n = 200 entries"),
    ({"scores__holdout": {"score": 0.5}}, "missing field 'scores.holdout.metric'"),
    ({"scores__seed_holdout": [0.5]}, "missing field 'scores.seed_holdout.metric'"),
    ({"test_outcomes__preds": ["positive"] * 200}, "'test_outcomes.preds' must hold only int"),
    ({"scoring__calibration_bias": [0.1]}, "'scoring.calibration_bias' must be an object with a 'model' string"),
    ({"scoring__calibration_bias": {"model": "m", "biases": {"k": [0.1, "x"]}}}, "must hold lists of finite numbers"),
    ({"scoring__calibration_bias": {"model": "m", "biases": {"k": [float("nan")]}}}, "must hold lists of finite numbers"),
    ({"scoring__calibration_bias": {"model": "m", "biases": {"k": []}}}, "must hold lists of finite numbers"),
])
def test_bad_artifact_is_one_clear_line(exported, change, message):
    data = json.loads(exported[1].read_text())
    with pytest.raises(PromptSearchError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        artifact.parse(_broken(data, **change), "a.json")
    assert "\n" not in str(e.value) and str(e.value).startswith("a.json: ")


@pytest.mark.parametrize("raw,message", [(b"\xff\xfe{}", "not UTF-8"), (b'{"schema": ', "bad JSON at line 1"), (b"[1]", "not a promptsearch")])
def test_unreadable_artifact_bytes(raw, message):
    with pytest.raises(PromptSearchError, match=message):
        artifact.parse(raw, "a.json")


def test_cli_refuses_a_bad_artifact_with_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff not json")
    r = invoke("eval", "--artifact", str(bad))
    assert r.exit_code == 2 and r.output.strip().splitlines() == [f"error: {bad}:1: not UTF-8 text (byte 0xff); save the file as UTF-8"]


def test_other_model_is_refused_unless_allowed(exported, model_dirs):
    _, path, art, _ = exported
    other = artifact.weights_fingerprint(model_dirs[1])
    assert other != art.model["fingerprint"]
    with pytest.raises(PromptSearchError, match="model fingerprint differs.*--allow-other-model"):
        monitor.check_model(art, other, allow_other=False)
    monitor.check_model(art, other, allow_other=True)
    r = invoke("eval", "--artifact", str(path), "--model", model_dirs[1], "--device", "cpu")
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "model fingerprint differs" in r.output
    r = invoke("eval", "--artifact", str(path), "--model", model_dirs[1], "--device", "cpu", "--allow-other-model", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["n"] == 200


def test_eval_artifact_reproduces_the_recorded_test_score(exported):
    _, path, art, _ = exported
    r = invoke("eval", "--artifact", str(path), "--device", "cpu", "--json")
    out = json.loads(r.stdout)
    assert r.exit_code == 0 and out["split"] == "test" and out["n"] == 200
    assert out["score"] == art.scores["test"]["score"]
    r = invoke("eval", "--artifact", str(path), "--device", "cpu", "--check")
    assert r.exit_code == 0 and r.output.startswith("reproduced: accuracy") and len(r.output.strip().splitlines()) == 1


def _flipped_copy(task_dir, art, dest, share=0.3):
    """The test split with `share` of its labels flipped, taken among rows the prompt got right, so
    the drop is certain whatever the (random) model's accuracy."""
    shutil.copytree(task_dir, dest)
    rows = [json.loads(line) for line in (dest / "test.jsonl").read_text().splitlines()]
    right = [i for i, s in enumerate(art.test_outcomes["scores"]) if s == 1.0]
    flip = right[: round(share * len(rows))]
    assert len(flip) == round(share * len(rows))
    words = json.loads((dest / "task.json").read_text())["label_words"]
    for i in flip:
        rows[i]["label"] = 1 - rows[i]["label"]
        rows[i]["output"] = words[rows[i]["label"]]
    (dest / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return dest


def test_monitor_passes_unchanged_data_and_fails_flipped_labels(exported, task_dir, tmp_path, tiny):
    _, path, art, _ = exported
    scorer = Scorer(tiny)
    same = load_task(str(task_dir))
    score, rows = monitor.evaluate(art, same, scorer, same.test)
    verdict = monitor.decide(art, same.test, score, rows)
    assert verdict.ok and verdict.same_data and verdict.score == art.scores["test"]["score"]

    flipped_dir = _flipped_copy(task_dir, art, tmp_path / "flipped")
    flipped = load_task(str(flipped_dir))
    score, rows = monitor.evaluate(art, flipped, scorer, flipped.test)
    verdict = monitor.decide(art, flipped.test, score, rows)
    assert not verdict.ok and not verdict.same_data
    assert score.score == pytest.approx(art.scores["test"]["score"] - 0.3)
    assert verdict.test.p_value < 1e-4 and verdict.message.startswith("DROP: accuracy")

    r = invoke("eval", "--artifact", str(path), "--task", str(flipped_dir), "--device", "cpu", "--check")
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1 and "DROP" in r.output
    shuffled = tmp_path / "shuffled"  # the same rows in another order and place: still the recorded data
    shutil.copytree(task_dir, shuffled)
    lines = (shuffled / "test.jsonl").read_text().splitlines()
    (shuffled / "test.jsonl").write_text("\n".join(reversed(lines)) + "\n")
    r = invoke("eval", "--artifact", str(path), "--task", str(shuffled), "--device", "cpu", "--check")
    assert r.exit_code == 0 and r.output.startswith("reproduced")


def test_export_of_a_lower_rank_scores_it_on_test(exported, tmp_path):
    run_dir, _, best, _ = exported
    r = invoke("export", str(run_dir), "--rank", "2", "-o", str(tmp_path / "second.json"), "--json")
    assert r.exit_code == 0, r.output
    second = artifact.read(tmp_path / "second.json")
    assert second.provenance["rank"] == 2 and second.prompt != best.prompt
    assert "holdout" not in second.scores  # the held-out rows estimate the winner only
    assert second.scores["test"]["n"] == 200 and len(second.test_outcomes["scores"]) == 200
    assert invoke("export", str(run_dir), "--rank", "99", "-o", str(tmp_path / "x.json")).exit_code == 2
    assert not (tmp_path / "x.json").exists()


def test_export_refuses_an_unfinished_run(exported, tmp_path):
    run_dir = tmp_path / "unfinished"
    shutil.copytree(exported[0], run_dir)
    (run_dir / "summary.json").unlink()
    r = invoke("export", str(run_dir), "-o", str(tmp_path / "a.json"))
    assert r.exit_code == 2 and "has not finished" in r.output and not (tmp_path / "a.json").exists()


def test_soft_prompt_exports_its_vectors_beside_it_and_reproduces(model_dirs, task_dir, tmp_path, monkeypatch):
    from promptsearch.models.local import FrozenModel
    from promptsearch.store import RunStore

    model = FrozenModel.load(model_dirs[0], device="cpu")
    options = {"soft-prompt": {"n_virtual_tokens": 3, "epochs": 1, "init": "vocab", "dev_examples": 8}}
    config = runner.make_config(task=str(task_dir), model=model_dirs[0], strategies=["soft-prompt"], options=options,
                                budget={"max_evals": 3000, "max_seconds": None}, racing={"min_examples": 8})
    runner.run(config, tmp_path / "run", parts=(load_task(str(task_dir)), model, Scorer(model)))
    rank = next(r["rank"] for r in RunStore.open(tmp_path / "run").leaderboard() if r["soft"])
    r = invoke("export", str(tmp_path / "run"), "--rank", str(rank), "-o", str(tmp_path / "soft.json"))
    assert r.exit_code == 0, r.output
    art = artifact.read(tmp_path / "soft.json")
    assert art.soft["file"] == "soft.json.soft.safetensors" and "not text" in art.soft["note"] and "soft prompt" in r.output
    assert artifact.soft_vectors(art, tmp_path / "soft.json").shape[0] == 3
    out = json.loads(invoke("eval", "--artifact", str(tmp_path / "soft.json"), "--device", "cpu", "--json").stdout)
    assert out["score"] == art.scores["test"]["score"] and out["n"] == 200

    monkeypatch.setenv("PROMPTSEARCH_REGISTRY", str(tmp_path / "reg.db"))
    assert invoke("prompts", "add", str(tmp_path / "soft.json"), "--name", "soft").exit_code == 0
    (tmp_path / "back").mkdir()
    assert invoke("prompts", "export", "soft@v1", "-o", str(tmp_path / "back" / "soft.json")).exit_code == 0
    back = tmp_path / "back" / art.soft["file"]
    assert back.read_bytes() == (tmp_path / art.soft["file"]).read_bytes()
    back.write_bytes(back.read_bytes()[:-4] + b"xxxx")  # tampered vectors are refused, not scored
    r = invoke("eval", "--artifact", str(tmp_path / "back" / "soft.json"), "--device", "cpu")
    assert r.exit_code == 2 and "differ from the ones the artifact was scored with" in r.output
