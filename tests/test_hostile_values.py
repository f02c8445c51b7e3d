"""Hostile VALUES (issue 31, the values half): every number, option and flag value from the command line, from
``-o STRATEGY.OPTION=VALUE``, from config.json, from the Python API's keywords, and every field a served model
answers with. Each bad value is one line (`error: ...`, exit 2, no traceback) or, from Python, a
PromptSearchError naming the argument, and nothing is written; a legal value does what it says.

The matrices are generated: every strategy option from the installed strategies' constructors, every number
rule of limits.RULES, every field of each server dialect's answer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

import promptsearch as ps
from promptsearch import limits
from promptsearch import strategy as registry
from promptsearch.cli import main
from promptsearch.errors import PromptSearchError
from promptsearch.testing import ScriptedServer
from tests.test_hostile import make_run_dir, one_line_error, served_eval_error, snapshot

NAN, INF = float("nan"), float("inf")
HUGE = 10**30


# ---- 1. every strategy option, every hostile value (in process: strategy.make is where -o, the API's options
#         and config.json's options all go) ------------------------------------------------------------------
def _option_cases():
    cases = []
    for name, cls in registry.available().items():
        params = {p["name"]: p["default"] for p in registry.options_of(cls)}
        import inspect

        sig = inspect.signature(cls.__init__).parameters
        for key, default in params.items():
            kinds = limits.option_kinds(sig[key].annotation, default)
            bad = [{}, {"a": 1}]
            if "None" not in kinds:
                bad.append(None)
            if "bool" not in kinds:
                bad.append(True)
            if "int" in kinds or "float" in kinds:
                bad += [NAN, INF, -INF, "abc", "", " 5", [1]]
                rule = limits.OPTION_RULES.get(f"{name}.{key}", limits.OPTION_WHOLE if "int" in kinds else None)
                if rule and rule[0]:
                    bad += [2.5, HUGE]
                if rule and rule[1] is not None:
                    bad.append(rule[1] - 1)
                if rule and rule[2] is not None:
                    bad.append(rule[2] * 10 + 1)
            elif "list" in kinds:
                bad += [5, 2.5, "abc"] if "str" not in kinds else [5, 2.5]
                items = default or []
                if items and all(isinstance(x, str) for x in items):
                    bad.append([1.5])
                if items and all(isinstance(x, int) for x in items):
                    bad += [["x"], [NAN], [0.5]]
            elif "str" in kinds:
                bad += [5, 2.5, NAN, [1]]
            elif kinds == ["bool"]:
                bad += [1, 0, "yes", "true", [True]]
            cases += [pytest.param(name, key, v, id=f"{name}.{key}={v!r:.20}") for v in bad]
    return cases


OPTION_CASES = _option_cases()


@pytest.mark.parametrize("name, key, value", OPTION_CASES)
def test_every_strategy_option_refuses_hostile_values(name, key, value):
    with pytest.raises(PromptSearchError) as e:
        registry.make(name, {key: value})
    assert key in str(e.value) and "\n" not in str(e.value), str(e.value)


# enum-like values the constructors check
@pytest.mark.parametrize("name, options", [
    ("templates", {"calibrations": ["nope"]}), ("clarify", {"calibrations": ["contextual", "x"]}),
    ("clarify", {"demo_rules": ["similar:0"]}), ("clarify", {"demo_rules": ["x"]}), ("evolution", {"operators": []}),
    ("ape", {"demo_counts": []}),
    ("evolution", {"operators": ["nope"]}), ("refine", {"prompts": [5]}), ("refine", {"prompts": [{"prompt": 5}]}),
    ("autoprompt", {"template": "no slot {input}"}), ("autoprompt", {"init": " "}), ("ensemble", {"weights": "x"}),
    ("templates", {"labels_at": "never"}), ("clarify", {"demo_ladder": "maybe"}), ("soft-prompt", {"init": "x"}),
    ("clarify", {"nope": 1}), ("clarify", 5), ("clarify", [1]),
])
def test_strategy_option_values_out_of_their_set(name, options):
    with pytest.raises(PromptSearchError):
        registry.make(name, options)


@pytest.mark.parametrize("name, options", [
    ("clarify", {"draws": 0}), ("evolution", {"elites": 0, "library_seeds": 0}), ("autoprompt", {"iterations": 0}),
    ("soft-prompt", {"max_seconds": 30, "lr": 1}), ("evolution", {"similarity": 1}), ("clarify", {"rules_first": None}),
    ("clarify", {"demo_counts": [1, 2]}), ("templates", {"calibrations": []}), ("refine", {"prompts": ["a {input}"]}),
    ("clarify", {"demo_counts": [], "calibrations": []}),  # the fewshot tweak lean-clarify: no drawn demonstrations
])
def test_legal_option_values_are_kept(name, options):
    made = registry.make(name, options)
    for key, value in options.items():
        got = getattr(made, key, None)
        assert got is None or got == value or tuple(got) == tuple(value)


# ---- 2. -o on the command line: one line, nothing written ----------------------------------------------------
@pytest.mark.parametrize("option, expected", [
    ("clarify.nope=1", "has no option 'nope'"),
    ("nosuchstrategy.x=1", "which this run does not use"),
    ("clarify.bases", "must look like STRATEGY.PARAM=VALUE"),
    ("clarify=1", "must look like STRATEGY.PARAM=VALUE"),
    (".x=1", "must look like STRATEGY.PARAM=VALUE"),
    ("clarify.bases=NaN", "option clarify.bases: must be a whole number"),
    ("clarify.bases=1e400", "option clarify.bases: must be a whole number"),
    ("clarify.bases=2.5", "option clarify.bases: must be a whole number"),
    ("clarify.bases=0", "option clarify.bases: 0 is out of range"),
    (f"clarify.rounds={HUGE}", "is out of range"),
    ("clarify.rounds=abc", "option clarify.rounds: must be a whole number"),
    ("clarify.draws=-1", "option clarify.draws: -1 is out of range"),
    ("clarify.demo_counts=[0]", "out of range"),
    ("clarify.calibrations=[\"x\"]", "is not a calibration"),
    ("clarify.demo_rules=[\"similar:0\"]", "demo_rules"),
    ("clarify.contrast=1", "takes true or false"),
    ("clarify.demo_ladder=maybe", "demo_ladder"),
    ("templates.top=-1", "option templates.top: -1 is out of range"),
    ("templates.label_examples=null", "option templates.label_examples: must be a whole number"),
])
def test_hostile_option_on_the_command_line(tmp_path, small_task_dir, tiny_dir, option, expected):
    out = tmp_path / "run"
    msg = one_line_error("run", "--task", small_task_dir, "--model", tiny_dir, "--out", out, "--max-evals", "40",
                         "-o", option)
    assert expected in msg, msg
    assert not (out / "config.json").exists()


def test_an_option_given_twice_is_refused(tmp_path, small_task_dir, tiny_dir):
    out = tmp_path / "run"
    msg = one_line_error("run", "--task", small_task_dir, "--model", tiny_dir, "--out", out,
                         "-o", "clarify.bases=1", "-o", "clarify.bases=2")
    assert msg == "option clarify.bases is given twice; give it once"
    assert not out.exists()


@pytest.mark.parametrize("strategy, option", [("evolution", "evolution.population=2.5"),
                                              ("clarify", "clarify.rounds=0"),
                                              ("autoprompt", "autoprompt.iterations=Infinity"),
                                              ("soft-prompt", "soft-prompt.lr=NaN"), ("ensemble", "ensemble.pool=1")])
def test_hostile_option_of_a_named_strategy(tmp_path, small_task_dir, tiny_dir, strategy, option):
    out = tmp_path / "run"
    msg = one_line_error("run", "--task", small_task_dir, "--model", tiny_dir, "--out", out, "--strategy", strategy,
                         "-o", option)
    assert option.split("=")[0].split(".")[1] in msg
    assert not out.exists()


# ---- 3. every number flag of every command ------------------------------------------------------------------
RUN_FLAGS = {  # flag -> values it must refuse
    "--max-evals": ["nan", "inf", "-inf", "-1", "0", "1e400", "", "abc", "2.5", "1e3"],
    "--max-candidates": ["nan", "inf", "-1", "0", "", "abc", "2.5"],
    "--max-seconds": ["nan", "inf", "-inf", "-1", "0", "0.5", "1e400", "", "abc"],
    "--max-tokens": ["nan", "inf", "-1", "0", "", "abc", "2.5"],
    "--batch-size": ["nan", "-1", "0", "1025", str(HUGE), "", "abc", "2.5"],
    "--final-check": ["nan", "-1", "0", str(HUGE), "", "abc", "2.5"],
    "--seed": ["nan", "-1", str(2**63), str(HUGE), "", "abc", "2.5"],
    "--final-ensemble": ["nan", "-1", "0", "11", str(HUGE), "", "abc", "2.5"],
    "--concurrency": ["nan", "-1", "0", "257", str(HUGE), "", "abc", "2.5"],
    "--timeout": ["nan", "inf", "-inf", "-1", "0", "0.01", "1e9", "1e400", "", "abc"],
    "--workers": ["0", "-1", "", "abc", "2.5"],
    "--worker-threads": ["0", "-1", "", "abc", "2.5"],
    "--schedule": ["", "nope", "EVEN"],
    "--selection": ["", "nope"],
    "--final-calibration": ["", "nope"],
    "--executor": ["", "nope"],
    "--dtype": ["", "float8"],
    "--scoring": ["", "nope"],
}
RUN_CASES = [pytest.param(flag, v, id=f"{flag}={v}") for flag, values in RUN_FLAGS.items() for v in values]


@pytest.mark.parametrize("flag, value", RUN_CASES)
def test_run_refuses_every_hostile_number(tmp_path, small_task_dir, tiny_dir, flag, value):
    out = tmp_path / "run"
    msg = one_line_error("run", "--task", small_task_dir, "--model", tiny_dir, "--out", out, flag, value)
    assert flag in msg or flag.lstrip("-").replace("-", "_") in msg, msg
    assert not out.exists()


def _finished_run(tmp_path_factory, small_task_dir, tiny_dir):
    out = tmp_path_factory.mktemp("values-run") / "run"
    result = CliRunner().invoke(main, ["run", "--task", small_task_dir, "--model", tiny_dir, "--strategy", "templates",
                                       "--max-evals", "40", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, small_task_dir, tiny_dir):
    from tests.conftest import one_thread

    with one_thread():
        return _finished_run(tmp_path_factory, small_task_dir, tiny_dir)


OTHER_FLAGS = [  # (command before the flag, flag, values, command after)
    (["rate", "RUN"], "--top", ["0", "-1", "nan", "", "abc", "2.5"], []),
    (["rate", "RUN"], "--inputs", ["0", "-1", "nan", "", "abc"], []),
    (["rate", "RUN"], "--seed", ["-1", "nan", "", "abc", "2.5", str(2**63)], []),
    (["refine", "RUN"], "--rating-weight", ["nan", "inf", "-0.5", "1.5", "", "abc"], ["--out", "OUT"]),
    (["refine", "RUN"], "--bases", ["0", "-1", "nan", "abc", "1001"], ["--out", "OUT"]),
    (["refine", "RUN"], "--max-evals", ["0", "-5", "nan", "inf", "abc"], ["--out", "OUT"]),
    (["refine", "RUN"], "--max-seconds", ["0", "nan", "inf", "abc"], ["--out", "OUT"]),
    (["show", "RUN"], "--top", ["0", "-1", "nan", "abc"], []),
    (["show", "RUN"], "--rank", ["0", "-1", "nan", "abc"], []),
    (["show", "RUN"], "--examples", ["-1", "nan", "abc"], []),
    (["export", "RUN"], "--rank", ["0", "-1", "nan", "abc"], ["-o", "OUT"]),
    (["eval", "--task", "TASK", "--model", "MODEL"], "--limit", ["0", "-1", "nan", "inf", "", "abc", "2.5"], []),
    (["eval", "--task", "TASK", "--model", "MODEL"], "--batch-size", ["0", "-1", "nan", "2.5", "1e400"], []),
    (["eval", "--task", "TASK", "--model", "MODEL"], "--timeout", ["0", "nan", "inf"], []),
    (["eval", "--task", "TASK", "--model", "MODEL"], "--calibrate", ["", "nope"], []),
    (["eval", "--task", "TASK", "--model", "MODEL", "--limit", "2"], "--demos",
     ["similar:0", "similar:-1", "similar:nan", "balanced:2#x", "nope:3", "similar:"], []),
    (["eval", "--task", "TASK", "--model", "MODEL"], "--split", ["", "nope"], []),
    (["tasks", "import", "CSV"], "--seed", ["-1", "nan", "abc", "2.5"], ["--out", "OUT"]),
    (["tasks", "import", "CSV"], "--split-ratios",
     ["nan,0.5,0.5", "inf,0,0", "-1,1,1", "0,0,0", "0.6,0.2", "1e400,1,1", "a,b,c", "0.6,0.2,0.2,0.1"], ["--out", "OUT"]),
    (["ui"], "--port", ["-1", "65536", "nan", "abc"], []),
]
OTHER_CASES = [pytest.param(before, flag, v, after, id=f"{before[0]} {flag}={v}")
               for before, flag, values, after in OTHER_FLAGS for v in values]


@pytest.mark.parametrize("before, flag, value, after", OTHER_CASES)
def test_every_command_refuses_hostile_numbers(tmp_path, finished_run, small_task_dir, tiny_dir, before, flag, value,
                                               after):
    (tmp_path / "x.csv").write_text("input,output\n" + "".join(f"r{i},{'ab'[i % 2]}\n" for i in range(10)))
    fill = {"RUN": str(finished_run), "TASK": small_task_dir, "MODEL": tiny_dir, "OUT": str(tmp_path / "out"),
            "CSV": str(tmp_path / "x.csv")}
    before_run = snapshot(finished_run)
    msg = one_line_error(*[fill.get(a, a) for a in before], flag, value, *[fill.get(a, a) for a in after], "--quiet"
                         if before[0] in ("eval",) else "--json" if before[0] == "show" else None)
    assert msg
    assert not (tmp_path / "out").exists() and snapshot(finished_run) == before_run


# ---- 4. every number of config.json, read back by --resume -------------------------------------------------
def _config_cases():
    cases = []
    for name, (whole, least, most) in limits.RULES.items():
        if name == "limit":
            continue
        bad = [NAN, INF, -INF, "5", True, [5], {"a": 1}]
        bad += [2.5] if whole else []
        bad += [least - 1] if least is not None else []
        bad += [most * 10 + 1] if most is not None else []
        cases += [pytest.param(name, v, id=f"{name}={v!r:.20}") for v in bad]
    return cases


@pytest.mark.parametrize("name, value", _config_cases())
def test_resume_refuses_every_hostile_number_in_config_json(tmp_path, small_task_dir, name, value):
    d = make_run_dir(tmp_path, small_task_dir)
    config = json.loads((d / "config.json").read_text())
    section, _, key = name.rpartition(".")
    (config[section] if section else config)[key] = value
    (d / "config.json").write_text(json.dumps(config))
    before = snapshot(d)
    msg = one_line_error("run", "--resume", d)
    assert msg.startswith(f"{d}/config.json: field") and key in msg, msg
    assert snapshot(d) == before


@pytest.mark.parametrize("edit, expected", [
    ({"options": {"templates": 5}}, "options of strategy 'templates'"),
    ({"options": {"templates": {"top": NAN}}}, "option templates.top"),
    ({"options": {"templates": {"top": 2.5}}}, "option templates.top"),
    ({"options": {"templates": {"calibrations": ["x"]}}}, "is not a calibration"),
    ({"options": {"clarify": {"bases": 1}}}, "which this run does not use"),
    ({"options": [1]}, "field 'options' must be a JSON object"),
    ({"schedule": "nope"}, "field 'schedule'"),
    ({"strategies": [5]}, "field 'strategies'"),
    ({"strategies": "templates"}, "field 'strategies'"),
    ({"final_ensemble": NAN}, "final_ensemble"),
    ({"final_ensemble": 0}, "final_ensemble"),
    ({"selection": 5}, "field 'selection'"),
    ({"final_calibration": "x"}, "field 'final_calibration'"),
    ({"plain": "yes"}, "field 'plain'"),
    ({"seed": None}, "field 'seed'"),
])
def test_resume_refuses_hostile_settings_in_config_json(tmp_path, small_task_dir, edit, expected):
    d = make_run_dir(tmp_path, small_task_dir)
    config = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**config, **edit}))
    before = snapshot(d)
    msg = one_line_error("run", "--resume", d)
    assert msg.startswith(f"{d}/config.json: field") and expected in msg, msg
    assert snapshot(d) == before


# ---- 5. the Python API: PromptSearchError naming the argument, nothing written -----------------------------
@pytest.fixture(scope="module")
def loaded(tiny_dir):
    return ps.load_model(tiny_dir)


API_SEARCH = [  # keyword -> values search() must refuse
    ("top_k", [NAN, -1, 0, 2.5, "3", HUGE]), ("batch_size", [NAN, INF, -1, 0, 2.5, "16", HUGE]),
    ("seed", [NAN, -1, 2.5, "0", 2**63]), ("final_ensemble", [NAN, 0, 11, 2.5, "3"]),
    ("schedule", ["nope", 5, NAN]), ("selection", ["nope", 5]), ("final_calibration", ["nope", 5]),
    ("strategies", [NAN, 5, "templates", [5], True]), ("seed_prompt", [5, NAN, ["x"]]), ("proposer", [5, NAN]),
    ("options", [5, [1], {"templates": 5}, {"templates": {"top": NAN}}, {"evolution": {"population": 2}}]),
    ("chat", ["yes", 1, True]), ("plain", ["yes", 1]), ("budget", [5, {"max_evals": 5}]),
]
API_BUDGET = [("max_evals", [NAN, INF, -5, 0, 2.5, "100"]), ("max_candidates", [NAN, -1, 0, 2.5]),
              ("max_seconds", [NAN, INF, -1, 0, 0.5, "60"]), ("max_tokens", [NAN, -1, 0, 2.5])]


@pytest.mark.parametrize("key, value", [pytest.param(k, v, id=f"{k}={v!r:.20}") for k, vs in API_SEARCH for v in vs])
def test_api_search_refuses_hostile_keywords(tmp_path, small_task_dir, loaded, key, value):
    run_dir = tmp_path / "run"
    with pytest.raises(PromptSearchError) as e:
        ps.search(small_task_dir, loaded, run_dir=run_dir, **{"budget": ps.Budget(max_evals=30), key: value})
    message = str(e.value)
    named = {"top_k": "top_k", "budget": "budget"}.get(key, key)
    assert named in message or (key == "options" and "option" in message), message
    assert not (run_dir / "config.json").exists()


@pytest.mark.parametrize("value", [5, 2.5, ["x"], {}, True])
def test_api_paths_that_are_not_paths(small_task_dir, loaded, value):
    with pytest.raises(PromptSearchError, match="run_dir"):
        ps.search(small_task_dir, loaded, budget=ps.Budget(max_evals=30), run_dir=value)
    with pytest.raises(PromptSearchError, match="path"):
        ps.load_prompt(value)


@pytest.mark.parametrize("key, value", [pytest.param(k, v, id=f"{k}={v!r:.20}") for k, vs in API_BUDGET for v in vs])
def test_api_budget_refuses_hostile_numbers(tmp_path, small_task_dir, loaded, key, value):
    run_dir = tmp_path / "run"
    with pytest.raises(PromptSearchError, match=f"budget.{key}"):
        ps.search(small_task_dir, loaded, budget=ps.Budget(**{key: value}), run_dir=run_dir)
    assert not run_dir.exists()


def test_api_search_with_an_in_memory_task_writes_nothing_on_a_bad_value(tmp_path, loaded):
    task = ps.Task.from_records([{"input": f"r{i}", "output": "ab"[i % 2]} for i in range(30)], label_words=["a", "b"])
    with pytest.raises(PromptSearchError, match="schedule"):
        ps.search(task, loaded, run_dir=tmp_path / "run", schedule="nope")
    assert not (tmp_path / "run").exists()


API_EVALUATE = [("batch_size", [NAN, INF, -1, 0, 2.5, "16", HUGE, None]), ("limit", [NAN, -1, 0, 2.5, "2", [1]]),
                ("split", ["nope", 5, None]), ("label_words", [5, "ab", ["a"], [1, 2], ["a", "a"]]),
                ("calibrate", [5, "nope"]), ("demos", [5, "similar:0", "nope"]), ("prompt", [5, 2.5, ["x"], True]),
                ("chat", [5, "yes", True])]  # True: the tiny model has no chat template (transformers' ValueError before)


@pytest.mark.parametrize("key, value", [pytest.param(k, v, id=f"{k}={v!r:.20}") for k, vs in API_EVALUATE for v in vs])
def test_api_evaluate_refuses_hostile_keywords(small_task_dir, loaded, key, value):
    with pytest.raises(PromptSearchError) as e:
        ps.evaluate(small_task_dir, loaded, **{key: value})
    assert key in str(e.value) or key.rstrip("s") in str(e.value) or "label word" in str(e.value), str(e.value)


API_LOAD = [("concurrency", [NAN, 0, -1, 2.5, 257, "4"]), ("timeout", [NAN, INF, 0, -1, "120", 1e9]),
            ("scoring", ["nope", 5, None]), ("dtype", ["nope", 5]), ("device", ["tpu9", 5])]


@pytest.mark.parametrize("key, value", [pytest.param(k, v, id=f"{k}={v!r:.20}") for k, vs in API_LOAD for v in vs])
def test_api_load_model_refuses_hostile_keywords(tiny_dir, key, value):
    with pytest.raises(PromptSearchError) as e:
        ps.load_model(tiny_dir, **{key: value})
    assert key in str(e.value) or "--" + key in str(e.value), str(e.value)


@pytest.mark.parametrize("seed", [NAN, -1, 2.5, "0", 2**63, True])
def test_api_load_task_refuses_a_hostile_seed(small_task_dir, seed):
    with pytest.raises(PromptSearchError, match="seed"):
        ps.load_task(small_task_dir, seed=seed)


# ---- 6. legal values do what they say ---------------------------------------------------------------------
def test_the_smallest_legal_budget_runs_and_says_why_it_stopped(tmp_path, small_task_dir, tiny_dir):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--task", small_task_dir, "--model", tiny_dir, "--max-evals", "1",
                                       "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["budget_used"]["candidates"] >= 1 and "max-evals" in result.stderr + json.dumps(summary)
    assert (out / "config.json").exists()


def test_legal_edge_options_run(tmp_path, small_task_dir, tiny_dir):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--task", small_task_dir, "--model", tiny_dir, "--strategy", "clarify",
                                       "-o", "clarify.draws=0", "-o", "clarify.demo_counts=[1]", "--max-evals", "120",
                                       "--out", str(out), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    options = json.loads((out / "config.json").read_text())["options"]
    assert options == {"clarify": {"draws": 0, "demo_counts": [1]}}


# ---- 7. every field a served model answers with --------------------------------------------------------------
MODELS = {"data": [{"id": "m", "owned_by": "x"}]}


def served(answers: dict, status=200, headers=None):
    """A server answering /models with MODELS unless ``answers`` says otherwise, and each other path by the first
    key of ``answers`` its path ends with."""
    def answer(path):
        for end, body in answers.items():
            if path.endswith(end):
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                return (status if end != "/models" else 200), dict(headers or {}), raw
        if path.endswith("/models"):
            return 200, {}, json.dumps(MODELS).encode()
        return 404, {}, b'{"error": {"message": "no such path"}}'
    return ScriptedServer(answer)


def topk(table) -> dict:
    return {"choices": [{"text": "x", "logprobs": {"top_logprobs": [table]}}]}


def echo(tokens, values) -> dict:
    return {"choices": [{"text": "x", "logprobs": {"tokens": tokens, "token_logprobs": values}}]}


def chat(rows) -> dict:
    return {"choices": [{"message": {"content": "x"}, "logprobs": {"content": [{"token": "x", "logprob": -1,
                                                                             "top_logprobs": rows}]}}]}


def vllm(rows) -> dict:
    return {"choices": [{"text": "x", "prompt_logprobs": rows}]}


def sglang(rows) -> dict:
    return {"text": "x", "meta_info": {"input_token_logprobs": rows}}


RAW_NAN = b'{"choices": [{"text": "x", "logprobs": {"top_logprobs": [{" positive": NaN, " negative": -1}]}}]}'
SERVER_CASES = [
    # /models: the listing and its fields
    ("models-not-json", "topk", {"/models": b"<html>hi</html>"}, "not JSON"),
    ("models-list", "topk", {"/models": [1, 2]}, "without a list of models"),
    ("models-data-null", "topk", {"/models": {"data": None}}, "without a list of models"),
    ("models-data-object", "topk", {"/models": {"data": {"id": "m"}}}, "without a list of models"),
    ("models-id-list", "topk", {"/models": {"data": [{"id": ["m"]}]}}, "without a list of models"),
    ("models-id-null", "topk", {"/models": {"data": [{"id": None}]}}, "without a list of models"),
    ("models-id-number", "topk", {"/models": {"data": [{"id": 5}]}}, "without a list of models"),
    ("models-empty", "topk", {"/models": {"data": []}}, "hosts 0 models"),
    ("models-context-lots", "topk", {"/models": {"data": [{"id": "m", "context_length": "lots"}]}}, "context length"),
    ("models-context-negative", "topk", {"/models": {"data": [{"id": "m", "context_length": -5}]}}, "context length"),
    ("models-context-float", "topk", {"/models": {"data": [{"id": "m", "max_model_len": 2048.5}]}}, "context length"),
    ("models-context-true", "topk", {"/models": {"data": [{"id": "m", "max_model_len": True}]}}, "context length"),
    ("models-context-list", "topk", {"/models": {"data": [{"id": "m", "context_length": [1]}]}}, "context length"),
    # top-k completions
    ("topk-logprob-abc", "topk", {"/completions": topk({" positive": "abc", " negative": -1})}, "not a log-probability"),
    ("topk-logprob-nan", "topk", {"/completions": RAW_NAN}, "not a log-probability"),
    ("topk-logprob-positive", "topk", {"/completions": topk({" positive": 3.5, " negative": -1})}, "not a log-probability"),
    ("topk-logprob-inf", "topk", {"/completions": topk({" positive": INF, " negative": -1})}, "not a log-probability"),
    ("topk-logprob-null", "topk", {"/completions": topk({" positive": None, " negative": -1})}, "not a log-probability"),
    ("topk-logprob-true", "topk", {"/completions": topk({" positive": True, " negative": -1})}, "not a log-probability"),
    ("topk-logprob-list", "topk", {"/completions": topk({" positive": [-1], " negative": -1})}, "not a log-probability"),
    ("topk-table-number", "topk", {"/completions": topk(7)}, "no token table"),
    ("topk-table-list", "topk", {"/completions": topk([" positive"])}, "no token table"),
    ("topk-top-object", "topk", {"/completions": {"choices": [{"logprobs": {"top_logprobs": {"a": -1}}}]}},
     "no token table"),
    ("topk-choices-null", "topk", {"/completions": {"choices": None}}, "unexpected"),
    ("topk-choices-empty", "topk", {"/completions": {"choices": []}}, "unexpected"),
    ("topk-answer-list", "topk", {"/completions": [1, 2]}, "unexpected"),
    ("topk-answer-string", "topk", {"/completions": "hello"}, "unexpected"),
    ("topk-not-json", "topk", {"/completions": b"not json at all"}, "not JSON"),
    # a server that lists no token at all: every label would tie (a score of nothing), so one line
    ("topk-top-null", "topk", {"/completions": {"choices": [{"text": "x", "logprobs": {"top_logprobs": None}}]}},
     "no top-k token list"),
    ("topk-logprobs-null", "topk", {"/completions": {"choices": [{"text": "x", "logprobs": None}]}}, "no top-k token list"),
    ("topk-top-empty", "topk", {"/completions": topk({})}, "no top-k token list"),
    ("chat-content-null", "topk-chat", {"/chat/completions": {"choices": [{"logprobs": {"content": None}}]}},
     "no top-k token list"),
    # chat top-k
    ("chat-token-number", "topk-chat", {"/chat/completions": chat([{"token": 1, "logprob": -1}])}, "unexpected"),
    ("chat-logprob-abc", "topk-chat", {"/chat/completions": chat([{"token": " positive", "logprob": "abc"}])},
     "not a log-probability"),
    ("chat-rows-null", "topk-chat", {"/chat/completions": chat(None)}, "unexpected"),
    ("chat-row-missing-logprob", "topk-chat", {"/chat/completions": chat([{"token": " positive"}])}, "unexpected"),
    # echo
    ("echo-top-null", "echo", {"/completions": {"choices": [{"text": "x", "logprobs": {
        "tokens": [" a", " b", " c"], "token_logprobs": [None, -1, -1], "top_logprobs": None}}]}}, "unexpected"),
    ("echo-values-nan", "echo", {"/completions": b'{"choices": [{"text": "x", "logprobs": {"tokens": [" a", " positive"],'
                                                 b' "token_logprobs": [null, NaN]}}]}'}, "not a log-probability"),
    ("echo-lengths-differ", "echo", {"/completions": echo([" a", " b"], [None])}, "unexpected"),
    ("echo-tokens-null", "echo", {"/completions": echo(None, [None])}, "unexpected"),
    ("echo-token-number", "echo", {"/completions": echo([1, 2], [None, -1])}, "unexpected"),
    ("echo-values-string", "echo", {"/completions": echo([" a", " b"], "abc")}, "unexpected"),
    # vLLM prompt_logprobs
    ("vllm-rows-string", "vllm", {"/completions": vllm("abc")}, "unexpected"),
    ("vllm-row-list", "vllm", {"/completions": vllm([None, [1, 2]])}, "unexpected"),
    ("vllm-logprob-abc", "vllm", {"/completions": vllm([None, {"5": {"logprob": "abc", "decoded_token": " positive"}}])},
     "not a log-probability"),
    ("vllm-token-number", "vllm", {"/completions": vllm([None, {"5": {"logprob": -1, "decoded_token": 7}}])},
     "unexpected"),
    ("vllm-rows-null", "vllm", {"/completions": vllm(None)}, "unexpected"),
    # SGLang /generate
    ("sglang-rows-null", "sglang", {"/generate": sglang(None)}, "unexpected"),
    ("sglang-row-number", "sglang", {"/generate": sglang([5, 6])}, "unexpected"),
    ("sglang-logprob-abc", "sglang", {"/generate": sglang([[None, 1, " a"], ["abc", 2, " positive"]])},
     "not a log-probability"),
    ("sglang-text-number", "sglang", {"/generate": sglang([[None, 1, " a"], [-1, 2, 5]])}, "unexpected"),
    ("sglang-meta-list", "sglang", {"/generate": {"meta_info": [1]}}, "unexpected"),
]


@pytest.mark.parametrize("case, scoring, answers, expected", SERVER_CASES, ids=[c[0] for c in SERVER_CASES])
def test_every_server_field_of_the_wrong_kind_is_one_line(small_task_dir, tmp_cache, case, scoring, answers, expected):
    server = served(answers)
    msg = served_eval_error(server, small_task_dir, scoring)
    assert msg.startswith(f"server {server.url}: ") and expected in msg, msg


@pytest.mark.parametrize("status, headers", [
    (500, {}), (429, {}), (429, {"Retry-After": "1e9"}), (429, {"Retry-After": "-5"}), (503, {"Retry-After": "abc"}),
    (503, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}), (500, {"Content-Type": "text/html"}),
])
def test_server_errors_are_retried_briefly_and_end_in_one_line(small_task_dir, tmp_cache, status, headers):
    import time

    server = served({"/completions": b'{"error": {"message": "overloaded"}}'}, status=status, headers=headers)
    start = time.monotonic()
    msg = served_eval_error(server, small_task_dir, limit=1)
    assert time.monotonic() - start < 30  # never sleeps what Retry-After asks
    assert msg.startswith(f"server {server.url}: HTTP {status} on /completions") and "overloaded" in msg, msg


@pytest.mark.parametrize("length", ["abc", "-5", "1e9", "99999999999999999999"])
def test_a_hostile_content_length_is_one_line_or_read(length, small_task_dir, tmp_cache):
    body = json.dumps(MODELS).encode()
    server = ScriptedServer(lambda path: (200, {"Content-Length": length, "Connection": "close"}, body))
    try:
        result = CliRunner().invoke(main, ["eval", "--model", server.url, "--task", small_task_dir, "--limit", "1",
                                           "--scoring", "topk", "--timeout", "2", "--quiet"])
    finally:
        server.close()
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


@pytest.mark.parametrize("value", [-INF, -1e308, -1e6])
@pytest.mark.parametrize("calibrate", [None, "domain"])
def test_log_probabilities_below_any_real_one_are_refused_not_nan(small_task_dir, tmp_cache, value, calibrate):
    """Before: -Infinity (or -1e308, whose sum of two is -inf) was taken; with --calibrate domain the label scores
    became -inf - -inf = NaN, printed into eval's JSON."""
    server = served({"/completions": topk({" positive": value, " negative": value})})
    msg = served_eval_error(server, small_task_dir, "topk", "--json", *(["--calibrate", calibrate] if calibrate else []))
    assert "not a log-probability" in msg


