"""The feedback loop: rate (scripted keyboard input, files), the rating predictor, comment edits, refine."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from promptsearch.strategies.refine import Refine

from promptsearch import feedback, runner, selection
from promptsearch.candidate import Candidate
from promptsearch.cli import main
from promptsearch.errors import PromptSearchError
from promptsearch.feedback import (
    BlendedScorer,
    Feedback,
    Rating,
    RatingModel,
    check_rating,
    comment_edits,
    load_edit_map,
    read_ratings,
)
from promptsearch.scoring import Scorer
from promptsearch.store import RunStore
from promptsearch.task import load_task

PAIRS = [("good", "bad"), ("bad", "good"), ("love", "hate"), ("hate", "love"), ("fun", "boring"), ("boring", "fun"),
         ("great", "terrible"), ("yes", "no"), ("no", "yes"), ("best", "worst"), ("worst", "best"), ("funny", "dull"),
         ("dull", "funny"), ("positive", "negative"), ("negative", "positive"), ("terrible", "great")]


def make_gen_task(directory: Path) -> Path:
    """A small generation task (antonyms) whose words the tiny model's tokenizer knows."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = [{"input": a, "output": b} for a, b in PAIRS]
    for split, part in (("train", rows), ("dev", rows[:12]), ("test", rows[4:])):
        (directory / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    (directory / "task.json").write_text(json.dumps({"name": "tiny-antonyms", "kind": "generation",
                                                     "metric": "exact_match", "instruction": "Write the opposite word."}))
    return directory


def build_run(directory: Path, task_spec: str, tiny, strategies=("templates",), max_candidates=6) -> Path:
    """A finished run on the tiny model (runner.run with the tiny parts)."""
    task = load_task(task_spec)
    config = runner.make_config(task=task_spec, strategies=list(strategies),
                                budget={"max_candidates": max_candidates, "max_evals": 2000, "max_seconds": None},
                                racing={"min_examples": 4})
    runner.run(config, directory, parts=(task, tiny, Scorer(tiny)))
    return directory


@pytest.fixture(scope="module")
def gen_run(tiny, tmp_path_factory):
    base = tmp_path_factory.mktemp("gen")
    spec = str(make_gen_task(base / "task"))
    return build_run(base / "run", spec, tiny)


def make_cls_task(directory: Path) -> Path:
    """A 40/24/24-row slice of the bundled SST-2 sample (classification)."""
    from promptsearch.task import BUNDLED_DIR

    directory.mkdir(parents=True, exist_ok=True)
    src = BUNDLED_DIR / "sst2-mini"
    for split, n in (("train", 40), ("dev", 24), ("test", 24)):
        (directory / f"{split}.jsonl").write_text("\n".join((src / f"{split}.jsonl").read_text().splitlines()[:n]) + "\n")
    shutil.copy(src / "task.json", directory / "task.json")
    return directory


@pytest.fixture(scope="module")
def cls_run(tiny, tmp_path_factory):
    base = tmp_path_factory.mktemp("cls")
    return build_run(base / "run", str(make_cls_task(base / "task")), tiny, max_candidates=5)


@pytest.fixture
def run_dir(gen_run, tmp_path):
    """A fresh copy of the tiny generation run, so each test rates from scratch."""
    return Path(shutil.copytree(gen_run, tmp_path / "run"))


@pytest.fixture
def tiny_parts(tiny, monkeypatch):
    """The CLI loads the run's model with runner.load_parts; point it at the tiny model."""
    def load(config, task=None, named=None):
        return load_task(config["task"], seed=config["seed"]), tiny, Scorer(tiny)

    monkeypatch.setattr(runner, "load_parts", load)


def ratings_of(run: Path) -> list[dict]:
    path = run / "ratings.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def logged_output(run: Path, cand_id: str, example_key: str) -> str:
    for line in (run / "candidates.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["candidate"]["id"] == cand_id and example_key in rec["results"]:
            return rec["results"][example_key][1]
    raise AssertionError("not logged")


def digest(directory: Path) -> dict:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


# ---- rate: scripted keyboard --------------------------------------------------------------------
def test_rate_scripted_keyboard_lands_in_ratings(run_dir):
    board = json.loads((run_dir / "summary.json").read_text())["leaderboard"]
    result = CliRunner().invoke(main, ["rate", str(run_dir), "--top", "2", "--inputs", "2"],
                                input="5\ngreat\n2\ntoo long\ns\n1 wrong tone\n")
    assert result.exit_code == 0, result.output
    assert "rating 1-5 (s skip, q quit)" in result.output and "3 rating(s) saved" in result.output
    recs = ratings_of(run_dir)
    assert [(r["rating"], r["comment"]) for r in recs] == [(5, "great"), (2, "too long"), (1, "wrong tone")]
    assert [r["candidate"] for r in recs] == [board[0]["id"], board[0]["id"], board[1]["id"]]
    assert recs[0]["prompt"] == board[0]["prompt"] and recs[2]["prompt"] == board[1]["prompt"]
    assert recs[0]["input"] != recs[1]["input"]
    for r in recs:  # what was shown is what the run scored
        assert r["output"] == logged_output(run_dir, r["candidate"], r["example"])
        assert r["time"] and r["source"] == "interactive" and r["reference"]
        assert f"output:   {r['output']}" in result.output


def test_rate_quit_half_way_loses_nothing_and_continues(run_dir):
    runner_ = CliRunner()
    first = runner_.invoke(main, ["rate", str(run_dir)], input="4\n\n3\nfine\nq\n")
    assert first.exit_code == 0, first.output
    assert "quit: nothing rated is lost" in first.output
    recs = ratings_of(run_dir)
    assert [(r["rating"], r["comment"]) for r in recs] == [(4, ""), (3, "fine")]
    # the next session starts with the first pair not yet rated
    second = runner_.invoke(main, ["rate", str(run_dir)], input="5\n\n")  # then end of input: a quit
    assert second.exit_code == 0, second.output
    recs = ratings_of(run_dir)
    assert [r["rating"] for r in recs] == [4, 3, 5]
    assert len({(r["candidate"], r["example"]) for r in recs}) == 3
    # end of input in the middle of a comment still keeps the rating
    third = runner_.invoke(main, ["rate", str(run_dir)], input="2\n")
    assert third.exit_code == 0 and [r["rating"] for r in ratings_of(run_dir)] == [4, 3, 5, 2]


def test_rate_rejects_ratings_outside_1_to_5_and_asks_again(run_dir):
    result = CliRunner().invoke(main, ["rate", str(run_dir)], input="0\n6\nbad\n3.5\n3\n\nq\n")
    assert result.exit_code == 0, result.output
    assert "rating 0 is outside 1-5" in result.output and "rating 6 is outside 1-5" in result.output
    assert "'bad' is not a number 1-5" in result.output and "'3.5' is not a number 1-5" in result.output
    assert [r["rating"] for r in ratings_of(run_dir)] == [3]


def test_rate_json_keeps_stdout_one_object(run_dir):
    result = CliRunner().invoke(main, ["rate", str(run_dir), "--json", "--top", "1", "--inputs", "2"], input="4\nok\n5\n\n")
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert out["added"] == 2 and out["total"] == 2 and out["quit"] is False
    assert [r["rating"] for r in out["ratings"]] == [4, 5]


def test_unknown_run_dir_is_one_line(tmp_path):
    for cmd in (["rate", str(tmp_path / "nope")], ["refine", str(tmp_path / "nope")]):
        result = CliRunner().invoke(main, cmd)
        assert result.exit_code == 2
        assert result.output.strip().splitlines() == [f"error: {tmp_path / 'nope'} is not a run directory (no config.json)"]


def test_corrupt_lines_in_ratings_are_reported_and_kept(run_dir):
    good = {"candidate": "x", "prompt": "Q: {input}\nA:", "input": "good", "output": "bad", "rating": 4}
    original = json.dumps(good) + "\n{not json\n" + json.dumps({**good, "rating": 9}) + "\n" + json.dumps(good) + "\n{\"torn"
    path = run_dir / "ratings.jsonl"
    path.write_text(original)
    ratings, problems = Feedback.open(run_dir).load()
    assert len(ratings) == 2 and len(problems) == 3
    assert ":2: corrupt line (not JSON)" in problems[0] and ":3: rating 9 is outside 1-5" in problems[1]
    result = CliRunner().invoke(main, ["rate", str(run_dir), "--top", "1", "--inputs", "1"], input="5\n\n")
    assert result.exit_code == 0, result.output
    assert "note:" in result.output and "corrupt line" in result.output
    text = path.read_text()
    assert text.startswith(original + "\n")  # nothing lost: the torn line is closed, not cut
    assert json.loads(text.splitlines()[-1])["rating"] == 5
    assert len(Feedback.open(run_dir).load()[0]) == 3


def test_check_rating():
    assert [check_rating(v) for v in (1, "5", " 3 ", 4.0, "2.0")] == [1, 5, 3, 4, 2]
    for bad in (0, 6, "x", "", None, True, 2.5, "-1"):
        with pytest.raises(PromptSearchError):
            check_rating(bad)


# ---- rate: files --------------------------------------------------------------------------------
def test_rate_from_file_fills_in_from_the_log(run_dir):
    board = json.loads((run_dir / "summary.json").read_text())["leaderboard"]
    rows = [{"prompt": board[0]["prompt"], "input": "good", "rating": 2, "comment": "too long"},  # output from the log
            {"candidate": board[1]["id"], "input": "love", "output": "hate", "rating": "5"}]
    src = run_dir.parent / "mine.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(main, ["rate", str(run_dir), "--from-file", str(src), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 2
    recs = ratings_of(run_dir)
    assert recs[0]["candidate"] == board[0]["id"] and recs[0]["output"] == logged_output(run_dir, board[0]["id"], recs[0]["example"])
    assert recs[1]["prompt"] == board[1]["prompt"] and recs[1]["output"] == "hate" and recs[1]["score"] == 1.0
    assert recs[1]["rating"] == 5 and recs[1]["reference"] == "hate" and recs[0]["source"] == "file"


def test_rate_from_file_runs_the_model_when_the_log_lacks_the_output(run_dir, tiny_parts):
    src = run_dir.parent / "mine.jsonl"
    src.write_text(json.dumps({"prompt": "Say: {input}\nOpposite:", "input": "an input no split has", "rating": 3}) + "\n")
    result = CliRunner().invoke(main, ["rate", str(run_dir), "--from-file", str(src)])
    assert result.exit_code == 0, result.output
    rec = ratings_of(run_dir)[0]
    assert rec["output"] and rec["candidate"] == Candidate("Say: {input}\nOpposite:").id and rec["score"] is None


def test_rate_from_bad_file_adds_nothing(run_dir):
    CliRunner().invoke(main, ["rate", str(run_dir), "--top", "1", "--inputs", "1"], input="4\n\n")
    before = (run_dir / "ratings.jsonl").read_bytes()
    src = run_dir.parent / "bad.jsonl"
    for content, message in (
        ('{"prompt": "Q: {input}\\nA:", "input": "good", "rating": 4}\n{"prompt": "Q: {input}\\nA:", "input": "bad", "rating": 7}\n',
         ":2: rating 7 is outside 1-5"),
        ('{"prompt": "Q: {input}\\nA:", "input": "good", "rating": 4}\n{oops\n', ":2: corrupt line (not JSON)"),
        ('{"input": "good", "rating": 4}\n', ":1: a rating needs the 'prompt'"),
    ):
        src.write_text(content)
        result = CliRunner().invoke(main, ["rate", str(run_dir), "--from-file", str(src)])
        assert result.exit_code == 2 and message in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert (run_dir / "ratings.jsonl").read_bytes() == before
    missing = CliRunner().invoke(main, ["rate", str(run_dir), "--from-file", str(run_dir / "none.jsonl")])
    assert missing.exit_code == 2 and "file not found" in missing.output


def test_export_then_from_file(run_dir):
    out = run_dir.parent / "todo.jsonl"
    result = CliRunner().invoke(main, ["rate", str(run_dir), "--export", str(out), "--top", "2", "--inputs", "2"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and all(r["rating"] is None and r["output"] is not None for r in rows)
    for i, r in enumerate(rows):
        r["rating"] = 1 + i
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert CliRunner().invoke(main, ["rate", str(run_dir), "--from-file", str(out)]).exit_code == 0
    assert [r["rating"] for r in ratings_of(run_dir)] == [1, 2, 3, 4]
    again = CliRunner().invoke(main, ["rate", str(run_dir), "--top", "2", "--inputs", "2"])
    assert "nothing left to rate" in again.output


def test_rate_classification_shows_label_words(cls_run, tmp_path):
    run = Path(shutil.copytree(cls_run, tmp_path / "run"))
    result = CliRunner().invoke(main, ["rate", str(run), "--top", "1", "--inputs", "2"], input="4\n\n1\nwrong\n")
    assert result.exit_code == 0, result.output
    recs = ratings_of(run)
    assert len(recs) == 2 and all(r["output"] in ("negative", "positive") for r in recs)
    assert all(r["reference"] in ("negative", "positive") and r["score"] in (0.0, 1.0) for r in recs)


# ---- comments -> edits ----------------------------------------------------------------------------
def _r(rating, comment="", prompt="Q: {input}\nA:", output="x", score=None, cand="c"):
    return Rating(candidate=cand, prompt=prompt, input="i", output=output, rating=rating, comment=comment, score=score)


def test_comment_edits_builtin_user_and_model(tmp_path):
    ratings = [_r(1, "Way too long"), _r(2, "too detailed, sorry"), _r(2, "wrong tone"), _r(5, "too long but right"),
               _r(1, "give a more abstract answer"), _r(2, "it sounds like a pirate")]
    edits = comment_edits(ratings)
    assert [e.instruction for e in edits][:1] == ["Respond concisely."] and len(edits[0].comments) == 2
    assert {e.instruction for e in edits} == {"Respond concisely.", "Use a polite, formal tone.", "Give a more abstract answer."}
    user = tmp_path / "edits.json"
    user.write_text(json.dumps({"pirate": "Do not talk like a pirate.", "too long": "Answer in at most five words."}))
    edits = comment_edits(ratings, load_edit_map(user))
    assert {e.instruction: e.source for e in edits}["Answer in at most five words."] == "user"
    assert "Do not talk like a pirate." in [e.instruction for e in edits]
    asked = []
    edits = comment_edits(ratings, propose=lambda c: asked.append(c) or "be less of a pirate")
    assert asked == ["it sounds like a pirate"]
    assert {e.instruction: e.source for e in edits}["be less of a pirate."] == "model"
    user.write_text(json.dumps({"(unclosed": "x"}))
    with pytest.raises(PromptSearchError, match="not a valid regular expression"):
        load_edit_map(user)
    user.write_text("[1, 2]")
    with pytest.raises(PromptSearchError, match="must be a JSON object"):
        load_edit_map(user)


def test_model_proposer_runs_the_model(tiny):
    charged = []
    propose = feedback.model_proposer(Scorer(tiny), charge=charged.append)
    text = propose("it sounds like a pirate")
    assert isinstance(text, str) and charged == [1]


def test_refine_strategy_proposes_edits_on_rated_prompts(tiny):
    import random

    from promptsearch.strategy import SearchContext

    task = load_task("sst2-mini")
    ctx = SearchContext(task, Scorer(tiny), random.Random(0), list, lambda n: None, lambda: 1e9)
    s = Refine(prompts=["Review: {input}\nSentiment:", {"prompt": "{input} It was", "label_words": ["bad", "good"]}],
               edits=["Respond concisely.", "Do not explain."], bases=2)
    s.start(ctx)
    got = s.propose(ctx, 100)
    assert s.propose(ctx, 5) == []
    texts = [c.prompt for c in got]
    # #30: the announced edits first (each once on the best rated prompt, then the pair), then the rated prompts
    assert texts[:3] == ["Respond concisely.\nReview: {input}\nSentiment:", "Do not explain.\nReview: {input}\nSentiment:",
                         "Respond concisely.\nDo not explain.\nReview: {input}\nSentiment:"]
    assert texts[3:5] == ["Review: {input}\nSentiment:", "{input} It was"] and got[4].label_words == ("bad", "good")
    assert "Respond concisely.\nReview: {input}\nSentiment:" in texts
    assert "Review: {input}\nRespond concisely.\nSentiment:" in texts  # before the answer cue
    assert "Respond concisely.\nDo not explain.\nReview: {input}\nSentiment:" in texts
    assert "Respond concisely.\n{input} It was" in texts  # one line: no cue placement
    assert all(c.parents == (got[3].id,) for c in got if c.prompt.endswith("Sentiment:") and c.edit.startswith("feedback"))
    with pytest.raises(PromptSearchError, match="resume it as a refine run"):
        Refine(prompts=["{input}"], blended=True).start(ctx)


# ---- the rating predictor and the blended scorer ------------------------------------------------------
def test_rating_model_learns_a_length_preference():
    short = ["cold", "up", "no", "bad", "small"]
    long = ["the opposite of hot is cold", "well it goes up and then down", "no no no no no no",
            "this is bad and also good", "small is the answer here"]
    ratings = [_r(5, output=o, prompt="A: {input}") for o in short] + [_r(1, output=o, prompt="B: {input}") for o in long]
    model = RatingModel().fit(ratings)
    pred = model.predict(["C: {input}"] * 2, ["hot", "i think that the answer is hot"], [None, None])
    assert pred[0] > 0.7 and pred[1] < 0.3
    assert "ridge regression on 10" in model.describe()
    flat = RatingModel().fit([_r(4), _r(4)])
    assert flat.predict(["x {input}"], ["y"], [None]) == [0.75] and "too few" in flat.describe()


def test_blended_scorer_blends_per_example_and_unblends_on_preload(tiny):
    task = load_task("sst2-mini")
    cand = Candidate("Review: {input}\nSentiment:")
    exs = list(task.dev[:4])
    inner = Scorer(tiny)
    raw = inner.evaluate(task, cand, exs)
    rated = [Rating(cand.id, cand.prompt, exs[0].input, raw[0].prediction, 5, example=exs[0].key)]
    model = RatingModel(shrink=0).fit([_r(2), _r(2)])  # predicts 0.25 everywhere (not shrunk toward the metric)
    blended = BlendedScorer(inner, model, 0.5, rated)
    got = blended.evaluate(task, cand, exs)
    assert got[0].score == pytest.approx(0.5 * raw[0].score + 0.5 * 1.0)
    assert [g.score for g in got[1:]] == pytest.approx([0.5 * r.score + 0.5 * 0.25 for r in raw[1:]])
    assert [g.prediction for g in got] == [r.prediction for r in raw]
    details = blended.details(task, cand, exs)
    assert details["rated"] == 1 and details["dev"] == pytest.approx(sum(r.score for r in raw) / 4)
    cold = BlendedScorer(Scorer(tiny), model, 0.5, rated)
    cold.preload(task, cand, {ex.key: g for ex, g in zip(exs, got)})
    assert [r.score for r in cold.scorer.evaluate(task, cand, exs)] == [r.score for r in raw]
    assert cold.scorer.stats["examples_scored"] == 0
    with pytest.raises(PromptSearchError):
        BlendedScorer(inner, model, 1.5, rated)


# ---- refine ---------------------------------------------------------------------------------------
def _rate_file(run: Path, scheme) -> Path:
    """Scripted ratings: scheme(rank) -> (rating, comment) for every output of the top 3 on 3 inputs."""
    out = run.parent / "todo.jsonl"
    assert CliRunner().invoke(main, ["rate", str(run), "--export", str(out)]).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    ranks = {r["id"]: r["rank"] for r in json.loads((run / "summary.json").read_text())["leaderboard"]}
    for r in rows:
        r["rating"], r["comment"] = scheme(ranks[r["candidate"]])
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert CliRunner().invoke(main, ["rate", str(run), "--from-file", str(out)]).exit_code == 0
    return out


def test_refine_moves_low_rated_prompts_down_and_applies_comment_edits(run_dir, tiny_parts):
    _rate_file(run_dir, lambda rank: (1, "too long") if rank == 1 else (5, "good") if rank == 2 else (3, ""))
    before = digest(run_dir)
    result = CliRunner().invoke(main, ["refine", str(run_dir), "--rating-weight", "0.5", "--max-candidates", "16", "--json"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert digest(run_dir) == before  # the rated run is left exactly as it was
    new = Path(s["run_dir"])
    assert new.name == "run-refine-1" and (new / "summary.json").exists() and (new / "refine.json").exists()
    assert len(ratings_of(new)) == 9  # the ratings travel with the refined run
    r = s["refine"]
    assert [e["instruction"] for e in r["edits"]] == ["Respond concisely."]
    moves = {m["old_rank"]: m for m in r["moves"] if m["old_rank"]}
    assert moves[1]["new_rank"] > moves[2]["new_rank"]  # rated 1/5 falls below the prompt rated 5/5
    assert moves[1]["rating"] < moves[2]["rating"] and moves[1]["rated"] == 3
    assert any("comments: too long" in w for w in moves[1]["why"])
    edited = [m for m in r["moves"] if "feedback" in m["edit"]]
    logged = [json.loads(line)["candidate"] for line in (new / "candidates.jsonl").read_text().splitlines()]
    assert any(c["edit"].startswith("feedback") and "Respond concisely." in c["prompt"] for c in logged)
    assert all(m["old_rank"] is None for m in edited)
    assert r["best"]["rating"] >= r["parent_best"]["rating"]
    text = CliRunner().invoke(main, ["show", str(new)])
    assert text.exit_code == 0
    # a second refine goes beside the first, and a refine of a refine counts on
    second = CliRunner().invoke(main, ["refine", str(run_dir), "--max-candidates", "6", "--quiet"])
    assert second.exit_code == 0, second.output
    assert "how the ranking moved" in second.output and "old -> new" in second.output
    assert (run_dir.parent / "run-refine-2" / "summary.json").exists()


def test_refine_resume_rescoring_nothing(run_dir, tiny, tmp_path):
    _rate_file(run_dir, lambda rank: (1, "too long") if rank == 1 else (4, ""))
    task = load_task(json.loads((run_dir / "config.json").read_text())["task"])
    full = feedback.refine(run_dir, weight=0.5, budget={"max_candidates": 14}, parts=(task, tiny, Scorer(tiny)))
    new = Path(full["run_dir"])
    cut = tmp_path / "cut"
    shutil.copytree(new, cut)
    lines = (new / "candidates.jsonl").read_text().splitlines()
    (cut / "candidates.jsonl").write_text("\n".join(lines[: len(lines) // 2]) + "\n" + lines[len(lines) // 2][:30])
    (cut / "summary.json").unlink()
    scorer = Scorer(tiny)
    resumed = feedback.refine(None, out=cut, resume=True, parts=(task, tiny, scorer))
    assert [r["id"] for r in resumed["leaderboard"]] == [r["id"] for r in full["leaderboard"]]
    assert [m["new_rank"] for m in resumed["refine"]["moves"]] == [m["new_rank"] for m in full["refine"]["moves"]]
    # a refine run is a run of the one runner (its config names the ratings): `run --resume` keeps the blend
    again = runner.run(None, cut, resume=True, parts=(task, tiny, Scorer(tiny)))
    assert [r["id"] for r in again["leaderboard"]] == [r["id"] for r in full["leaderboard"]]
    assert again["best"] == full["best"]


def test_refine_classification(cls_run, tiny, tmp_path):
    run = Path(shutil.copytree(cls_run, tmp_path / "run"))
    _rate_file(run, lambda rank: (2, "wrong") if rank == 1 else (5, ""))
    task = load_task(json.loads((run / "config.json").read_text())["task"])
    s = feedback.refine(run, weight=0.3, budget={"max_candidates": 10}, parts=(task, tiny, Scorer(tiny)))
    assert [e["instruction"] for e in s["refine"]["edits"]] == ["Be precise."]
    moves = {m["old_rank"]: m for m in s["refine"]["moves"] if m["old_rank"]}
    assert moves[1]["rating"] < moves[2]["rating"]
    for m in s["refine"]["moves"]:  # blended = 0.7 dev + 0.3 rating (1-5 mapped to 0-1), on the same examples
        assert m["blended"] == pytest.approx(0.7 * m["dev"] + 0.3 * (m["rating"] - 1) / 4, abs=1e-9)


def test_refine_run_exports_the_plain_metric_not_the_blend(cls_run, tiny, tmp_path):
    from promptsearch.export import export_run

    run = Path(shutil.copytree(cls_run, tmp_path / "run"))
    _rate_file(run, lambda rank: (2, "wrong") if rank == 1 else (5, ""))
    task = load_task(json.loads((run / "config.json").read_text())["task"])
    s = feedback.refine(run, weight=0.3, budget={"max_candidates": 10}, parts=(task, tiny, Scorer(tiny)))
    assert s["paired_test"]["test"] == "paired bootstrap"  # blended scores are not 0/1: no McNemar on them
    refined = Path(s["run_dir"])
    art = export_run(refined, tmp_path / "a.json", parts=(task, tiny, Scorer(tiny)))
    plain = Scorer(tiny).evaluate(art.task_for_scoring(task), art.candidate(), task.test)
    assert art.test_outcomes["scores"] == [r.score for r in plain] and set(art.test_outcomes["scores"]) <= {0.0, 1.0}
    assert art.scores["test"]["score"] == sum(r.score for r in plain) / len(plain)
    run_task = runner.prepare_task(task, runner.read_config(RunStore.open(refined)))  # as the run saw it
    # dev rows the prompt shows (a balanced draw from the pool, which holds the choosing rows) leave its score
    scored = selection.kept(run_task, art.candidate(), run_task.dev)
    assert art.scores["dev"]["n"] == len(scored) and art.scores["paired_test"]["test"] == "exact McNemar"
    assert art.provenance["feedback"]["weight"] == 0.3


def test_refine_without_ratings_or_with_a_bad_weight(run_dir, tiny_parts):
    result = CliRunner().invoke(main, ["refine", str(run_dir)])
    assert result.exit_code == 2 and "holds no ratings; rate first: promptsearch rate" in result.output
    result = CliRunner().invoke(main, ["refine", str(run_dir), "--rating-weight", "2"])
    assert result.exit_code == 2 and "--rating-weight" in result.output
    with pytest.raises(PromptSearchError, match="outside 0-1"):
        feedback.refine(run_dir, weight=-0.1)
    bad = run_dir.parent / "edits.json"
    bad.write_text("{")
    _rate_file(run_dir, lambda rank: (2, "too long"))
    result = CliRunner().invoke(main, ["refine", str(run_dir), "--edits", str(bad)])
    assert result.exit_code == 2 and "bad JSON" in result.output


def test_read_ratings_strict(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"prompt": "a {input}", "input": "x", "output": "y", "rating": 4}\n\n')
    ratings, problems = read_ratings(path, strict=True)
    assert len(ratings) == 1 and ratings[0].value == 0.75 and not problems
    assert RunStore  # imported for readers of this file: ratings live beside the run's other logs
