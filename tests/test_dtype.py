"""--dtype auto (#33): decided by the hardware, recorded as resolved, kept on resume, in every artifact,
and never mixed in the score cache. Tiny random model; the CPU's flags are faked both ways."""

import copy
import json

import pytest
import torch
from click.testing import CliRunner

from promptsearch import runner
from promptsearch.candidate import Candidate
from promptsearch.cli import main
from promptsearch.export import export_run
from promptsearch.models import hardware
from promptsearch.models.local import FrozenModel
from promptsearch.scoring import Scorer
from promptsearch.task import load_task

from .conftest import cut_run

AMX = {"avx512f", "amx_tile", "amx_bf16", "amx_int8"}
NO_AMX = {"avx2", "avx512f"}
AVX512_BF16 = {"avx2", "avx512f", "avx512_bf16", "avx512_vnni"}  # e.g. AMD Zen 4: bf16 dot products, no AMX


def fake_cpu(monkeypatch, flags):
    monkeypatch.setattr(hardware, "cpu_flags", lambda cpuinfo="/proc/cpuinfo": set(flags))


def test_auto_resolves_by_cpu_flags(tmp_path):
    assert hardware.auto_dtype("cpu", AMX)[0] == "bfloat16"
    assert hardware.auto_dtype("cpu", NO_AMX)[0] == "float32"
    dtype, why = hardware.auto_dtype("cpu", AVX512_BF16)
    assert dtype == "bfloat16" and "avx512_bf16" in why
    assert "no bf16 units" in hardware.auto_dtype("cpu", NO_AMX)[1]
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 amx_bf16 amx_tile\n")
    assert {"amx_bf16", "amx_tile"} <= hardware.cpu_flags(info)
    assert hardware.cpu_flags(tmp_path / "missing") == set()
    assert hardware.resolve_dtype("float16", "cpu") == ("float16", "asked for")


def test_load_auto_reports_the_dtype_used(tiny_dir, monkeypatch):
    fake_cpu(monkeypatch, AMX)
    m = FrozenModel.load(tiny_dir, device="cpu", dtype="auto")
    assert m.dtype == torch.bfloat16 and m.dtype_name == "bfloat16" and "AMX" in m.dtype_why
    fake_cpu(monkeypatch, NO_AMX)
    assert FrozenModel.load(tiny_dir, device="cpu", dtype="auto").dtype_name == "float32"


def test_cache_keys_keep_two_dtypes_apart(tiny, small_task_dir):
    bf16 = FrozenModel(copy.deepcopy(tiny.model).to(torch.bfloat16), tiny.tokenizer, name=tiny.name)
    assert bf16.fingerprint != tiny.fingerprint
    task = load_task(small_task_dir)
    cand, keys = Candidate(task.seed_prompt), [ex.key for ex in task.dev[:3]]
    assert not set(Scorer(tiny).keys(task, cand, keys)) & set(Scorer(bf16).keys(task, cand, keys))