def test_a_very_unlikely_token_is_still_scored(small_task_dir, tmp_cache):
    server = served({"/completions": topk({" positive": -9999.0, " negative": -0.5})})  # OpenAI's floor is -9999
    try:
        result = CliRunner().invoke(main, ["eval", "--model", server.url, "--task", small_task_dir, "--limit", "2",
                                           "--scoring", "topk", "--timeout", "2", "--quiet", "--json"])
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    assert math.isfinite(json.loads(result.stdout)["score"])


def test_the_api_key_is_never_printed_by_a_hostile_server(small_task_dir, tmp_cache, monkeypatch):
    monkeypatch.setenv("PROMPTSEARCH_API_KEY", "sk-values-secret")
    server = served({"/completions": b'{"error": {"message": "bad key sk-values-secret"}}'}, status=401)
    msg = served_eval_error(server, small_task_dir, limit=1)
    assert "HTTP 401" in msg and "sk-values-secret" not in msg, msg


def test_the_option_matrix_is_broad():
    """Every installed strategy option is in the matrix (a new option gets its cases without a test edit)."""
    covered = {(c.values[0], c.values[1]) for c in OPTION_CASES}
    every = {(n, p["name"]) for n, cls in registry.available().items() for p in registry.options_of(cls)}
    assert every <= covered and len(OPTION_CASES) > 400
    assert Path(limits.__file__).name == "limits.py"


