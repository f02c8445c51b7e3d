"""A linear-probe ceiling: what the frozen model "knows" about a classification task, read off its own hidden states.

For each task and draw of the few-label protocol (protocol.py), a logistic regression on the model's last-token
hidden state (the input rendered with the task's seed prompt) is fitted

- on the few labelled rows the prompt search had (the draw's train + dev), and
- on ``protocol.MANY_ROWS`` (2,000) labelled rows (the same for every draw, so fitted once per task),

and scored on the draw's fixed test sample. The layer (the final one, after the final norm, or the middle one)
and the regularisation C are chosen by stratified k-fold cross-validation on the fitting rows only. It is a
reference, not a bound: a prompt can beat a probe fitted on 64 rows, and a probe reads information that no
label word may be able to express.

Features are cached on disk (one .npy per row, no pickle) keyed by the model, the prompt and the text, so the
500 test rows and the 2,000 many rows that every draw shares run once.

    python benchmarks/ceiling.py [--tasks sst2,agnews,trec] [--draws 5] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

if __package__:  # imported as benchmarks.ceiling (tests, other scripts)
    from . import common, protocol
else:  # python benchmarks/ceiling.py
    import common
    import protocol

C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)  # 100 never won a quick run and is the slowest to converge
BATCH_ROWS = 16
FEATURE_VERSION = "last-token-v1"  # part of every cache key: bump it when what a feature means changes
QUICK = {"draws": 1, "many": 200, "test": 100}
MANY_NOTE = {"agnews": "AG News has no train split here: its many-label probe is fitted on 2,000 rows of its test "
                       "split that are not among the 500 reported ones"}


def feature_dir() -> Path:
    from promptsearch.models.local import cache_root

    return cache_root() / "probe-features"


def probe_layers(model) -> tuple[int, int]:
    """The candidate layers as indices into ``hidden_states``: the middle block's output and the final one
    (index -1 in HF's list is after the final norm, which is what the LM head reads)."""
    n = model.model.config.num_hidden_layers
    return n // 2, n


def _key(model, prompt: str, text: str, layers) -> str:
    parts = (FEATURE_VERSION, model.fingerprint, repr(tuple(layers)), prompt, text)
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def features(model, prompt: str, texts: list[str], layers=None, cache: Path | None = None,
             batch_rows: int = BATCH_ROWS) -> np.ndarray:
    """Hidden states at the last token of each rendered text: an array (rows, len(layers), hidden), float32.
    Rows already in ``cache`` are read; the rest run in length-sorted, right-padded batches."""
    import torch

    from promptsearch.template import render

    layers = tuple(layers or probe_layers(model))
    cache = Path(cache or feature_dir())
    cache.mkdir(parents=True, exist_ok=True)
    paths = [cache / f"{_key(model, prompt, t, layers)}.npy" for t in texts]
    out: list = [np.load(p, allow_pickle=False) if p.exists() else None for p in paths]
    todo = [i for i, f in enumerate(out) if f is None]
    ids = {i: model.encode_context(render(prompt, texts[i])) for i in todo}
    todo.sort(key=lambda i: len(ids[i]))  # similar lengths together: little padding to run
    for start in range(0, len(todo), batch_rows):
        batch = todo[start:start + batch_rows]
        width = max(len(ids[i]) for i in batch)
        tokens = torch.full((len(batch), width), model.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, i in enumerate(batch):
            tokens[r, :len(ids[i])] = torch.tensor(ids[i])
            mask[r, :len(ids[i])] = 1
        with torch.no_grad():
            # right padding: real tokens come first and keep positions 0..len-1, and causal attention never lets
            # them see the padding after them, so each row's last real token is as if it ran alone
            hidden = model.model(input_ids=tokens.to(model.device), attention_mask=mask.to(model.device),
                                 output_hidden_states=True).hidden_states
        last = mask.sum(1) - 1
        rows = torch.arange(len(batch))
        stacked = torch.stack([hidden[k][rows, last.to(hidden[k].device)] for k in layers], 1)
        for r, i in enumerate(batch):
            out[i] = stacked[r].float().cpu().numpy()
            _save(paths[i], out[i])
    hidden_size = model.model.config.hidden_size
    return np.stack(out) if out else np.zeros((0, len(layers), hidden_size), dtype=np.float32)


def _save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.stem + ".tmp.npy")  # np.save adds .npy to names without it
    np.save(tmp, array, allow_pickle=False)
    tmp.replace(path)  # a kill mid-write never leaves a half file under the real key


def _pipeline(c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))


