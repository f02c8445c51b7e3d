"""Scoring fanned out in chunks: in-process and on a real local Ray cluster, same log, same result."""

import json
import math
import threading
import time

import pytest

from promptsearch import runner
from promptsearch.candidate import Candidate
from promptsearch.errors import RunInterrupted
from promptsearch.scoring import Scorer
from promptsearch.scoring.executors import ChunkedScorer, InProcess
from promptsearch.task import load_task


def config_for(task_dir, model_dir, executor, max_evals=400):
    return runner.make_config(task=task_dir, model=model_dir, strategies=["templates"], seed=5,
                              budget={"max_evals": max_evals, "max_seconds": None, "max_candidates": None},
                              executor=executor)


def log_of(run_dir):
    """The run log without wall-clock times: what must not depend on where scoring ran."""
    out = []
    for line in (run_dir / "candidates.jsonl").read_text().splitlines():
        rec = json.loads(line)
        rec.pop("seconds")
        out.append(rec)
    return out


def assert_same_log(a, b):
    """Same candidates, rungs, scores and predictions, in the same order; log-likelihoods equal up to
    float rounding (a replica's key/value caches are built in other pieces than the driver's)."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x["candidate"], x["size"], x["score"], x["evals_used"]) == (y["candidate"], y["size"], y["score"], y["evals_used"])
        assert list(x["results"]) == list(y["results"])  # example order
        for key in x["results"]:
            rx, ry = x["results"][key], y["results"][key]
            assert rx[:2] == ry[:2]
            assert rx[2] == pytest.approx(ry[2], abs=1e-4) and rx[3] == pytest.approx(ry[3], abs=1e-4)


def test_chunks_give_the_scorers_results_in_example_order(tiny):
    task = load_task("sst2-mini")
    cand = Candidate("Review: {input}\nSentiment:")
    plain = Scorer(tiny).evaluate(task, cand, task.dev[:70])
    local = Scorer(tiny)
    chunked = ChunkedScorer(local, InProcess(Scorer(tiny)), chunk_size=16)
    chunked.evaluate(task, cand, task.dev[:10])  # some cached first: only the missing 60 are chunked
    got = chunked.evaluate(task, cand, task.dev[:70])
    assert local.stats["chunks"] == 1 + math.ceil(60 / 16)
    assert [r.prediction for r in got] == [r.prediction for r in plain]
    assert [r.logprob for r in got] == pytest.approx([r.logprob for r in plain], abs=1e-4)


def test_in_process_chunks_run_the_same_search_as_local(tiny, tiny_dir, small_task_dir, tmp_path):
    task = load_task(small_task_dir)
    a = runner.run(config_for(small_task_dir, tiny_dir, {"kind": "local"}), tmp_path / "a", parts=(task, tiny, Scorer(tiny)))
    b = runner.run(config_for(small_task_dir, tiny_dir, {"kind": "in-process", "chunk": 8}), tmp_path / "b",
                   parts=(task, tiny, Scorer(tiny)))
    assert a["leaderboard"] == b["leaderboard"] and a["best"] == b["best"]
    assert_same_log(log_of(tmp_path / "a"), log_of(tmp_path / "b"))


# ---- a real Ray cluster ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


RAY = {"kind": "ray", "workers": 2, "threads": 1, "chunk": 8}


@pytest.fixture(scope="module")
def reference(tiny, tiny_dir, small_task_dir, tmp_path_factory):
    """The uninterrupted in-process run every Ray run must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "run"
    task = load_task(small_task_dir)
    summary = runner.run(config_for(small_task_dir, tiny_dir, {"kind": "in-process", "chunk": 8}), out,
                         parts=(task, tiny, Scorer(tiny)))
    return summary, log_of(out)


@pytest.mark.integration
def test_two_ray_workers_write_the_same_log_and_leaderboard(ray_cluster, reference, tiny, tiny_dir, small_task_dir, tmp_path):
    task = load_task(small_task_dir)
    summary = runner.run(config_for(small_task_dir, tiny_dir, RAY), tmp_path / "ray", parts=(task, tiny, Scorer(tiny)))
    assert summary["leaderboard"] == reference[0]["leaderboard"] and summary["best"] == reference[0]["best"]
    assert_same_log(log_of(tmp_path / "ray"), reference[1])


def kill_worker_when(pool_holder, chunks: int, how_many: int):
    """A thread that kills ``how_many`` live workers once the pool has finished ``chunks`` chunks."""
    def watch():
        deadline = time.time() + 300
        while time.time() < deadline:
            pool = pool_holder.get("pool")
            if pool is not None and pool.chunks_done >= chunks:
                import ray

                for worker in list(pool.alive)[:how_many]:
                    ray.kill(worker, no_restart=True)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def pool_holder(monkeypatch):
    """Catch the RayPool the runner builds, so a test can kill its workers mid-run."""
    from promptsearch.scoring import executors

    holder = {}
    original = executors.RayPool.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        holder["pool"] = self

    monkeypatch.setattr(executors.RayPool, "__init__", init)
    return holder


