"""What every benchmark script needs: where the data is, seeded samples, machine info, safe writes.

Scripts import it as ``common`` when run as ``python benchmarks/X.py`` (Python puts ``benchmarks/`` first
on the path) and as ``benchmarks.common`` when imported as a package (``python -m benchmarks.X``, the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import subprocess
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DATA_ENV = "PROMPTSEARCH_DATA"


def data_root(given: str | Path | None = None) -> Path:
    """The shared data folder: ``given`` (``--data``), else $PROMPTSEARCH_DATA, else ../shared/data
    beside the repository."""
    return Path(given or os.environ.get(DATA_ENV) or REPO.parent / "shared" / "data")


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """``--data``, the same in every script; read it back with ``data_root(args.data)``."""
    parser.add_argument("--data", default=None, help=f"The shared data folder (default: ${DATA_ENV}, else "
                        f"{REPO.parent / 'shared' / 'data'}).")


def task_dir(name: str, data: Path | None = None) -> Path:
    """A task name under the data folder (instruction-induction tasks by their short name) or a directory."""
    data = data_root(data)
    for path in (data / name, data / "instruction_induction" / name, Path(name)):
        if (path / "test.jsonl").exists():
            return path
    from promptsearch.errors import PromptSearchError

    raise PromptSearchError(f"task {name!r}: not found under {data} and not a task directory")


def subsample(examples: tuple, n: int | None, seed: int, stratify: bool = False) -> tuple:
    """A seeded sample of n rows (all when n is None or larger), never the first n: the agnews and trec
    files are sorted by class. ``stratify``: classes take turns (for a small balanced dev set)."""
    if not n or n >= len(examples):
        return tuple(examples)
    rng = random.Random(seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    if stratify:
        by_label: dict = {}
        for i in order:
            by_label.setdefault(examples[i].label, []).append(i)
        queues = [by_label[k] for k in sorted(by_label, key=lambda k: (k is None, k if k is not None else 0))]
        order = [q[j] for j in range(max(map(len, queues))) for q in queues if j < len(q)]
    return tuple(examples[i] for i in sorted(order[:n]))


def load_bench_task(name: str, dev: int | None, test: int | None, data: Path | None = None, seed: int = 0):
    """The task with a seeded sample of ``dev`` dev rows (class-balanced for classification) and
    ``test`` test rows (uniform, so the test distribution is kept)."""
    from promptsearch.task import load_task

    task = load_task(str(task_dir(name, data)), seed=seed)
    return replace(task, dev=subsample(task.dev, dev, seed, stratify=task.kind == "classification"),
                   test=subsample(task.test, test, seed))


def load_model(threads: int | None = None, spec: str | None = None):
    """The embedded model (or ``spec``: a model folder or GGUF file), with torch held to ``threads`` CPU threads
    when given (benchmarks run side by side)."""
    import torch

    from promptsearch.models.local import FrozenModel

    if threads:
        torch.set_num_threads(threads)
    return FrozenModel.load(spec)


def machine(threads: int | None = None) -> dict:
    """Where a benchmark ran; wall times mean little without the load average (the machine is shared)."""
    import torch

    threads = threads or torch.get_num_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    info = {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "torch_threads": threads, "python": platform.python_version(),
            "torch": torch.__version__, "load_avg_at_start": load, "commit": commit()}
    info["summary"] = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {threads} torch thread(s), "
                       f"load average {load:.1f} at start" if load is not None else "")
    return info


def commit() -> str | None:
    """The repository's commit, with "+dirty" when tracked files differ from it; None outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def today() -> str:
    """Today's date in UTC, as result files are named."""
    return time.strftime("%Y-%m-%d", time.gmtime())


def result_path(name: str, suffix: str = ".json", directory: str | Path | None = None) -> Path:
    """Where a benchmark writes by default: ``<name>-<YYYY-MM-DD><suffix>`` under benchmarks/results/ (or
    ``directory``), dated today, so a rerun lands beside the earlier result instead of over it."""
    return Path(directory or RESULTS) / f"{name}-{today()}{suffix}"


def latest(name: str, suffix: str = ".json", directory: str | Path | None = None) -> Path:
    """The newest ``<name>-<YYYY-MM-DD><suffix>`` result (``scoreboard-full`` does not match
    ``scoreboard-full-seed1-...``); FileNotFoundError naming the pattern when there is none."""
    folder = Path(directory or RESULTS)
    pattern = re.compile(re.escape(name) + r"-(\d{4}-\d{2}-\d{2})" + re.escape(suffix) + "$")
    found = sorted((m[1], p) for p in folder.iterdir() if (m := pattern.match(p.name))) if folder.is_dir() else []
    if not found:
        raise FileNotFoundError(f"no {name}-YYYY-MM-DD{suffix} in {folder}")
    return found[-1][1]


def write_text(path: str | Path, text: str) -> Path:
    """Write to a temporary name, then rename: a kill mid-write leaves the previous file whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def winner_outcomes(run_dir: str | Path) -> tuple[list[str], list[float]]:
    """A finished run's winner's per-example test scores, in its test order (keys, scores), from its test.jsonl."""
    from promptsearch.store import RunStore

    store = RunStore.open(run_dir)
    best = store.summary["best"]["id"]
    for row in store.read("test.jsonl"):
        if row["candidate"]["id"] == best:
            return row["keys"], [r[0] for r in row["results"]]  # results are in keys' order
    raise SystemExit(f"error: {run_dir}: the winner {best} has no test row")


def write_json(path: str | Path, obj, indent: int = 2) -> Path:
    return write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")
