"""Executors: where the scoring of (candidate, example) pairs runs when one process is too slow.

The search stays one process (proposals, racing, the run log). :class:`ChunkedScorer` wraps the
driver's scorer: the pairs of an ``evaluate`` call that are not cached yet are cut into fixed chunks
(examples of similar length together), an executor scores the chunks wherever it likes, and the results are merged back by key.
``evaluate`` returns only when every chunk is in, so a rung is logged complete and in example order,
whatever order the chunks finish in: the run log and ``--resume`` are exactly as with one process.

- ``InProcess`` scores the chunks one after another with the driver's own scorer (the reference the
  others must match, chunk for chunk).
- ``http``: a served model (``--model URL[,URL...]``) already sends its requests concurrently and spreads
  them over every URL given (replicas), so it needs no wrapper; the option only checks the model is served.
- ``RayPool`` holds one model replica per Ray actor (``--executor ray --workers N``), on a local
  cluster it starts or on an existing one (``--ray auto|ADDRESS``). A worker that dies has its chunk
  scored by another; when none is left the run stops (:class:`~promptsearch.errors.RunInterrupted`)
  with what was logged intact.

What strategies run themselves on the model (AutoPrompt's gradients, soft-prompt training, paraphrases)
stays in the driver, which keeps its own replica; only scoring fans out.
"""

from __future__ import annotations

import logging

from ..errors import PromptSearchError, RunInterrupted
from .protocol import WrappedScorer

log = logging.getLogger(__name__)

CHUNK = 32  # examples per chunk: two scorer batches, small enough to spread a 16-example first rung


class ChunkedScorer(WrappedScorer):
    """A scorer whose missing pairs are scored in fixed chunks by an executor; everything else (cache,
    keys, rendering, generation for strategies) is the wrapped driver scorer's."""

    def __init__(self, scorer, executor, chunk_size: int = CHUNK):
        if chunk_size < 1:
            raise PromptSearchError(f"chunk size {chunk_size} must be at least 1")
        super().__init__(scorer)
        self.scorer, self.executor, self.chunk_size = scorer, executor, chunk_size

    def evaluate(self, task, candidate, examples):
        keys = self.scorer.keys(task, candidate, [ex.key for ex in examples])
        hits = sum(k in self.scorer.cache for k in keys)
        self.scorer.stats["cache_hits"] += hits
        if hits < len(keys):
            self.prefetch(task, [(candidate, examples)])
        return [self.scorer.cache[k] for k in keys]

    def prefetch(self, task, requests) -> None:
        """Score the missing pairs of several (candidate, examples) requests in one fan-out, so that the
        first rungs of a whole round of proposals keep every worker busy (a 16-example rung is one chunk).
        Each candidate's chunks are the same as if it were evaluated alone: results do not depend on it."""
        scorer, jobs, slots = self.scorer, [], []
        for candidate, examples in requests:
            keys = scorer.keys(task, candidate, [ex.key for ex in examples])
            missing = [i for i, k in enumerate(keys) if k not in scorer.cache]
            # Chunks of similar lengths pad little (the scorer batches within a chunk); a stable sort keeps
            # them the same wherever they are scored, and results are merged back by key.
            missing.sort(key=lambda i: len(examples[i].input))
            soft = scorer.soft_vectors(candidate.soft) if missing else None
            for start in range(0, len(missing), self.chunk_size):
                chunk = missing[start: start + self.chunk_size]
                jobs.append((candidate, [examples[i] for i in chunk], soft))
                slots.append([keys[i] for i in chunk])
        if not jobs:
            return
        for keys, results in zip(slots, self.executor.map(task, jobs)):
            for key, result in zip(keys, results):
                scorer.cache[key] = result
        scorer.stats["examples_scored"] += sum(len(k) for k in slots)
        scorer.stats["chunks"] += len(jobs)

    def close(self) -> None:
        self.executor.close()


class InProcess:
    """Chunks scored one after another by the driver's scorer."""

    def __init__(self, scorer):
        self.scorer = scorer

    def map(self, task, jobs) -> list[list]:
        """``jobs``: (candidate, examples, soft vectors or None); one result list per job, in order."""
        return [self.scorer.evaluate(task, candidate, examples) for candidate, examples, _ in jobs]

    def close(self) -> None:
        pass


class ScoringWorker:
    """One model replica in a Ray actor: loads the model once, then scores the chunks it is sent."""

    def __init__(self, model: str | None, device: str, dtype: str, batch_size: int, chat: bool, threads: int):
        import torch

        from ..models.local import FrozenModel
        from .scorer import Scorer

        torch.set_num_threads(threads)
        self.scorer = Scorer(FrozenModel.load(model, device=device, dtype=dtype), batch_size=batch_size, chat=chat)

    def score(self, task, candidate, examples, soft=None) -> list:
        if soft is not None:  # the driver trained it; the worker only needs the vectors
            self.scorer.register_soft_prompt(candidate.soft, soft)
        return self.scorer.evaluate(task, candidate, examples)

    def pid(self) -> int:
        import os

        return os.getpid()


