"""Prompt artifacts: one self-contained, schema-versioned JSON file per prompt you can ship.

It says what was found (the prompt exactly as scored, label words, chat mode), on which model (name
and a content fingerprint of its weights) and data (a content hash of every split), how good it is
(dev and test scores with n and 95% CI, per-example test outcomes, the seed prompt's scores and a
paired test against it) and how it was found (strategies, options, budget, seed, lineage). A soft
prompt's vectors travel beside it in a safetensors file whose hash the artifact records.

Reading validates everything and explains a bad file in one line; writing is atomic.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import PromptSearchError
from .limits import MAX_CLASSES, MAX_LABEL_CHARS

SCHEMA = "promptsearch.prompt-artifact"
SCHEMA_VERSION = 1
FULL_HASH_LIMIT = 512 * 2**20  # bigger weight files are fingerprinted from samples, not read whole
SAMPLE_BYTES = 16 * 2**20
SOFT_NOTE = "not text: trained vectors prepended before the prompt; the text is their nearest-token reading"


@dataclass(frozen=True)
class Artifact:
    prompt: str
    label_words: tuple[str, ...] | None  # the words scored (classification), None for generation
    chat: bool
    soft: dict | None  # {"file", "sha256", "note"} for a soft prompt
    model: dict  # {"spec", "name", "dtype", "fingerprint"}
    task: dict  # {"name", "kind", "metric", "source", "seed", "splits": {split: {"n", "sha256"}}}
    scores: dict  # {"dev", "test", "seed_dev", "seed_test": Score json, "paired_test": TestResult json; optional
    #               "holdout", "seed_holdout": the held-out estimate where the run kept rows}
    test_outcomes: dict  # {"keys", "scores", "golds", "preds"} aligned by test example
    seed_prompt: str
    provenance: dict  # run dir, candidate id, rank, strategies, options, budget, seed, lineage
    created: str
    promptsearch_version: str
    # Scoring options of the candidate (calibrate, demos, ensemble members and weights, verbalizer), and for a demos rule the train
    # rows it chooses from, or for batch calibration the rows whose inputs it averages (demos.pool: at most
    # demos.POOL_SIZE rows), so eval --artifact needs no train split. Both are left out of the file when unset, as
    # artifacts written before them have neither.
    options: dict = field(default_factory=dict)
    demo_pool: list | None = None
    # How the answer is read (prompt.scoring_rule): rendering, answer spacing, label-word or generation rule with
    # its stop rule and max_new_tokens, and whether the text alone reproduces the score (``text_alone``, ``lacks``).
    scoring: dict = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return self.task["metric"]

    def to_json(self) -> dict:
        out = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **asdict(self),
               "label_words": list(self.label_words) if self.label_words else None}
        return {k: v for k, v in out.items() if k not in OPTIONAL or v}

    @classmethod
    def from_json(cls, data, where: str = "artifact") -> Artifact:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise PromptSearchError(f"{where}: not a promptsearch prompt artifact (no \"schema\": \"{SCHEMA}\")")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise PromptSearchError(f"{where}: schema version {version!r} is not supported; this promptsearch reads version {SCHEMA_VERSION}")
        _validate(data, where)
        words = data["label_words"]
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k != "label_words" and k in data},
                   label_words=tuple(words) if words else None)

    def candidate(self):
        """The candidate as it was scored: prompt, label words, soft prompt and scoring options."""
        from .candidate import Candidate

        return Candidate.from_json({"prompt": self.prompt, "label_words": self.label_words,
                                    "soft": self.soft and f"artifact-{self.soft['sha256'][:12]}", **self.options})

    def task_for_scoring(self, task):
        """The task as the artifact's candidate is scored on it: with a demos rule, choosing from the stored pool."""
        from .scoring import demos

        return demos.with_pool(task, self.demo_pool) if self.demo_pool else task


# ---- validation: every field the code reads, with its type -------------------------------------
BIAS_NOTE = ("the label bias each calibrated member's scores were corrected by in the search (by a digest of the "
             "model, dtype, chat mode, prompt, label words and pool); a prediction on that model uses it, on any "
             "other reads it again from the pool's inputs")
