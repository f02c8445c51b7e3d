"""Fault injection: kill real `promptsearch run` processes at seeded random moments, resume each time, and
check that the interrupted run ends exactly where an uninterrupted one of the same seed does.

    python benchmarks/chaos.py            # 20 SIGKILLs per strategy
    python benchmarks/chaos.py --quick    # 4 per strategy

For every strategy (and the default chain, and refine on a rated run): an uninterrupted reference run,
then SIGKILLs at seeded random moments (a quarter during start-up, the rest after the process logged a new
rung; "mid-search" counts those) (each followed by `run --resume DIR`, or `refine --resume DIR`; a
kill before the run directory exists starts it again), until N kills have landed; a run that finishes
before the next kill is compared and a new one started. Then one SIGINT and one SIGTERM (each must stop
cleanly: exit 130 with the resume hint, no traceback) and a torn last line (a kill, then the last log line
cut mid-way by hand), each resumed to the end. Every finished run is compared with the reference:
  identical   summary leaderboard, best and seed prompt (dev and test scores) equal
  re-scored   (candidate id, example key) pairs logged more than once in candidates.jsonl
  lost        reference log records missing from the run's log (the timings 'seconds' and 'row_seconds' ignored)
  extra       records the run logged that the reference did not
  torn        lines of the finished log that do not parse
The model is the tiny random Llama of promptsearch.testing saved to a folder, on a 40/30/30-row slice of
sst2-mini, so that hundreds of process starts fit on a small machine: this checks the bookkeeping, not
search quality. Writes benchmarks/results/chaos-YYYY-MM-DD.json (today).

    python benchmarks/chaos.py --hostile  # the hostile-input corpus (benchmarks/hostile.py) instead

runs bad, hostile and damaged input (path traversal, redirects with the API key, credentials in URLs, edited
registry rows, huge answers, Ray addresses and server URLs read from files, changed data on resume, NaN from a
server, numbers out of range, damaged model folders...) and prints cases tried / held / failed; writes
benchmarks/results/hostile-YYYY-MM-DD.json (today).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__:  # python -m benchmarks.chaos
    from . import common
else:  # python benchmarks/chaos.py: benchmarks/ is first on the path
    import common

RESULTS = common.result_path("chaos")  # --hostile: hostile-YYYY-MM-DD.json beside it
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
TIMINGS = ("seconds", "row_seconds")  # log fields that are wall-clock time, not what a run decided

STRATEGIES = {  # name -> (run arguments, example-evaluation budget): references of a few seconds each
    "templates": (["--strategy", "templates"], 600),
    "clarify": (["--strategy", "clarify"], 600),
    "autoprompt": (["--strategy", "autoprompt"], 400),
    "evolution": (["--strategy", "evolution"], 600),
    "soft-prompt": (["--strategy", "soft-prompt"], 400),
    "default": ([], 600),
    "refine": (["--strategy", "clarify"], 500),
}


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "promptsearch", *args]


def prepare(work: Path) -> tuple[str, str]:
    """The tiny model as a model folder and a small task slice, both under ``work``."""
    from promptsearch.task import BUNDLED_DIR
    from promptsearch.testing import tiny_model

    model_dir, task_dir = work / "tiny-model", work / "task"
    tiny = tiny_model()
    tiny.model.save_pretrained(model_dir)
    tiny.tokenizer.save_pretrained(model_dir)
    task_dir.mkdir()
    src = BUNDLED_DIR / "sst2-mini"
    for split, n in (("train", 40), ("dev", 30), ("test", 30)):
        lines = (src / f"{split}.jsonl").read_text().splitlines()[:n]
        (task_dir / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    shutil.copy(src / "task.json", task_dir / "task.json")
    return str(model_dir), str(task_dir)


def rated_parent(work: Path, model: str, task: str) -> Path:
    """A finished run with scripted ratings (refine needs one): low ratings with a comment on every other output."""
    parent, todo = work / "parent", work / "todo.jsonl"
    subprocess.run(cli("run", "--model", model, "--task", task, "--strategy", "templates", "--max-evals", "300",
                       "--seed", "3", "--quiet", "--out", str(parent)), check=True, env=ENV, capture_output=True)
    subprocess.run(cli("rate", str(parent), "--export", str(todo), "--quiet"), check=True, env=ENV, capture_output=True)
    rows = [json.loads(line) for line in todo.read_text().splitlines()]
    for i, r in enumerate(rows):
        r["rating"], r["comment"] = (1, "too long") if i % 2 else (5, "")
    todo.write_text("".join(json.dumps(r) + "\n" for r in rows))
    subprocess.run(cli("rate", str(parent), "--from-file", str(todo), "--quiet"), check=True, env=ENV, capture_output=True)
    return parent


class Case:
    """How to start (or resume) one strategy's run in a directory."""

    def __init__(self, name: str, model: str, task: str, parent: Path | None):
        args, evals = STRATEGIES[name]
        self.name, self.parent = name, parent
        common = [*args, "--max-evals", str(evals), "--quiet"]
        self.fresh = (["refine", str(parent), *common] if name == "refine" else
                      ["run", "--model", model, "--task", task, "--seed", "0", *common])

    def command(self, d: Path) -> list[str]:
        marker = "refine.json" if self.name == "refine" else "config.json"  # written once set-up is complete
        if (d / marker).exists():
            return cli("refine" if self.name == "refine" else "run", "--resume", str(d), "--quiet")
        return cli(*self.fresh, "--out", str(d))