def _ray():
    try:
        import ray
    except ImportError:
        raise PromptSearchError("the ray executor needs Ray: pip install 'promptsearch[ray]'") from None
    return ray


class RayPool:
    """Model replicas in Ray actors, one chunk at a time each; a dead worker's chunk goes to another."""

    def __init__(self, model: str | None, workers: int = 2, threads: int = 1, address: str | None = None,
                 device: str = "cpu", dtype: str = "float32", batch_size: int = 16, chat: bool = False):
        if workers < 1 or threads < 1:
            raise PromptSearchError("the ray executor needs at least one worker with at least one thread")
        ray = _ray()
        self._started = not ray.is_initialized()
        if self._started:
            try:
                if address:
                    ray.init(address=address, include_dashboard=False, log_to_driver=False)
                else:  # a local cluster sized for the workers asked for
                    ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise PromptSearchError(f"could not reach the Ray cluster at {address or 'a new local cluster'}: "
                                        f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None
        actor = ray.remote(ScoringWorker).options(num_cpus=threads, max_restarts=0)
        self.workers = [actor.remote(model, device, dtype, batch_size, chat, threads) for _ in range(workers)]
        self.alive = list(self.workers)
        self.size = workers
        self.chunks_done = 0
        self._task = (None, None)  # the last task and its object-store reference (sent once, not per chunk)

    def _task_ref(self, task):
        if self._task[0] is not task:
            self._task = (task, _ray().put(task))
        return self._task[1]

    def map(self, task, jobs) -> list[list]:
        ray = _ray()
        from ray.exceptions import RayActorError, RayTaskError

        task_ref = self._task_ref(task)
        # Longest chunks first: the last chunk to finish is then a short one, so no worker waits long at the end.
        pending = sorted(range(len(jobs)), key=lambda i: -sum(len(ex.input) for ex in jobs[i][1]))
        results: list = [None] * len(jobs)
        running: dict = {}  # future -> (chunk index, worker)
        idle = list(self.alive)
        while pending or running:
            while pending and idle:
                worker, index = idle.pop(0), pending.pop(0)
                candidate, examples, soft = jobs[index]
                running[worker.score.remote(task_ref, candidate, examples, soft)] = (index, worker)
            if not running:
                break
            (future,), _ = ray.wait(list(running), num_returns=1)
            index, worker = running.pop(future)
            try:
                results[index] = ray.get(future)
            except RayActorError as e:
                self.alive = [w for w in self.alive if w is not worker]
                pending.insert(0, index)  # scored again by a live worker: same chunk, same result
                log.warning("a Ray worker died (%s); its chunk goes to another (%d of %d left)",
                            str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__, len(self.alive), self.size)
                continue
            except RayTaskError as e:  # an error inside the scorer (e.g. a prompt too long): the same as locally
                cause = getattr(e, "cause", None)
                if isinstance(cause, PromptSearchError):
                    raise cause from None
                raise
            self.chunks_done += 1
            idle.append(worker)
        if pending:
            raise RunInterrupted(f"all {self.size} Ray workers are gone; what was scored before is logged")
        return results

    def close(self) -> None:
        ray = _ray()
        for worker in self.alive:
            ray.kill(worker)
        self.alive = []
        if self._started and ray.is_initialized():
            ray.shutdown()


def make_executor(config: dict, scorer):
    """The executor a run's config asks for wrapped around its scorer, or the scorer itself for ``local``."""
    from ..models import is_served

    spec = config.get("executor") or {}
    kind = spec.get("kind", "local")
    served = is_served(config.get("model"))
    if kind == "http" and not served:
        raise PromptSearchError("the http executor sends requests to served models: give the model as a URL "
                                "(several comma-separated URLs are replicas, and requests are spread across them)")
    if kind == "ray" and served:
        raise PromptSearchError("Ray workers hold local model replicas; a served model is scaled with the http executor")
    if kind in ("local", "http"):  # a served model's requests already go out concurrently, over every URL
        return scorer
    if kind == "in-process":
        return ChunkedScorer(scorer, InProcess(scorer), spec.get("chunk", CHUNK))
    if kind == "ray":
        pool = RayPool(config.get("model"), workers=spec.get("workers", 2), threads=spec.get("threads", 1),
                       address=spec.get("address"), device=config.get("device", "auto"), dtype=config.get("dtype", "float32"),
                       batch_size=config.get("batch_size", 16), chat=config.get("chat", False))
        return ChunkedScorer(scorer, pool, spec.get("chunk", CHUNK))
    raise PromptSearchError(f"unknown executor {kind!r}; use local, in-process, ray or http")
