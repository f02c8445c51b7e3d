import os
from contextlib import contextmanager

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


# torch's thread count as the session found it. Read once, here: a per-test read saw whatever a module fixture had
# left (one thread), and from then on every real-model test ran on one core of two (the suite took 43 min in float32).
HOST_THREADS = __import__("torch").get_num_threads()


@pytest.fixture(autouse=True)
def _threads(request):
    """The tiny model's matrices are too small for threads: one thread is ~30x faster when the
    machine is busy (spinning OpenMP workers). The real model (the `smollm` fixture, or a test marked `real_model`
    that loads it itself) gets the host's threads."""
    import torch

    real = "smollm" in request.fixturenames or request.node.get_closest_marker("real_model")
    torch.set_num_threads(HOST_THREADS if real else 1)
    yield
    torch.set_num_threads(HOST_THREADS)


@contextmanager
def one_thread():
    """For a module fixture's tiny run (set up before `_threads` runs): one thread, then the host's again."""
    import torch

    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(HOST_THREADS)


@pytest.fixture(scope="session")
def tiny():
    from promptsearch.testing import tiny_model

    return tiny_model()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, tiny):
    """The tiny model saved as a local model directory (``--model PATH``; what other processes load)."""
    d = tmp_path_factory.mktemp("tiny-model")
    tiny.model.save_pretrained(d)
    tiny.tokenizer.save_pretrained(d)
    return str(d)


@pytest.fixture(scope="session")
def smollm():
    """The real embedded SmolLM2, loaded once per test session."""
    from promptsearch.models.local import FrozenModel

    return FrozenModel.load()


def sst2_slice(directory, train: int, dev: int, test: int):
    """The first rows of each split of the bundled SST-2 sample, as a task directory (quick searches)."""
    import shutil

    from promptsearch.task import BUNDLED_DIR

    src = BUNDLED_DIR / "sst2-mini"
    for split, n in (("train", train), ("dev", dev), ("test", test)):
        lines = (src / f"{split}.jsonl").read_text().splitlines()[:n]
        (directory / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    shutil.copy(src / "task.json", directory / "task.json")
    return directory


def cut_run(run_dir, into):
    """A copy of a run as a kill would leave it: its config and the first half of its log."""
    lines = (run_dir / "candidates.jsonl").read_text().splitlines()
    into.mkdir()
    (into / "config.json").write_text((run_dir / "config.json").read_text())
    (into / "candidates.jsonl").write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    return into


@pytest.fixture(scope="session")
def small_task_dir(tmp_path_factory):
    """A 40/30/30-row slice of the bundled SST-2 sample, so CLI tests on the tiny model stay quick."""
    return str(sst2_slice(tmp_path_factory.mktemp("small-task"), 40, 30, 30))


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTSEARCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A served test that fails while its llama_cpp.server process is dead says so (exit code or signal and
    the log's last lines) instead of leaving only the client's "cannot connect"."""
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("llama_server")
    if report.failed and server is not None and server.death():
        report.sections.append(("llama_cpp.server", server.death()))
        report.longrepr = f"{report.longrepr}\n{server.death()}"


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """llama-cpp-python's server on the embedded SmolLM2 GGUF, on a free loopback port, for the session."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python[server] is not installed (python tools/llama_build.py)")
    from promptsearch.models.local import embedded_gguf

    from .served_fixture import LlamaServer

    server = LlamaServer(str(embedded_gguf()), log_path=str(tmp_path_factory.mktemp("llama") / "server.log")).start()
    yield server
    server.stop()