# ---- 8. model settings refused before the run folder is made ----------------------------------------------
@pytest.mark.parametrize("args, expected", [
    (["--model", ""], "has no config.json"),
    (["--model", "/nonexistent/model"], "does not exist"),
    (["--model", "TINY", "--proposer", "/nonexistent/proposer"], "does not exist"),
    (["--model", "TINY", "--model-name", "m"], "--model-name picks a model on a server"),
])
def test_a_bad_model_setting_writes_no_run(tmp_path, small_task_dir, tiny_dir, args, expected):
    """Before: config.json was written, then the model load failed (a run folder with nothing to resume), and
    --model-name with a local model was silently ignored by run (eval refused it)."""
    out = tmp_path / "run"
    msg = one_line_error("run", "--task", small_task_dir, *[tiny_dir if a == "TINY" else a for a in args], "--out", out)
    assert expected in msg, msg
    assert not out.exists()


@pytest.mark.parametrize("ids", [["a\nb", "c"], ["x\r\nerror: fake", "y"]])
def test_model_ids_with_line_breaks_stay_one_line(small_task_dir, tmp_cache, ids):
    """Before: 'hosts 2 models (a' and 'b, c); pick one with --model-name' on two stderr lines."""
    server = served({"/models": {"data": [{"id": i} for i in ids]}})
    try:
        msg = one_line_error("eval", "--model", server.url, "--task", small_task_dir, "--limit", "1", "--quiet")
    finally:
        server.close()
    assert "hosts 2 models" in msg
