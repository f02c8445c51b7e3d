"""Commands for prompts you ship: export a run's prompt as an artifact, score or monitor an artifact
(``eval --artifact``), and keep artifacts in versions in the registry (``prompts ...``)."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import click

from ..errors import PromptSearchError
from ..format import CHOSE, fmt_score, members_lines, one_line, options_note, score_lines
from .common import emit, reporting, setup


def describe(art) -> list[str]:
    """An artifact in a few lines: prompt, scores with CI, the paired test against the seed, identities."""
    lines = ["prompt:"] + (members_lines(art.options or {}) or ["    " + line for line in art.prompt.split("\n")])
    if art.label_words and not (art.options or {}).get("members"):
        lines.append(f"    label words: {', '.join(art.label_words)}")
    if art.options:
        pool = f" (chosen from {len(art.demo_pool)} stored train rows)" if art.demo_pool else ""
        lines.append(f"    scored with: {options_note(art.options).strip()}{pool}")
    if art.soft:
        lines.append(f"    (soft prompt, {art.soft.get('note', 'not text')}; vectors: {art.soft['file']})")
    s, paired = art.scores, art.scores["paired_test"]
    # as `run` prints them: the held-out estimate where the run kept rows (export.held_out), the dev score that chose it
    lines += [*score_lines(s["dev"], s["test"], s.get("holdout"), CHOSE if s.get("holdout") else "", estimate=True),
              f"seed prompt: {one_line(art.seed_prompt)}", *score_lines(s["seed_dev"], s["seed_test"], s.get("seed_holdout")),
              f"improvement on test: {paired['difference']:+.3f} ({paired['test']} p={_p(paired['p_value'])}, {paired['detail']})",
              f"model: {art.model['name']} ({art.model['fingerprint'][:23]}…, {art.model['dtype']}{', chat' if art.chat else ''})",
              f"task: {art.task['name']} ({art.metric}), test n={art.task['splits']['test']['n']} {art.task['splits']['test']['sha256'][:23]}…",
              (f"found by: {art.provenance.get('strategy', '?')} in a run of {', '.join(art.provenance.get('strategies') or [])}"
               f" (seed {art.provenance.get('seed')}), rank {art.provenance.get('rank')}; promptsearch {art.promptsearch_version}, {art.created}")]
    return lines


def _p(p: float) -> str:
    from ..stats import format_p

    return format_p(p)


@click.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--rank", type=click.IntRange(1), default=None, help="Which prompt of the leaderboard [default: the run's best].")
@click.option("--output", "-o", "out", required=True, type=click.Path(dir_okay=False), help="Artifact file to write (JSON).")
@click.option("--model", default=None, help="A served run: its server URL again, where the prompt must be scored on test "
              "(a URL read from the run's files is never connected to).")
@reporting
def export(run_dir, rank, out, model, as_json, quiet):
    """Write a run's best (or N-th) prompt as one self-contained artifact file."""
    from ..export import export_run

    setup(quiet)
    art = export_run(run_dir, out, rank=rank, named=[model])
    if quiet and not as_json:  # --quiet: the file is the result; nothing to read on the terminal (#30)
        return
    emit(as_json, {"file": str(out), "artifact": art.to_json()} if as_json else {},
         f"wrote {out}" + (f" and {art.soft['file']}" if art.soft else "") + "\n" + "\n".join(describe(art)))