def _hear_sigint() -> None:
    """A background shell starts its jobs with SIGINT ignored, and Python then never turns it into
    KeyboardInterrupt; restore the default so the SIGINT check sees what Ctrl-C in a terminal does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_once(cmd: list[str], d: Path, kill_at: float | None = None, sig=signal.SIGKILL, when=None,
             after_new_line: float | None = None) -> dict:
    """Start a process on run directory ``d``; send ``sig`` after ``kill_at`` seconds, or ``after_new_line``
    seconds after the process logged its first new rung, or once ``when()`` holds; else let it finish.
    Notes when its first log line appeared (the end of start-up) and whether it had logged anything new."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            preexec_fn=_hear_sigint)  # noqa: PLW1509 (no threads here)
    sent, first, grew_at, size0 = False, None, None, log_size(d)
    while proc.poll() is None:
        now = time.monotonic() - started
        if first is None and (d / "candidates.jsonl").exists():
            first = now
        if grew_at is None and log_size(d) > size0:
            grew_at = now
        due = (kill_at is not None and now >= kill_at) or (when is not None and when()) or \
            (after_new_line is not None and grew_at is not None and now >= grew_at + after_new_line)
        if due:
            proc.send_signal(sig)
            sent = True
            break
        time.sleep(0.02)
    _, err = proc.communicate()
    return {"signalled": sent, "rc": proc.returncode, "stderr": err, "seconds": time.monotonic() - started,
            "first_line": first, "mid_search": grew_at is not None}


def log_size(d: Path) -> int:
    try:
        return (d / "candidates.jsonl").stat().st_size
    except FileNotFoundError:
        return 0


def log_lines(d: Path) -> list[str]:
    path = d / "candidates.jsonl"
    return path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []


def compare(d: Path, ref: Path) -> dict:
    """How a finished run differs from the reference (see the module docstring)."""
    def parsed(lines):
        good, torn = [], 0
        for line in lines:
            try:
                good.append(json.loads(line))
            except json.JSONDecodeError:
                torn += 1
        return good, torn

    got, torn = parsed(log_lines(d))
    want, _ = parsed(log_lines(ref))
    # Wall-clock timings differ between any two runs; a rung's row_seconds (logged since 2026-12-05) too.
    key = lambda rec: json.dumps({k: v for k, v in rec.items() if k not in TIMINGS}, sort_keys=True)
    missing = collections.Counter(map(key, want)) - collections.Counter(map(key, got))
    extra = collections.Counter(map(key, got)) - collections.Counter(map(key, want))
    pairs = collections.Counter((rec["candidate"]["id"], k) for rec in got for k in rec.get("results", {}))
    same = False
    if (d / "summary.json").exists():
        a, b = (json.loads((x / "summary.json").read_text()) for x in (d, ref))
        same = all(a[k] == b[k] for k in ("leaderboard", "best", "seed"))
    return {"identical": same, "rescored": sum(n - 1 for n in pairs.values()), "lost": sum(missing.values()),
            "extra": sum(extra.values()), "torn": torn}