def test_check_keeps_slow_dtypes_and_replaces_what_the_device_lacks(monkeypatch):
    assert hardware.host_dtype("bfloat16", "cpu", NO_AMX) == ("bfloat16", None)  # slower, still exact
    assert hardware.host_dtype("float16", "cpu", NO_AMX) == ("float16", None)
    assert hardware.host_dtype("auto", "cpu", AMX) == ("bfloat16", None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    dtype, note = hardware.host_dtype("bfloat16", "cuda")
    assert dtype == "float32" and "float32" in note and "\n" not in note


@pytest.fixture(scope="module")
def bf16_run(tiny_dir, small_task_dir, tmp_path_factory):
    """A short run with the default --dtype on a host faked to have AMX."""
    mp = pytest.MonkeyPatch()
    fake_cpu(mp, AMX)
    out = tmp_path_factory.mktemp("dtype") / "run"
    config = runner.make_config(task=small_task_dir, model=tiny_dir, device="cpu", strategies=["templates"],
                                budget={"max_evals": 150})
    assert config["dtype"] == "auto"
    summary = runner.run(config, out)
    mp.undo()
    return out, summary


def test_config_summary_and_artifact_record_the_resolved_dtype(bf16_run, tmp_path):
    out, summary = bf16_run
    config = json.loads((out / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["dtype_asked"] == "auto"
    assert summary["dtype"] == "bfloat16"
    assert "in bfloat16" in CliRunner().invoke(main, ["show", str(out)]).output
    assert export_run(out, tmp_path / "a.json").model["dtype"] == "bfloat16"


def test_resume_keeps_the_runs_dtype_where_auto_would_differ(bf16_run, tmp_path, monkeypatch):
    out, summary = bf16_run
    fake_cpu(monkeypatch, NO_AMX)  # here auto would pick float32
    resumed = runner.run(None, cut_run(out, tmp_path / "cut"), resume=True)
    assert resumed["dtype"] == "bfloat16" and resumed["best"]["dev"] == summary["best"]["dev"]


def test_old_runs_without_dtype_resume_in_float32(bf16_run, tmp_path):
    out, _ = bf16_run
    cut = cut_run(out, tmp_path / "old")
    config = json.loads((cut / "config.json").read_text())
    for key in ("dtype", "dtype_asked"):
        config.pop(key)
    (cut / "config.json").write_text(json.dumps(config))
    from promptsearch.store import RunStore

    assert runner.read_config(RunStore.open(cut))["dtype"] == "float32"


def test_check_says_in_one_line_what_it_scores_with_instead(bf16_run, tmp_path, monkeypatch):
    out, _ = bf16_run
    path = tmp_path / "a.json"
    export_run(out, path)
    note = "this GPU has no bf16: scoring in float32 instead of the recorded bfloat16"
    monkeypatch.setattr(hardware, "host_dtype", lambda dtype, device: ("float32", note))
    r = CliRunner().invoke(main, ["eval", "--artifact", str(path), "--device", "cpu", "--check"])
    assert f"note: {note}" in r.output.splitlines()
    r = CliRunner().invoke(main, ["eval", "--artifact", str(path), "--device", "cpu", "--json"])
    got = json.loads(r.stdout)
    assert got["dtype"] == "float32" and got["dtype_note"] == note


@pytest.fixture(scope="module")
def bf16_tiny():
    from promptsearch.testing import tiny_model

    m = tiny_model()
    return FrozenModel(m.model.to(torch.bfloat16), m.tokenizer, name=m.name)


def test_soft_prompt_trains_in_bf16_with_fp32_vectors(bf16_tiny):
    import math
    import random

    from promptsearch.strategies.soft_prompt import SoftPromptTuning

    from promptsearch.strategy import SearchContext

    task = load_task("sst2-mini")
    task = type(task)(task.name, task.kind, task.train[:24], task.dev[:16], task.test[:8], task.metric,
                      "Review: {input}\nSentiment:", task.label_words, task.description)
    ctx = SearchContext(task=task, scorer=Scorer(bf16_tiny), rng=random.Random(0), leaderboard=list,
                        charge=lambda n: None, remaining_evals=lambda: math.inf)
    strategy = SoftPromptTuning(n_virtual_tokens=4, init="vocab", lr=0.1, epochs=4, batch_size=8, patience=100)
    init = strategy.initial_embeddings(ctx, torch.Generator().manual_seed(1))
    result = strategy.train(ctx, Candidate(task.seed_prompt), list(task.dev))
    assert result.embeddings.dtype == torch.float32  # the trained copy is fp32; the forward casts it
    base = Candidate(task.seed_prompt)
    assert strategy.train_loss(ctx, base, result.embeddings) < strategy.train_loss(ctx, base, init) - 1e-3


def test_autoprompt_ranks_and_swaps_in_bf16(bf16_tiny):
    from promptsearch.strategies.autoprompt import AutoPrompt

    from promptsearch.search import Budget, Racing, Search

    task = load_task("sst2-mini")
    task = type(task)(task.name, task.kind, task.train, task.dev[:32], task.test[:16], task.metric,
                      task.seed_prompt, task.label_words, task.description)
    strategy = AutoPrompt(n_triggers=3, iterations=4, batch_size=4, top_k=4)
    summary = Search(task, Scorer(bf16_tiny), [strategy], Budget(max_evals=5000), racing=Racing(8, 2)).run()
    assert len(strategy.history) == 4
    assert all(h["best_candidate_loss"] < h["loss"] for h in strategy.history if "swap" in h)
    assert any(r["edit"].startswith("swap") for r in summary["leaderboard"] if r["strategy"] == "autoprompt")


def test_the_dequantised_cache_loads_without_the_gguf_entry(tiny_dir, tmp_path):
    """transformers 5.x saves a GGUF model's quantization entry with its plain weights; loading the cache with it
    warns (wrongly, for these plain weights) that bf16 is slow, so the cache is read without it."""
    import shutil

    from promptsearch.models.local import _plain_config

    cached = tmp_path / "cache"
    shutil.copytree(tiny_dir, cached)
    config = json.loads((cached / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gguf", "dequantize": False, "gguf_file": "x.gguf"}
    (cached / "config.json").write_text(json.dumps(config))
    plain = _plain_config(cached)
    assert not hasattr(plain, "quantization_config")
    assert plain.hidden_size == config["hidden_size"]