def eval_artifact(path, task, split, check, allow_other_model, model, device, batch_size, as_json, quiet,
                  served: dict | None = None) -> None:
    """``eval --artifact``: score the artifact as recorded; with ``check``, exit 1 when it did not hold."""
    from .. import artifact, monitor
    from ..models import is_served, load_model
    from ..scoring import Scorer
    from ..task import load_task

    art = artifact.read(path)
    spec = model if model is not None else art.model["spec"]
    if model is None and is_served(spec):
        from ..runner import require_named

        require_named(spec, [], "model")  # never connect (with the API key) to a URL read from the artifact
    loaded = load_model(spec, device=device, dtype=art.model["dtype"], **(served or {})) if is_served(spec) else None
    fingerprint = artifact.model_fingerprint(spec, loaded=loaded)
    monitor.check_model(art, fingerprint, allow_other_model)
    t = load_task(task or art.task["source"], seed=art.task["seed"])
    if ":" in art.metric:
        from ..custom_metric import renamed

        t = renamed(t, art.metric)
    monitor.check_task(art, t)
    examples = t.split(split)
    note = None
    if loaded is None:  # in process: the recorded dtype where this host computes it, else one line saying what instead
        dtype, note = artifact_dtype(art.model["dtype"], device)
        if note and not as_json:
            click.echo(f"note: {note}", err=True)
        loaded = load_model(spec, device=device, dtype=dtype)
    if art.chat:
        from ..models import require_chat_template

        require_chat_template(loaded)
    scorer = Scorer(loaded, batch_size=batch_size, chat=art.chat)
    if ":" in art.metric:  # found under the user's metric (run --metric): scored by it again
        from ..custom_metric import apply

        t, scorer = apply(art.metric, t, scorer)
    if art.soft:
        scorer.register_soft_prompt(art.candidate().soft, artifact.soft_vectors(art, path))
    score, rows = monitor.evaluate(art, t, scorer, examples, same_weights=fingerprint == art.model["fingerprint"])
    out = {**score.to_json(), "task": t.name, "split": split, "artifact": str(path), "prompt": art.prompt,
           "recorded_test": art.scores["test"], "dtype": getattr(loaded, "dtype_name", None), "dtype_note": note}
    text = f"{t.name} {split}: {score.metric} {score}   (recorded test: {fmt_score(art.scores['test'])})"
    if check:
        verdict = monitor.decide(art, examples, score, rows)
        out["check"] = {"ok": verdict.ok, "same_data": verdict.same_data, "message": verdict.message,
                        "test": verdict.test.to_json() if verdict.test else None}
        text = verdict.message
        emit(as_json, out, text)
        if not verdict.ok:
            sys.exit(1)
        return
    emit(as_json, out, text)


def artifact_dtype(recorded: str, device: str) -> tuple[str, str | None]:
    """(dtype to load, note or None): hardware.host_dtype on the device the model will load to."""
    from ..models.hardware import host_dtype
    from ..models.local import pick_device

    return host_dtype(recorded, pick_device(device))


@click.group("prompts")
def prompts():
    """The prompt registry: named prompts in versions (SQLite at $PROMPTSEARCH_REGISTRY or
    ~/.local/share/promptsearch/registry.db)."""


@prompts.command("add")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="The prompt's name; each add of a changed artifact makes its next version.")
@reporting
def add(file, name, as_json, quiet):
    """Store an artifact file as the next version of NAME (an artifact identical to the latest version: nothing new)."""
    from .. import artifact
    from ..files import decode, read_bytes
    from ..registry import Registry

    raw = decode(read_bytes(file), str(file))  # a BOM dropped: the registry holds the text
    art = artifact.parse(raw.encode("utf-8"), str(file))
    soft = None
    if art.soft:
        vectors = artifact.soft_path(art, file)
        if not vectors.is_file():
            raise PromptSearchError(f"{file}: its soft prompt's vectors ({art.soft['file']}) are not beside it")
        soft = read_bytes(vectors)
    reg = Registry()
    v = reg.add(name, raw, soft)
    text = (f"added {v.ref}: test {fmt_score(art.scores['test'])}  ({reg.path})" if v.new else
            f"unchanged: {file} is identical to {v.ref}; no new version made  ({reg.path})")
    emit(as_json, {"ref": v.ref, "name": v.name, "version": v.version, "sha256": v.sha256, "registry": str(reg.path),
                   "new_version": v.new}, text)


@prompts.command("list")
@reporting
def list_(as_json, quiet):
    """Every prompt in the registry, with its latest version."""
    from ..registry import Registry

    latest: dict = {}
    for v in Registry().versions():  # oldest first: the last seen of a name is its latest
        latest[v.name] = v
    rows = [{"name": v.name, "latest": v.version, "versions": v.version, "ref": v.ref, "metric": v.artifact.metric, "test": v.artifact.scores["test"],
             "task": v.artifact.task["name"], "model": v.artifact.model["name"], "added": v.added} for v in latest.values()]
    text = "\n".join(f"{r['ref']:<24} {r['versions']:>3} versions  {r['task']:<12} test {r['metric']} {fmt_score(r['test']):<32} {r['added']}" for r in rows)
    emit(as_json, {"prompts": rows}, text or "(the registry is empty)")