OPTIONAL = ("options", "demo_pool", "scoring")  # newer fields, absent from older artifacts
NUMBER, TEXT, OPT_TEXT = (int, float), (str,), (str, type(None))
SCORE = {"metric": TEXT, "score": NUMBER, "n": (int,), "ci_low": NUMBER, "ci_high": NUMBER}
FIELDS = {
    "prompt": TEXT, "chat": (bool,), "seed_prompt": TEXT, "created": TEXT, "promptsearch_version": TEXT,
    "label_words": (list, type(None)), "soft": (dict, type(None)), "provenance": (dict,),
    "model": {"spec": OPT_TEXT, "name": TEXT, "dtype": TEXT, "fingerprint": TEXT},
    "task": {"name": TEXT, "kind": TEXT, "metric": TEXT, "source": TEXT, "seed": (int,), "splits": (dict,)},
    "scores": {"dev": SCORE, "test": SCORE, "seed_dev": SCORE, "seed_test": SCORE,
               "paired_test": {"test": TEXT, "difference": NUMBER, "p_value": NUMBER, "detail": TEXT}},
    "test_outcomes": {"keys": (list,), "scores": (list,), "golds": (list,), "preds": (list,)},
}


def _check_fields(data: dict, spec: dict, where: str, path: str = "") -> None:
    for name, want in spec.items():
        field = f"{path}{name}"
        if name not in data:
            raise PromptSearchError(f"{where}: missing field {field!r}")
        value = data[name]
        if isinstance(want, dict):
            if not isinstance(value, dict):
                raise PromptSearchError(f"{where}: field {field!r} must be an object")
            _check_fields(value, want, where, field + ".")
        elif not isinstance(value, want) or (isinstance(value, bool) and bool not in want):
            kinds = "/".join("null" if t is type(None) else t.__name__ for t in want)
            raise PromptSearchError(f"{where}: field {field!r} must be {kinds}, not {type(value).__name__}")


def _validate(data: dict, where: str) -> None:
    _check_fields(data, FIELDS, where)
    for name, words in (("label_words", data["label_words"]), ("task.label_words", data["task"].get("label_words"))):
        if words is not None and not (isinstance(words, list) and all(isinstance(w, str) and w for w in words)):
            raise PromptSearchError(f"{where}: field {name!r} must be a list of non-empty strings")
        if words and (len(words) > MAX_CLASSES or max(map(len, words)) > MAX_LABEL_CHARS):  # as a task's (limits.py)
            raise PromptSearchError(f"{where}: field {name!r}: at most {MAX_CLASSES} label words of at most "
                                    f"{MAX_LABEL_CHARS} characters each")
    for split, info in data["task"]["splits"].items():
        _check_fields(info if isinstance(info, dict) else {}, {"n": (int,), "sha256": TEXT}, where, f"task.splits.{split}.")
    if "test" not in data["task"]["splits"]:
        raise PromptSearchError(f"{where}: missing field 'task.splits.test'")
    for name in ("holdout", "seed_holdout"):  # optional: the held-out estimate, where the run kept rows (export.py)
        if name in data["scores"]:
            _check_fields(data["scores"][name] if isinstance(data["scores"][name], dict) else {}, SCORE, where, f"scores.{name}.")
    outcomes = data["test_outcomes"]
    n = len(outcomes["keys"])
    if any(len(outcomes[k]) != n for k in ("scores", "golds", "preds")) or n != data["scores"]["test"]["n"]:
        raise PromptSearchError(f"{where}: 'test_outcomes' lists must all hold scores.test.n = {data['scores']['test']['n']} entries")
    kinds = {"keys": (str,), "scores": (int, float), "golds": (int, type(None)), "preds": (int,)}
    for name, want in kinds.items():
        if not all(isinstance(x, want) and not isinstance(x, bool) for x in outcomes[name]):
            raise PromptSearchError(f"{where}: 'test_outcomes.{name}' must hold only {'/'.join(t.__name__ for t in want)}")
    if not isinstance(data.get("options", {}), dict) or not isinstance(data.get("demo_pool") or [], list):
        raise PromptSearchError(f"{where}: fields 'options' and 'demo_pool' must be an object and a list")
    if not set(data.get("options", {})) <= {"calibrate", "demos", "members", "weights", "verbalizer"}:
        raise PromptSearchError(f"{where}: field 'options' holds only calibrate, demos, members, weights and verbalizer")
    options = data.get("options", {})
    members = [m for m in options.get("members") or [] if isinstance(m, dict)] if isinstance(options.get("members"), list) else []
    reads_pool = any(o.get("demos") or o.get("calibrate") == "batch" for o in [options] + members)
    if reads_pool and not all(isinstance(r, dict) and isinstance(r.get("input"), str)
                              and isinstance(r.get("output"), str) for r in data.get("demo_pool") or [None]):
        raise PromptSearchError(f"{where}: a demos rule or batch calibration needs 'demo_pool' rows with input and output text")
    if not isinstance(data.get("scoring", {}), dict):
        raise PromptSearchError(f"{where}: field 'scoring' must be an object")
    limit = (data.get("scoring", {}).get("generation") or {}).get("max_new_tokens")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise PromptSearchError(f"{where}: field 'scoring.generation.max_new_tokens' must be a positive integer")
    _validate_bias(data.get("scoring", {}).get("calibration_bias"), where)
    if data["soft"] is not None:
        _check_fields(data["soft"], {"file": TEXT, "sha256": TEXT}, where, "soft.")
        from .files import check_file_name

        check_file_name(data["soft"]["file"], f"{where}: field 'soft.file'")
    _validate_options(data.get("options"), where)
    from .template import validate

    try:
        validate(data["prompt"])
    except PromptSearchError as e:
        raise PromptSearchError(f"{where}: field 'prompt': {e}") from None