@pytest.mark.integration
def test_a_worker_killed_mid_run_changes_nothing(ray_cluster, reference, pool_holder, tiny, tiny_dir, small_task_dir, tmp_path):
    task = load_task(small_task_dir)
    watcher = kill_worker_when(pool_holder, chunks=4, how_many=1)
    summary = runner.run(config_for(small_task_dir, tiny_dir, RAY), tmp_path / "ray", parts=(task, tiny, Scorer(tiny)))
    watcher.join(timeout=5)
    assert len(pool_holder["pool"].workers) == 2 and pool_holder["pool"].size == 2
    assert pool_holder["pool"].chunks_done > 4
    assert summary["leaderboard"] == reference[0]["leaderboard"]
    assert_same_log(log_of(tmp_path / "ray"), reference[1])


@pytest.mark.integration
def test_no_worker_left_stops_the_run_and_it_resumes_with_nothing_lost(ray_cluster, reference, pool_holder, tiny,
                                                                       tiny_dir, small_task_dir, tmp_path):
    task = load_task(small_task_dir)
    watcher = kill_worker_when(pool_holder, chunks=6, how_many=2)
    with pytest.raises(RunInterrupted, match="all 2 Ray workers are gone"):
        runner.run(config_for(small_task_dir, tiny_dir, RAY), tmp_path / "ray", parts=(task, tiny, Scorer(tiny)))
    watcher.join(timeout=5)
    logged = log_of(tmp_path / "ray")
    assert 0 < len(logged) < len(reference[1])
    assert_same_log(logged, reference[1][: len(logged)])  # what was logged is intact
    scorer = Scorer(tiny)
    summary = runner.run(None, tmp_path / "ray", resume=True, parts=(task, tiny, scorer),
                         executor={"kind": "in-process", "chunk": 8})
    assert summary["leaderboard"] == reference[0]["leaderboard"]
    assert_same_log(log_of(tmp_path / "ray"), reference[1])  # nothing scored twice, nothing lost


def test_ray_executor_without_ray_says_how_to_get_it(monkeypatch, tiny_dir):
    import sys

    from promptsearch.errors import PromptSearchError
    from promptsearch.scoring.executors import RayPool

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: import ray raises ImportError
    with pytest.raises(PromptSearchError, match=r"pip install 'promptsearch\[ray\]'"):
        RayPool(tiny_dir)


def test_executors_fit_the_model_kind(tiny):
    from promptsearch.errors import PromptSearchError
    from promptsearch.scoring.executors import make_executor

    scorer = Scorer(tiny)
    with pytest.raises(PromptSearchError, match="the http executor sends requests to served models"):
        make_executor({"model": "/some/dir", "executor": {"kind": "http"}}, scorer)
    with pytest.raises(PromptSearchError, match="Ray workers hold local model replicas"):
        make_executor({"model": "http://127.0.0.1:1/v1", "executor": {"kind": "ray"}}, scorer)
    assert make_executor({"model": "http://a/v1,http://b/v1", "executor": {"kind": "http"}}, scorer) is scorer
    with pytest.raises(PromptSearchError, match="unknown executor 'gpu'"):
        make_executor({"model": None, "executor": {"kind": "gpu"}}, scorer)


@pytest.mark.integration
def test_a_row_too_long_on_a_ray_worker_is_scored_wrong_as_in_process(ray_cluster, tiny, tiny_dir, small_task_dir):
    """A worker's TooLongError reaches the driver with a copy of its row: reporting still finds the row (by its
    content key) and scores it wrong, the rest as in process."""
    from dataclasses import replace

    from promptsearch.scoring.executors import make_executor
    from promptsearch.scoring.scorer import evaluate_fitting

    task = load_task(small_task_dir)
    rows = [task.test[0], replace(task.test[1], input=task.test[1].input * 400), task.test[2]]
    cand = Candidate("Review: {input}\nSentiment:")
    chunked = make_executor(config_for(small_task_dir, tiny_dir, RAY), Scorer(tiny))
    try:
        results, over = evaluate_fitting(chunked, task, cand, rows)
    finally:
        chunked.close()
    local, local_over = evaluate_fitting(Scorer(tiny), task, cand, rows)
    assert [ex.key for ex in over] == [ex.key for ex in local_over] == [rows[1].key]
    assert [r.prediction for r in results] == [r.prediction for r in local] and results[1].prediction == ""