def fit_probe(x: np.ndarray, y: np.ndarray, layer_names=None, c_grid=C_GRID, seed: int = 0) -> dict:
    """Choose the layer and C by stratified k-fold CV on (x, y) only, then refit on all of it.
    ``x``: (rows, layers, hidden). Returns the fitted pipeline and what was chosen."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    y = np.asarray(y)
    k = min(5, int(np.unique(y, return_counts=True)[1].min()))
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    names = list(layer_names) if layer_names is not None else list(range(x.shape[1]))
    grid = {}
    for j in range(x.shape[1]):
        for c in c_grid:
            grid[(j, c)] = float(cross_val_score(_pipeline(c), x[:, j], y, cv=folds).mean())
    # ties (frequent on 64 rows): the later layer, then the stronger regularisation, for a stable choice
    j, c = max(grid, key=lambda jc: (round(grid[jc], 9), jc[0], -jc[1]))
    model = _pipeline(c).fit(x[:, j], y)
    by_layer = {str(names[i]): max(v for (ji, _), v in grid.items() if ji == i) for i in range(x.shape[1])}
    return {"pipeline": model, "column": j, "layer": names[j], "C": c, "cv_accuracy": grid[(j, c)], "folds": k,
            "cv_by_layer": by_layer}


def score(fitted: dict, x: np.ndarray, y) -> dict:
    from promptsearch.metrics import wilson

    y = np.asarray(y)
    correct = int((fitted["pipeline"].predict(x[:, fitted["column"]]) == y).sum())
    lo, hi = wilson(correct, len(y))
    return {"accuracy": correct / len(y), "n": len(y), "ci95": [lo, hi], "layer": fitted["layer"], "C": fitted["C"],
            "cv_accuracy": fitted["cv_accuracy"], "folds": fitted["folds"], "cv_by_layer": fitted["cv_by_layer"]}


def _xy(model, prompt, rows, layers, cache):
    return features(model, prompt, [ex.input for ex in rows], layers, cache), np.array([ex.label for ex in rows])


def probe_table(tasks=protocol.CLASSIFICATION, draws: int = protocol.DRAWS, model=None, many_rows: int | None = None,
                test_rows: int | None = None, cache: Path | None = None, data: Path | None = None,
                log=print) -> dict:
    """Per task: the many-label probe and, per draw, the few-label probe, each scored on the draw's test rows.
    ``many_rows``/``test_rows`` cut those splits (seeded) for a quick run; None keeps the protocol's."""
    model = model or load_model()
    layers = probe_layers(model)
    out = {}
    for name in tasks:
        t0 = time.time()
        first, extra = protocol.draw(name, 0, data)
        prompt = first.seed_prompt
        test = common.subsample(first.test, test_rows, protocol.TEST_SEED)  # the same rows every draw
        many = common.subsample(extra["many"], many_rows, 11, stratify=True)
        x_test, y_test = _xy(model, prompt, test, layers, cache)
        x_many, y_many = _xy(model, prompt, many, layers, cache)
        many_result = {**score(fit_probe(x_many, y_many, layers), x_test, y_test), "fit_rows": len(many)}
        log(f"{name}: many-label probe {many_result['accuracy']:.3f} (layer {many_result['layer']}, "
            f"C {many_result['C']:g}) [{time.time() - t0:.0f} s]")
        rows = []
        for d in range(draws):
            task, _ = protocol.draw(name, d, data)
            assert [ex.input for ex in task.test] == [ex.input for ex in first.test], "test rows differ by draw"
            few = tuple(task.train) + tuple(task.dev)
            x_few, y_few = _xy(model, prompt, few, layers, cache)
            rows.append({"draw": d, **score(fit_probe(x_few, y_few, layers), x_test, y_test), "fit_rows": len(few)})
            log(f"{name} draw {d}: few-label probe {rows[-1]['accuracy']:.3f} (layer {rows[-1]['layer']}, "
                f"C {rows[-1]['C']:g}, {len(few)} rows) [{time.time() - t0:.0f} s]")
        accs = [r["accuracy"] for r in rows]
        out[name] = {"prompt": prompt, "layers": {"middle": layers[0], "final": layers[1]},
                     "few": rows, "few_mean": statistics.fmean(accs),
                     "few_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                     "many": many_result, "note": MANY_NOTE.get(name, ""), "seconds": round(time.time() - t0, 1)}
    return out


def render_table(table: dict) -> str:
    lines = [f"{'task':<8} {'draw':>4}  {'few-probe':<22} {'many-probe':<22} layer/C (few)"]
    for name, t in table.items():
        m = t["many"]
        many = f"{m['accuracy']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"
        for r in t["few"]:
            few = f"{r['accuracy']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
            lines.append(f"{name:<8} {r['draw']:>4}  {few:<22} {many:<22} {r['layer']}/{r['C']:g}")
        lines.append(f"{name:<8} {'all':>4}  {t['few_mean']:.3f} ± {t['few_std']:.3f}        {many:<22} "
                     f"many: layer {m['layer']}, C {m['C']:g}, n={m['n']}")
    return "\n".join(lines)


def load_model(threads: int | None = None):
    """The embedded model in float32: features then do not depend on how rows were batched (in bfloat16 a row's
    hidden state moved by up to 1.5 between batchings), so cached rows from any run mix."""
    import torch

    from promptsearch.models.local import FrozenModel

    if threads:
        torch.set_num_threads(threads)
        # scikit-learn's BLAS and OpenMP pools too: on a shared machine their extra threads made each
        # logistic-regression fit 2-5x slower, not faster
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    return FrozenModel.load(dtype="float32")


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=common.REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default=",".join(protocol.CLASSIFICATION))
    p.add_argument("--draws", type=int, default=protocol.DRAWS)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="a smoke test: 1 draw, 200 many rows, 100 test rows")
    p.add_argument("--out", default=None)
    common.add_data_argument(p)
    args = p.parse_args(argv)
    draws, many, test = (QUICK["draws"], QUICK["many"], QUICK["test"]) if args.quick else (args.draws, None, None)
    start, commit = time.time(), git_commit()  # the code that runs, not what HEAD is when it ends
    model = load_model(args.threads)
    table = probe_table(args.tasks.split(","), draws, model, many, test, data=common.data_root(args.data))
    print(render_table(table))
    for t in table.values():
        if t["note"]:
            print(f"note: {t['note']}")
    today = datetime.date.today().isoformat()
    out = args.out or common.RESULTS / f"ceiling{'-quick' if args.quick else ''}-{today}.json"
    common.write_json(out, {
        "command": "python benchmarks/ceiling.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": today, "git_commit": commit, "machine": common.machine(args.threads),
        "model": model.fingerprint, "seconds": round(time.time() - start, 1),
        "what": "logistic regression (standardized features) on the last-token hidden state of the input rendered "
                "with the seed prompt; layer (middle or final, after the final norm) and C chosen by stratified "
                "k-fold CV on the fitting rows only; few = the draw's train+dev rows, many = protocol's many rows; "
                "a reference, not a bound",
        "tasks": table})
    print(f"wrote {out} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