def is_bias(value, n: int) -> bool:
    """A bias row: ``n`` finite numbers (a label's log-probability or log-likelihood)."""
    return (isinstance(value, list) and len(value) == n
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in value))


def _validate_bias(record, where: str) -> None:
    """``scoring.calibration_bias`` (export.stored_biases): absent, or the model it was read on and its rows."""
    if record is None:
        return
    if not isinstance(record, dict) or not isinstance(record.get("model"), str) or not isinstance(record.get("biases"), dict):
        raise PromptSearchError(f"{where}: field 'scoring.calibration_bias' must be an object with a 'model' string and "
                                "'biases' (an object of bias rows)")
    for bias in record["biases"].values():
        if not (isinstance(bias, list) and bias and is_bias(bias, len(bias))):
            raise PromptSearchError(f"{where}: field 'scoring.calibration_bias.biases' must hold lists of finite numbers")


def _validate_options(options, where: str) -> None:
    """Scoring options, when present: an ensemble's members are candidate records with a valid prompt,
    one non-negative weight each."""
    if options is None:
        return
    if not isinstance(options, dict):
        raise PromptSearchError(f"{where}: field 'options' must be an object")
    members = options.get("members", [])
    if not isinstance(members, list) or any(not isinstance(m, dict) or not isinstance(m.get("prompt"), str) for m in members):
        raise PromptSearchError(f"{where}: field 'options.members' must list candidate records with a prompt")
    weights = options.get("weights", [])
    if not isinstance(weights, list) or len(weights) != len(members) or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in weights):
        raise PromptSearchError(f"{where}: field 'options.weights' must hold one non-negative number per member")
    from .candidate import read_verbalizer

    for i, record in enumerate([options] + members):
        if "verbalizer" in record:
            try:
                read_verbalizer(record["verbalizer"])
            except ValueError:
                at = "options" if i == 0 else f"options.members[{i - 1}]"
                raise PromptSearchError(f"{where}: field '{at}.verbalizer' must list one list of words per class") from None
    from .template import validate

    for i, m in enumerate(members):
        try:
            validate(m["prompt"])
        except PromptSearchError as e:
            raise PromptSearchError(f"{where}: field 'options.members[{i}].prompt': {e}") from None
        if m.get("soft"):
            raise PromptSearchError(f"{where}: ensemble member {i} is a soft prompt; artifacts carry no member vectors")


# ---- files ---------------------------------------------------------------------------------------
def parse(raw: bytes, where: str) -> Artifact:
    """An artifact from a file's bytes; a bad file is explained in one line."""
    from .files import decode, parse_json

    return Artifact.from_json(parse_json(decode(raw, where), where), where)


def read(path: str | Path) -> Artifact:
    path = Path(path)
    if path.is_dir():  # a run folder is the natural first try after a run: say the one step between
        hint = (f"it is a run folder: export its winner first (promptsearch export {path} -o prompt.json), then use "
                "prompt.json" if (path / "summary.json").is_file() else "it is a folder, not a file")
        raise PromptSearchError(f"{path}: {hint}")
    from .files import read_bytes

    return parse(read_bytes(path), str(path))


def dumps(artifact: Artifact) -> str:
    return json.dumps(artifact.to_json(), indent=1, ensure_ascii=False) + "\n"


def write(artifact: Artifact, path: str | Path, soft_bytes: bytes | None = None) -> Path:
    """Write the artifact (and a soft prompt's vectors beside it) atomically: a reader sees the old
    file or the new one, never half of one. Returns the artifact's path."""
    path = Path(path)
    if artifact.soft is not None:
        if soft_bytes is None:
            raise PromptSearchError("a soft-prompt artifact needs its vectors to be written beside it")
        if hashlib.sha256(soft_bytes).hexdigest() != artifact.soft["sha256"]:
            raise PromptSearchError("the soft prompt's vectors do not match the hash the artifact records")
        atomic_write(soft_path(artifact, path), soft_bytes)
    atomic_write(path, dumps(artifact).encode("utf-8"))
    return path


