"""Issue #27: a served test tells a dead server from an unreachable one, tests read JSON from stdout alone,
and the llama.cpp build recipe is one pinned set of flags that is part of its cache key."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from promptsearch.models.http_pool import HttpPool, ServerError
from promptsearch.testing import LlamaServer

from .served_fixture import FakeServer

ROOT = Path(__file__).resolve().parent.parent


def test_a_server_that_answered_then_refuses_is_reported_as_exited():
    with FakeServer("nonsense") as s:
        pool = HttpPool([s.url], retries=1)
        pool.backoff = 0.01
        pool.request("/models")
    with pytest.raises(ServerError) as e:  # the same port, now closed
        pool.request("/models")
    assert "stopped answering" in str(e.value) and "process has likely exited" in str(e.value)
    with pytest.raises(ServerError) as never:  # one that never answered is only unreachable
        HttpPool([s.url], retries=0).request("/models")
    assert "cannot connect" in str(never.value) and "stopped answering" not in str(never.value)


def test_a_dead_server_process_reports_its_signal_and_log_tail(tmp_path):
    log = tmp_path / "server.log"
    server = LlamaServer("unused.gguf", log_path=str(log))
    assert server.death() is None  # never started
    with open(log, "ab") as out:
        server.proc = subprocess.Popen(
            [sys.executable, "-c", "import os, signal; print('ggml_backend_amx_mul_mat', flush=True); "
             "os.kill(os.getpid(), signal.SIGSEGV)"], stdout=out)
        server.proc.wait()
    death = server.death()
    assert death.startswith("llama_cpp.server process exited (killed by SIGSEGV)")
    assert "ggml_backend_amx_mul_mat" in death


def test_no_test_parses_json_from_output_mixed_with_stderr():
    """CliRunner's ``output`` interleaves stderr (a progress bar on a cold model cache) with stdout."""
    offenders = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"json\.loads\(.*\.output\)", line):
                offenders.append(f"{path.name}:{n}")
    assert offenders == []


def _recipe():
    spec = importlib.util.spec_from_file_location("llama_build", ROOT / "tools" / "llama_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_build_recipe_is_portable_and_its_flags_key_the_cached_wheel():
    recipe = _recipe()
    assert "-DGGML_NATIVE=OFF" in recipe.FLAGS and "AMX" not in recipe.FLAGS
    assert recipe.KEY in recipe.WHEEL_DIR.name and recipe.VERSION in recipe.WHEEL_DIR.name
    makefile = (ROOT / "Makefile").read_text()
    assert "tools/llama_build.py" in makefile  # make test installs the server through the recipe, not pip's cache


def test_a_build_that_crashes_on_its_first_completion_is_one_clear_line():
    crash = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    assert _recipe().run_smoke(crash) == "llama-cpp-python cannot complete one token on this CPU (killed by SIGSEGV)"
    assert _recipe().run_smoke("pass") is None


@pytest.mark.integration
def test_the_installed_llama_cpp_completes_one_token():
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed")
    assert _recipe().check() is None