def chaos(case: Case, kills: int, work: Path, seed: int) -> dict:
    ref = work / f"{case.name}-ref"
    r = run_once(case.command(ref), ref)
    if r["rc"] != 0:
        raise SystemExit(f"{case.name}: reference run failed: {r['stderr'].strip().splitlines()[-1:]}")
    ref_seconds = r["seconds"]
    search_seconds = json.loads((ref / "summary.json").read_text())["budget_used"]["seconds"]
    startup = r["first_line"] or 1.0  # process start to the first logged rung: imports, model and task load
    rng = random.Random(f"{seed}-{case.name}")
    out = {"strategy": case.name, "reference_seconds": round(ref_seconds, 1), "startup_seconds": round(startup, 1), "kills": 0, "mid_search_kills": 0, "starts": 0, "runs": 0,
           "identical": 0, "rescored": 0, "lost": 0, "extra": 0, "torn": 0, "errors": []}
    started, n_round, d = time.monotonic(), 0, None

    def finish(d: Path) -> None:
        diff = compare(d, ref)
        out["runs"] += 1
        out["identical"] += diff["identical"]
        for k in ("rescored", "lost", "extra", "torn"):
            out[k] += diff[k]

    def fresh_dir() -> Path:
        nonlocal n_round
        n_round += 1
        return work / f"{case.name}-kill-{n_round}"

    d = fresh_dir()
    while True:
        # Seeded moments: a quarter anywhere in start-up (imports, model load, replaying the log), the rest
        # mid-search, up to 2/N of the reference's search time after the process logged its first new rung.
        kill_at = after = None
        if out["kills"] < kills:
            if rng.random() < 0.25:
                kill_at = rng.uniform(0, startup)
            else:
                after = rng.uniform(0, 2 * search_seconds / kills)
        r = run_once(case.command(d), d, kill_at, after_new_line=after)
        out["starts"] += 1
        if r["signalled"]:
            out["kills"] += 1
            out["mid_search_kills"] += r["mid_search"]
            continue
        if r["rc"] != 0:
            out["errors"].append(f"{d.name}: exit {r['rc']}: {(r['stderr'].strip().splitlines() or [''])[-1]}")
        else:
            finish(d)
        if out["kills"] >= kills:
            break
        if out["starts"] > 5 * kills + 10:  # the moments keep missing the search: say so rather than loop
            out["errors"].append(f"gave up after {out['starts']} starts with {out['kills']} kills")
            break
        d = fresh_dir()

    for sig in (signal.SIGINT, signal.SIGTERM):  # a clean stop with the hint, then resume to the end
        d = work / f"{case.name}-{sig.name}"
        r = run_once(case.command(d), d, sig=sig, when=lambda d=d: len(log_lines(d)) >= 2)
        clean = r["signalled"] and r["rc"] == 130 and "Continue with: promptsearch" in r["stderr"] \
            and "Traceback" not in r["stderr"]
        out[sig.name] = "clean stop" if clean else f"exit {r['rc']}: {r['stderr'].strip()[-200:]}"
        resumed = run_once(case.command(d), d)
        if resumed["rc"] == 0:
            finish(d)
        else:
            out["errors"].append(f"{d.name}: resume exit {resumed['rc']}")

    d = work / f"{case.name}-torn"  # a kill mid-write: the last line cut in half by hand
    target = max(2, len(log_lines(ref)) // 2)
    run_once(case.command(d), d, when=lambda: len(log_lines(d)) >= target)
    data = (d / "candidates.jsonl").read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    (d / "candidates.jsonl").write_bytes(data[: last + (len(data) - last) // 2])
    r = run_once(case.command(d), d)
    diff = compare(d, ref) if r["rc"] == 0 else None
    out["torn_line"] = "identical" if diff and diff["identical"] and not (diff["lost"] or diff["extra"] or diff["torn"]) \
        else f"differs: {diff or r['stderr'].strip()[-200:]}"
    if diff:
        out["runs"] += 1
        out["identical"] += diff["identical"]
        for k in ("rescored", "lost", "extra", "torn"):
            out[k] += diff[k]
    out["seconds"] = round(time.monotonic() - started, 1)
    return out


def table(rows: list[dict]) -> str:
    head = ("| strategy | ref s | kills | of them mid-search | starts | runs compared | identical | pairs re-scored | lines lost | "
            "extra lines | torn lines | SIGINT | SIGTERM | torn last line | errors | wall s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(f"| {r['strategy']} | {r['reference_seconds']} | {r['kills']} | {r['mid_search_kills']} | "
                     f"{r['starts']} | {r['runs']} | "
                     f"{r['identical']}/{r['runs']} | {r['rescored']} | {r['lost']} | {r['extra']} | {r['torn']} | "
                     f"{r['SIGINT']} | {r['SIGTERM']} | {r['torn_line']} | {len(r['errors'])} | {r['seconds']} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 kills per strategy instead of 20")
    ap.add_argument("--kills", type=int, default=None)
    ap.add_argument("--only", action="append", choices=list(STRATEGIES), help="strategies to try (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--keep", action="store_true", help="keep the run directories (printed)")
    ap.add_argument("--hostile", action="store_true", help="run the hostile-input corpus (benchmarks/hostile.py) instead")
    args = ap.parse_args(argv)
    if args.hostile:
        return hostile(args)
    kills = args.kills or (4 if args.quick else 20)
    work = Path(tempfile.mkdtemp(prefix="chaos-"))
    started = time.monotonic()
    model, task = prepare(work)
    names = args.only or list(STRATEGIES)
    parent = rated_parent(work, model, task) if "refine" in names else None
    note = (f"tiny random Llama (promptsearch.testing.tiny_model) from a folder, sst2-mini slice 40/30/30, seed {args.seed}, "
            f"{kills} SIGKILLs per strategy at seeded moments; every kill followed by --resume")
    rows = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        rows.append(chaos(Case(name, model, task, parent), kills, work, args.seed))
        print(f"{name}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
        args.out.write_text(json.dumps({"mode": "quick" if args.quick else "full", "kills_per_strategy": kills,
                                        "note": note, "rows": rows}, indent=2) + "\n")  # so far, in case it is cut short
    print(note)
    print(table(rows))
    total = sum(r["seconds"] for r in rows)
    print(f"\n{sum(r['kills'] for r in rows)} kills, {sum(r['runs'] for r in rows)} runs compared, "
          f"{sum(r['identical'] for r in rows)} identical; {total:.0f} s (all: {time.monotonic() - started:.0f} s)")
    if args.keep:
        print(f"run directories: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def hostile(args) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from hostile import run_corpus

    work = Path(tempfile.mkdtemp(prefix="hostile-"))
    started = time.monotonic()
    model, task = prepare(work)
    rows = run_corpus(work, model, task, ENV)
    failed = [r for r in rows if not r["held"]]
    out = args.out if args.out != RESULTS else common.result_path("hostile")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"tried": len(rows), "held": len(rows) - len(failed), "failed": len(failed),
                               "classes": len({r["class"] for r in rows}), "rows": rows}, indent=2) + "\n")
    for r in failed:
        print(f"FAILED {r['class']}: {r['case']}: {r['detail']}")
    print(f"hostile input: {len(rows)} cases tried in {len({r['class'] for r in rows})} classes, "
          f"{len(rows) - len(failed)} held, {len(failed)} failed ({time.monotonic() - started:.0f} s)")
    if args.keep:
        print(f"case directories: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