def soft_vectors(artifact: Artifact, artifact_path: str | Path):
    """The soft prompt's vectors (n_virtual x hidden tensor), read from beside the artifact and checked
    against the recorded hash."""
    from safetensors.torch import load

    from .files import read_bytes

    path = soft_path(artifact, artifact_path)
    if not path.exists():
        raise PromptSearchError(f"{path}: the soft prompt's vectors are missing (they travel beside the artifact)")
    raw = read_bytes(path)
    if hashlib.sha256(raw).hexdigest() != artifact.soft["sha256"]:
        raise PromptSearchError(f"{path}: the soft prompt's vectors differ from the ones the artifact was scored with")
    tensors = load(raw)
    if "prompt_embeddings" not in tensors:
        raise PromptSearchError(f"{path}: holds no prompt_embeddings")
    return tensors["prompt_embeddings"]


def soft_path(artifact: Artifact, artifact_path: str | Path) -> Path:
    """Where a soft prompt's vectors live: beside the artifact, under the plain file name it records."""
    from .files import confined

    return confined(Path(artifact_path).parent, artifact.soft["file"], f"{artifact_path}: field 'soft.file'")


def atomic_write(path: Path, data: bytes) -> None:
    from .files import write_replacing

    try:
        write_replacing(path, data)
    except OSError as e:
        raise PromptSearchError(f"{path}: cannot write ({e.strerror or e})") from None


# ---- identities ----------------------------------------------------------------------------------
def split_hash(examples) -> str:
    """Content hash of a split, independent of row order (a shuffled copy is the same data)."""
    return "sha256:" + hashlib.sha256("\n".join(sorted(ex.key for ex in examples)).encode()).hexdigest()


def task_identity(task, seed: int) -> dict:
    """Name, metric and split hashes; ``source`` is a bundled task's name (so the artifact works from
    any install) or the task directory."""
    from .task import BUNDLED_DIR

    bundled = Path(task.source).resolve().parent == BUNDLED_DIR.resolve()
    source = Path(task.source).name if bundled else task.source
    # the task's own label words: an ensemble's members without words of their own are scored with them, while the
    # artifact's top-level label_words are its first member's (ensemble.make)
    words = {"label_words": list(task.label_words)} if task.label_words else {}
    return {"name": task.name, "kind": task.kind, "metric": task.metric, "source": source, "seed": seed, **words,
            "splits": {s: {"n": len(task.split(s)), "sha256": split_hash(task.split(s))} for s in ("train", "dev", "test")}}


def model_fingerprint(spec: str | None, summary: dict | None = None, loaded=None) -> str:
    """What identifies the scored model: a served model's own fingerprint (engine, model id, how it scores:
    from the run's summary, or from ``loaded``), else the content of the local weight files."""
    from .models import is_served

    if not is_served(spec):
        return weights_fingerprint(spec)
    found = loaded.fingerprint if loaded is not None else (summary or {}).get("model_fingerprint")
    if not found:
        raise PromptSearchError(f"model {spec!r}: the run recorded no fingerprint of its server")
    return found


def weights_fingerprint(spec: str | None) -> str:
    """Content fingerprint of a local model's weight files (the GGUF, or a directory's safetensors/bin):
    sha256 of the whole file, or of its size and three 16 MiB samples when it is over 512 MiB."""
    from .models.local import resolve

    directory, gguf = resolve(spec)
    files = [directory / gguf] if gguf else sorted(
        p for p in directory.iterdir() if p.suffix in (".safetensors", ".bin", ".gguf", ".pt", ".pth"))
    if not files:
        raise PromptSearchError(f"model {spec!r}: no weight files to fingerprint")
    # the same files unchanged hash the same: `predict` checks the weights, then its Prompt checks them again
    seen = tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if seen not in _FINGERPRINTS:
        _FINGERPRINTS[seen] = _hash_weights(files)
    return _FINGERPRINTS[seen]


_FINGERPRINTS: dict[tuple, str] = {}  # (path, size, mtime) of each weight file -> its fingerprint, in this process


def _hash_weights(files) -> str:
    total, sampled = hashlib.sha256(), False
    for f in files:
        size = f.stat().st_size
        total.update(f"{size}:".encode())
        with open(f, "rb") as fh:
            if size <= FULL_HASH_LIMIT:
                total.update(hashlib.file_digest(fh, "sha256").digest())
                continue
            sampled = True
            for offset in (0, size // 2, size - SAMPLE_BYTES):
                fh.seek(offset)
                total.update(fh.read(SAMPLE_BYTES))
    return ("sha256-sampled:" if sampled else "sha256:") + total.hexdigest()


def same_score(a: float, b: float) -> bool:
    """Whether a rescoring reproduced a recorded score (float noise aside)."""
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