@prompts.command("show")
@click.argument("ref")
@reporting
def show(ref, as_json, quiet):
    """One version (NAME@vN; NAME alone: the latest) with its scores and provenance."""
    from ..registry import Registry

    reg = Registry()
    v = reg.get(ref)
    others = [f"v{o.version}" for o in reg.versions(v.name)]
    emit(as_json, {"ref": v.ref, "versions": others, "added": v.added, "sha256": v.sha256, "artifact": v.artifact.to_json()},
         f"{v.ref}  (versions: {', '.join(others)}; added {v.added})\n" + "\n".join(describe(v.artifact)))


@prompts.command("diff")
@click.argument("ref_a")
@click.argument("ref_b")
@reporting
def diff(ref_a, ref_b, as_json, quiet):
    """What changed between two versions: prompt text, label words, scores, and a paired test when
    both were scored on the same test examples."""
    from ..registry import Registry
    from ..stats import paired_test

    reg = Registry()
    a, b = reg.get(ref_a), reg.get(ref_b)
    A, B = a.artifact, b.artifact
    text_diff = list(difflib.unified_diff(A.prompt.split("\n"), B.prompt.split("\n"), a.ref, b.ref, lineterm=""))
    out = {"a": a.ref, "b": b.ref, "prompt_diff": text_diff, "label_words": [A.label_words and list(A.label_words),
                                                                             B.label_words and list(B.label_words)],
           "test": [A.scores["test"], B.scores["test"]], "same_model": A.model["fingerprint"] == B.model["fingerprint"]}
    lines = list(text_diff) or ["(same prompt text)"]
    options = [A.options or {}, B.options or {}]
    out["options"] = options
    if options[0] != options[1]:  # an ensemble's prompt is its best member's: the members tell them apart
        for v, o in zip((a, b), options):
            plain = {k: x for k, x in o.items() if k not in ("members", "weights")}
            lines += [f"scoring options of {v.ref}:"] + members_lines(o) + ([f"    {plain}"] if plain or not o else [])
    if A.label_words != B.label_words:
        lines.append(f"label words: {', '.join(A.label_words or ())} -> {', '.join(B.label_words or ())}")
    lines += [f"test {a.ref}: {fmt_score(A.scores['test'])}", f"test {b.ref}: {fmt_score(B.scores['test'])}"]
    aligned = align(A.test_outcomes, B.test_outcomes) if A.metric == B.metric else None
    if aligned:
        result = paired_test(A.metric, *aligned)
        out["paired_test"] = result.to_json()
        lines.append(f"{b.ref} - {a.ref} on the same {len(aligned[0]['scores'])} test examples: {result}")
    else:
        out["paired_test"] = None
        lines.append(f"difference {B.scores['test']['score'] - A.scores['test']['score']:+.3f}; no paired test: "
                     "the two were not scored on the same test examples" + ("" if A.metric == B.metric else " or metric"))
    if not out["same_model"]:
        lines.append(f"models differ: {A.model['name']} vs {B.model['name']}")
    emit(as_json, out, "\n".join(lines))


def align(a: dict, b: dict) -> tuple[dict, dict] | None:
    """Both artifacts' per-example outcomes in one example order, or None when the examples differ."""
    if sorted(a["keys"]) != sorted(b["keys"]):
        return None
    order_a = sorted(range(len(a["keys"])), key=lambda i: a["keys"][i])
    order_b = sorted(range(len(b["keys"])), key=lambda i: b["keys"][i])
    pick = lambda rows, order: {k: [rows[k][i] for i in order] for k in ("scores", "golds", "preds")}
    return pick(a, order_a), pick(b, order_b)


@prompts.command("export")
@click.argument("ref")
@click.option("--output", "-o", "out", required=True, type=click.Path(dir_okay=False), help="Artifact file to write.")
@reporting
def export_version(ref, out, as_json, quiet):
    """Write a stored version back to an artifact file, byte for byte as it was added."""
    from .. import artifact
    from ..registry import Registry

    v = Registry().get(ref)
    if v.soft is not None:
        artifact.atomic_write(artifact.soft_path(v.artifact, out), v.soft)
    artifact.atomic_write(Path(out), v.text.encode("utf-8"))
    emit(as_json, {"ref": v.ref, "file": str(out), "sha256": v.sha256}, f"wrote {v.ref} to {out}")
