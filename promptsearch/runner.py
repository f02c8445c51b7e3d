"""Build a search from a plain config dict, run it into a run store, and read runs back.

The config is what ``config.json`` holds, so ``--resume`` rebuilds exactly the same search.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from . import defaults
from . import strategy as strategy_registry
from .candidate import Candidate
from .errors import PromptSearchError, RunInterrupted
from .files import check_fields
from .models.hardware import DEFAULT_DTYPE
from .models.http_pool import ServerError
from .plain import is_plain, text_alone_score
from .search import SCHEDULES, Budget, Racing, Search
from .store import RunStore
from .task import label_gaps

log = logging.getLogger(__name__)

# `promptsearch run` with no strategy named: these strategies under the bandit schedule (bandit.py: they take
# turns, the one whose prompt leads going again). A run that names its strategies runs them as stages in order,
# sharing the budget evenly (or --schedule adaptive / bandit).
# ape joins only when a separate proposer model writes the instructions: SmolLM2-135M's own induced
# instructions are unrelated to the task, and on 48 dev rows some still win by chance (DESIGN.md).
# A single-task default ends with the final strategy `ensemble`: it combines the best prompts the others found,
# when the budget holds its reserve (three members on all of dev in at most a third of max_evals; search.py).
DEFAULT_STRATEGIES = ["templates", "clarify"]
DEFAULT_WITH_PROPOSER = ["templates", "ape", "clarify"]
DEFAULT_FINAL = ["ensemble"]
DEFAULT_SCHEDULE = "bandit"


def default_strategies(proposer, final: bool = True) -> list[str]:
    """What `promptsearch run` runs when no strategy is named; ``final=False`` for a universal prompt (an
    ensemble's members would each have to suit every task)."""
    return list(DEFAULT_WITH_PROPOSER if proposer else DEFAULT_STRATEGIES) + (DEFAULT_FINAL if final else [])
# The one set of defaults: the CLI (`promptsearch run`) and the Python API (api.py) both build their config with
# make_config. ``strategies``/``schedule`` left None are resolved there: the default chain under the bandit when no
# strategy is named, stages in order (``even``) when some are.
DEFAULTS = {
    "task": None, "model": None, "device": "auto", "dtype": DEFAULT_DTYPE, "chat": False, "batch_size": 16,
    "strategies": None, "schedule": None, "options": {}, "seed": 0, "seed_prompt": None,
    "top_k": defaults.FINAL_CHECK, "budget": dict(defaults.BUDGET),  # shown by `run --help` (defaults.py)
    "racing": {"min_examples": 16, "eta": 3}, "proposals_per_round": 8,
    "executor": {"kind": "local"},  # or {"kind": "ray", "workers": 2, "threads": 1, "address": None, "chunk": 32}
    "feedback": None,  # a refine run: {"parent": RUN, "weight": w}; ratings and edits in refine.json
    # A served model (--model http://...): which one, how hard to push it, how it scores. Never an API key.
    "served": {"model_name": None, "concurrency": 4, "scoring": "auto", "timeout": 120.0},
    "proposer": None,  # the model that writes text for the search (default: the scored model)
    # "auto" is resolved when a run starts (resolve_dtype): config.json keeps the dtype used, and "auto" here
    "dtype_asked": None,
    "multitask": None,  # a universal prompt for several tasks: {"tasks", "objective", "extend", "compare"} (multitask.py)
    "data": None,  # {split: content hash} of the data the run started on; a resume on changed data is refused
    "plain": False,  # only prompts whose text alone is the whole prompt: no calibration, ensemble or demos rule (plain.py)
    "metric": None,  # "package.module:function", a per-example metric in [0, 1] replacing the task's (custom_metric.py)
    # which labelled rows choose and which estimate the winner (selection.py): auto | holdout | labelled | dev
    "selection": "auto",
    # the winner's label scores calibrated after the final check (classification): batch | contextual | domain | None
    # (calibration.py; "none" turns it off). Not with --plain or a multi-task run.
    "final_calibration": "batch",
    # with it, the final check's top prompts combined into one uniform ensemble, each calibrated (1: the winner alone;
    # docs/decisions.md, 2026-12-03 evening)
    "final_ensemble": 3,
}
# Settings a config.json written before they existed reads as: older runs ran named stages evenly, in float32
# (the default before --dtype auto).
LEGACY = {"schedule": "even", "dtype": "float32", "selection": "dev", "final_calibration": None, "final_ensemble": 1}


def make_config(**given) -> dict:
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    for key, value in given.items():
        if key not in DEFAULTS:
            raise PromptSearchError(f"unknown setting {key!r}")
        if value is not None:
            config[key] = {**config[key], **value} if isinstance(config[key], dict) and key != "options" else value
    check_shapes(config)
    named = bool(config["strategies"])
    if not named:  # a universal prompt's default has no ensemble; a plain search has none either (plain.py)
        config["strategies"] = default_strategies(config["proposer"], final=not (config["multitask"] or config["plain"]))
    if config["schedule"] is None:
        config["schedule"] = "even" if named else DEFAULT_SCHEDULE
    if config["schedule"] not in SCHEDULES:
        raise PromptSearchError(f"schedule {config['schedule']!r:.40}: use one of {', '.join(SCHEDULES)}")
    from .models import is_served
    from .models.urls import split_urls

    for key, flag in (("model", "--model"), ("proposer", "--proposer")):
        if is_served(config[key]):
            split_urls(config[key], flag)  # no credentials in a URL that config.json would keep
    if (config["served"] or {}).get("model_name") and not is_served(config["model"]):  # as eval and load_model say
        raise PromptSearchError("--model-name picks a model on a server; it needs --model http://HOST:PORT/v1")
    from .files import check_text
    from .limits import check_config

    check_config(config, "")
    check_text(config, "the run's settings")
    from .selection import MODES

    if config["selection"] not in MODES:
        raise PromptSearchError(f"selection {config['selection']!r}: use one of {', '.join(MODES)}")
    check_final_ensemble(config["final_ensemble"], "final_ensemble")
    check_final_calibration(config)
    if config["task"] and Path(config["task"]).is_dir():
        config["task"] = str(Path(config["task"]).resolve())
    return config


# The type of each setting, checked wherever a config comes from: the API's keywords and the CLI's flags
# (make_config, before any is used) and a run's config.json (read_config), so the two readings cannot drift apart.
# NULLABLE: the settings a run's config.json may leave null (a default, or a setting the run did not use); in
# make_config None is the default of every setting, resolved there.
KINDS = {
    "task": "text", "model": "text", "proposer": "text", "seed_prompt": "text", "metric": "text",
    "device": "text", "dtype": "text", "dtype_asked": "text", "schedule": "text", "selection": "text",
    "chat": "switch", "plain": "switch",
    "strategies": "names", "options": "object",  # and each strategy's options an object (their values: strategy.make)
    "budget": "object", "racing": "object", "executor": "object", "served": "object",
    "seed": "integer", "top_k": "integer", "batch_size": "integer", "proposals_per_round": "integer",
}
NULLABLE = {"task", "model", "proposer", "seed_prompt", "metric", "device", "dtype", "dtype_asked", "served"}
MUST_BE = {"text": "a string", "switch": "true or false", "names": "a JSON list of strategy names",
           "object": "a JSON object", "integer": "an integer"}


def is_kind(value, kind: str) -> bool:
    if kind == "text":
        return isinstance(value, str)
    if kind == "switch":
        return isinstance(value, bool)
    if kind == "names":
        return isinstance(value, list) and all(isinstance(n, str) and n for n in value)
    if kind == "object":
        return isinstance(value, dict)
    return isinstance(value, int) and not isinstance(value, bool)


def check_types(config: dict, field=lambda key, value: f"{key} {value!r:.40}:", nullable=tuple(KINDS)) -> None:
    """Each setting of ``config`` of the kind KINDS names, or None where ``nullable``; ``field`` words where the bad
    one sits."""
    for key, kind in KINDS.items():
        value = config.get(key)
        if key in config and not (value is None and key in nullable) and not is_kind(value, kind):
            raise PromptSearchError(f"{field(key, value)} must be {MUST_BE[kind]}")
    for name, options in (config.get("options") or {}).items():
        if not (options is None or isinstance(options, dict)):
            raise PromptSearchError(f"{field('options', config['options'])} must give each strategy an object of "
                                    f"OPTION: VALUE; the options of strategy {name!r} are {options!r:.40}")


def check_shapes(config: dict) -> None:
    """What each setting must be before any is used (the API passes what it is given; the CLI's flags are already
    strings)."""
    for key in ("model", "proposer", "task"):  # a pathlib.Path is a path too; config.json keeps text
        if isinstance(config[key], os.PathLike):
            config[key] = os.fspath(config[key])
    check_types(config)
    if config["seed_prompt"] is not None:
        from .template import validate

        validate(config["seed_prompt"])


def check_final_calibration(config: dict) -> None:
    """"none" (the command line's word for off) is stored as None; anything else must be a calibration mode."""
    from .scoring.calibration import MODES as CALIBRATIONS

    if config.get("final_calibration") == "none":
        config["final_calibration"] = None
    if config.get("final_calibration") not in (None, *CALIBRATIONS):
        raise PromptSearchError(f"final_calibration {config['final_calibration']!r}: use one of "
                                f"{', '.join(CALIBRATIONS)} or none")


MAX_FINAL_ENSEMBLE = 10  # each member is one more forward pass per input, in the search and in every prediction


def check_final_ensemble(size, where: str) -> None:
    """The final ensemble's size: a whole number from 1 (the winner alone) to MAX_FINAL_ENSEMBLE."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_FINAL_ENSEMBLE:
        raise PromptSearchError(f"{where} {size!r}: a whole number from 1 (the winner alone) to {MAX_FINAL_ENSEMBLE}")


REQUIRED = ("task", "strategies", "seed", "budget")  # in every config.json ever written; the rest has defaults


def read_config(store: RunStore) -> dict:
    """A run's config.json, checked as strictly as the command line that wrote it (a hand edit or a
    damaged file is one line naming the field, not a traceback deep in the search); older runs get
    the defaults of settings added since."""
    config, where = store.config, str(store.dir / "config.json")
    check_fields(config, DEFAULTS, where)
    missing = [k for k in REQUIRED if k not in config]
    if missing:
        raise PromptSearchError(f"{where}: missing field {missing[0]!r}")
    from .models import is_served
    from .models.urls import split_urls

    check_types(config, lambda key, value: f"{where}: field {key!r}", NULLABLE)
    if config["task"] == "":  # null: the default task
        raise PromptSearchError(f"{where}: field 'task' must name a task (a bundled task or a folder) or be null")
    data = config.get("data")
    if data is not None and (not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values())):
        raise PromptSearchError(f"{where}: field 'data' must be an object of split hashes or null")
    for key in ("model", "proposer"):
        if is_served(config.get(key)):
            split_urls(config[key], f"{where}: field {key!r}")
    if not config["strategies"]:  # a run records the strategies it resolved
        raise PromptSearchError(f"{where}: field 'strategies' must list strategy names")
    for key, known in (("budget", Budget.__dataclass_fields__), ("racing", Racing.__dataclass_fields__)):
        check_fields(config.get(key, {}), tuple(known), f"{where}: field {key!r}")
        for name, value in config.get(key, {}).items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise PromptSearchError(f"{where}: field {key!r}: {name!r} must be a number")
    from .limits import check_config

    check_config(config, f"{where}: field")
    if config.get("schedule", "even") not in SCHEDULES:
        raise PromptSearchError(f"{where}: field 'schedule' must be one of {', '.join(SCHEDULES)}")
    feedback = config.get("feedback")
    if feedback is not None and (not isinstance(feedback, dict) or not isinstance(feedback.get("parent"), str)):
        raise PromptSearchError(f"{where}: field 'feedback' must be a JSON object with the parent run, or null")
    if config.get("multitask") is not None:
        from .multitask import check_section

        check_section(config["multitask"], where, config["strategies"])
    from .selection import MODES

    if config.get("selection", "dev") not in MODES:
        raise PromptSearchError(f"{where}: field 'selection' must be one of {', '.join(MODES)}")
    from .scoring.calibration import MODES as CALIBRATIONS

    if config.get("final_calibration") not in (None, *CALIBRATIONS):
        raise PromptSearchError(f"{where}: field 'final_calibration' must be one of {', '.join(CALIBRATIONS)} or null")
    check_final_ensemble(config.get("final_ensemble", 1), f"{where}: field 'final_ensemble'")
    return {**make_config(), **LEGACY, **config}


def resolve_dtype(config: dict, model=None) -> dict:
    """The config with ``dtype`` "auto" replaced by what this host computes in (the loaded ``model``'s, when
    given), so config.json records the dtype used and ``--resume`` keeps it on any host (#33). A served
    model's dtype is the server's business: left as asked."""
    from .models import is_served

    if config["dtype"] != "auto" or is_served(config["model"]):
        return config
    if model is not None:  # already loaded (a fake model in tests has no dtype: left as asked)
        used = getattr(model, "dtype_name", None)
        if used is None:
            return config
    else:
        from .models.hardware import resolve_dtype as decide
        from .models.local import pick_device

        used, why = decide("auto", pick_device(config["device"]))
        log.info("--dtype auto: %s (%s)", used, why)
    return {**config, "dtype": used, "dtype_asked": "auto"}


def load_task_of(config: dict, prepared: bool = True):
    """The task a config names, with its seed prompt if the config overrides it; ``prepared``: as the run's search
    sees it (selection.py: the rows that choose and those held out), else the splits as the user gave them."""
    from .task import load_task

    if config.get("multitask"):
        from .multitask import load_multitask

        return load_multitask(config)
    task = load_task(config["task"], seed=config["seed"])
    task = task.with_seed_prompt(config["seed_prompt"]) if config.get("seed_prompt") else task
    if config.get("metric"):  # the task scored by the user's metric: its name is what reports show
        from .custom_metric import renamed

        task = renamed(task, config["metric"])
    return prepare_task(task, config) if prepared else task


def prepare_task(task, config: dict):
    """The task as the run's search sees it: which rows choose, which are held out (selection.py)."""
    from .selection import prepare

    if config.get("multitask"):
        return task
    return prepare(task, config.get("selection", "dev"), config["seed"])


def load_parts(config: dict, task=None, named=None):
    """Task (unless given, already loaded), model and scorer for a config (the slow part: loads the
    model, or connects to its server). ``named``: the server URLs the user gave on the command line; a
    config read from a file (a resumed run, an export, a refine) connects only to those, so a run directory
    from someone else cannot send the API key to its own server. None: the config came from the command line."""
    from .scoring import Scorer

    task = task or load_task_of(config, prepared=False)  # runner.run prepares it (selection.py), once
    for key in ("model", "proposer"):
        require_named(config.get(key), named, key)
    model = load_configured_model(config, config["model"], (config.get("served") or {}).get("model_name"))
    if config.get("chat"):
        from .models import require_chat_template

        require_chat_template(model)
    # A served proposer must host one model (--model-name names the scored model).
    proposer = load_configured_model(config, config["proposer"], None) if config.get("proposer") else None
    return task, model, Scorer(model, batch_size=config["batch_size"], chat=config["chat"], proposer=proposer)


def require_named(spec, named, key: str = "model") -> None:
    """Refuse, in one line, to connect to a server URL read from a file unless the user named it too."""
    from .models import is_served
    from .models.urls import redact, split_urls

    if named is None or not is_served(spec):
        return
    recorded = split_urls(spec, f"the run's {key}")
    given = [u for n in named if n and is_served(n) for u in split_urls(n)]
    if not set(recorded) <= set(given):
        flag = "--proposer" if key == "proposer" else "--model"
        shown = ",".join(redact(u) for u in recorded)
        raise PromptSearchError(f"the run's {key} is the server {shown}, read from a file; a URL read from a file is never "
                                f"connected to (your API key would go with it): name it on the command line with {flag} {shown}")


def load_configured_model(config: dict, spec, model_name):
    from .models import is_served, load_model

    served = {**DEFAULTS["served"], **(config.get("served") or {})}
    return load_model(spec, device=config["device"], dtype=config["dtype"],
                      model_name=model_name if is_served(spec) else None,
                      concurrency=served["concurrency"], scoring=served["scoring"], timeout=served["timeout"])


def make_strategies(config: dict) -> list:
    unused = set(config["options"]) - set(config["strategies"])
    if unused:
        raise PromptSearchError(f"options given for strategy {min(unused)!r}, which this run does not use")
    if config.get("plain"):  # plain.py: only prompts whose text is the whole prompt
        from .plain import plain_strategies

        return plain_strategies(config)
    return [strategy_registry.make(name, config["options"].get(name)) for name in config["strategies"]]


def build_search(config: dict, task, scorer, store=None, progress=False, strategies=None) -> Search:
    strategies = strategies if strategies is not None else make_strategies(config)
    objective = None  # the search's default: one task (search/objective.py)
    if config.get("multitask"):
        from .multitask import MultiTaskObjective

        objective = MultiTaskObjective()
    return Search(task, scorer, strategies, Budget(**config["budget"]), seed=config["seed"], store=store,
                  racing=Racing(**config["racing"]), batch_size=config["proposals_per_round"],
                  top_k=config["top_k"], progress=progress, schedule=config.get("schedule", "even"),
                  objective=objective, final_calibration=final_calibration(config),
                  final_ensemble=config.get("final_ensemble", 1))


def final_calibration(config: dict) -> str | None:
    """How the run calibrates its winner (None: not at all; never a plain or a multi-task run's)."""
    if config.get("plain") or config.get("multitask"):
        return None
    return config.get("final_calibration")


def run(config: dict, run_dir: str | Path, resume: bool = False, progress: bool = False, parts=None,
        executor: dict | None = None, named=None) -> dict:
    """Run (or resume) a search; returns the summary, also written to ``run_dir/summary.json``.
    ``executor`` replaces the run's own when resuming (say, locally after its Ray workers were lost):
    chunked executors all give the same scores, so the resumed run ends the same. A resumed run never joins
    a Ray cluster address read from its config.json: that takes ``executor`` naming it. ``named``: the server
    URLs given on the command line (load_parts); a resumed run connects only to those."""
    if resume:
        store = RunStore.open(run_dir)
        config = read_config(store)
        address = (config.get("executor") or {}).get("address")
        if address and not executor:
            raise PromptSearchError(f"{store.dir} ran on the Ray cluster at {address}; a cluster address read from a "
                                    f"file is never joined: resume with --executor ray --ray {address} to join it, "
                                    "or --executor local")
        if executor:
            config = {**config, "executor": executor}
        named = [] if named is None else named
        from .models import is_served

        for given in named:
            if given and not is_served(given) and given != config.get("model") and given != config.get("proposer"):
                raise PromptSearchError(f"--model {given}: not this run's model ({config.get('model') or 'the embedded one'}); "
                                        "a resumed run keeps its model")
        for key in ("model", "proposer"):  # before the lock file is touched: a refusal leaves the run as it was
            if parts is None:  # parts given: the caller connected, nothing is read from the file to connect to
                require_named(config.get(key), named, key)
    try:
        strategies = make_strategies(config)  # bad names and options fail before the slow model load
    except PromptSearchError as e:
        if not resume:
            raise
        # read from config.json: the line names the file and the field (limits.OPTION_RULES checked the values)
        field = "options" if "option" in str(e) else "strategies"
        raise PromptSearchError(f"{store.dir / 'config.json'}: field {field!r}: {e}") from None
    # a bad task file stops here, before anything is written; the data's hashes are of the splits as given
    given = parts[0] if parts is not None else load_task_of(config, prepared=False)
    if resume:
        check_same_data(config, given, store)
    else:
        if parts is None:  # a model path that is not there fails before the run folder is made, as a bad task does
            from .models import is_served
            from .models.local import resolve

            for key in ("model", "proposer"):
                if (config.get(key) or (key == "model" and config.get(key) == "")) and not is_served(config[key]):
                    resolve(config[key])
        config = resolve_dtype(config, parts[1] if parts else None)
        config = {**config, "data": data_hashes(given)}
        store = RunStore.create(run_dir, config)
    gaps = label_gaps(given)
    for line in gaps:  # said as the run starts (stderr), and kept in the summary (_run)
        log.warning(line)
    task = prepare_task(given, config)
    parts = (task, *parts[1:]) if parts is not None else None
    with store.locked():  # before anything is repaired or appended: one writer per run directory
        if resume:
            store.repair()
        return _load_and_run(config, run_dir, store, strategies, resume, progress, parts or load_parts(config, task, named),
                             gaps)


def data_hashes(task) -> dict:
    """Content hash of each split the run reads (artifact.split_hash: independent of row order)."""
    from .artifact import split_hash

    return {s: split_hash(task.split(s)) for s in ("train", "dev", "test")}


def config_hash(config: dict) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def check_same_data(config: dict, task, store: RunStore) -> None:
    """A resumed run must read the data it started on: a changed split would mix two datasets in one log.
    A finished run resumes only as it finished (the replay ends where it ended); one whose config.json was edited
    since is refused, as the replay would overwrite its summary with another run's result."""
    if store.summary is not None:
        finished_with = store.summary.get("config_sha256")
        if finished_with is not None and finished_with != config_hash(store.config):
            raise PromptSearchError(f"{store.dir} has finished, and its config.json changed since; resuming would "
                                    f"overwrite its result with another set-up's. Start a new run with the changed settings")
    recorded = config.get("data")
    if not recorded:  # runs from before the hashes were recorded
        return
    if not isinstance(recorded, dict):
        raise PromptSearchError(f"{store.dir / 'config.json'}: field 'data' must be an object")
    now = data_hashes(task)
    changed = [s for s in ("train", "dev", "test") if s in recorded and recorded[s] != now[s]]
    if changed:
        raise PromptSearchError(f"{store.dir}: the task's {'/'.join(changed)} data changed since the run started "
                                f"({task.source or task.name}); resuming would mix two datasets in one log. Start a new run")


def _load_and_run(config, run_dir, store, strategies, resume, progress, parts, gaps=()) -> dict:
    task, model, local = parts
    from .scoring.executors import make_executor

    scorer = make_executor(config, local)  # the local scorer itself, or one that fans chunks out
    try:
        return _run(config, run_dir, store, task, model, scorer, strategies, resume, progress, gaps)
    finally:
        if scorer is not local:
            scorer.close()


def _run(config, run_dir, store, task, model, scorer, strategies, resume, progress, gaps=()) -> dict:
    if config.get("metric"):  # the user's per-example metric rescoring every result (custom_metric.py)
        from .custom_metric import apply

        task, scorer = apply(config["metric"], task, scorer)
    if config.get("feedback"):
        from .feedback.blend import blended_scorer

        scorer = blended_scorer(store, task, scorer)
    search = build_search(config, task, scorer, store=store, progress=progress, strategies=strategies)
    if resume:
        log.info("resuming %s: %d logged evaluations reused", run_dir, search.resume_from_log())
    try:
        summary = search.run()
    except ServerError as e:  # every rung scored so far is logged, every answer received is cached
        raise RunInterrupted(f"{e}; nothing scored is lost") from None
    best = None if config.get("multitask") else Candidate.from_json(summary["best"])
    if best is not None and not is_plain(best):  # what best_prompt.txt says the text alone scores
        summary["best"]["text_alone"] = text_alone_score(task, scorer, best)
    summary["run_dir"] = str(run_dir)
    if gaps:  # task.label_gaps of the data as given: what the run warned of as it started
        summary["data_warnings"] = list(gaps)
    summary["model"] = model.name
    summary["model_fingerprint"] = model.fingerprint
    biases = scorer.calibration.recorded(model.fingerprint)
    if biases and not config.get("multitask"):  # what an exported prompt's calibration reads (export.py)
        summary["calibration_biases"] = biases
    summary["config_sha256"] = config_hash(store.config)  # what the run finished with (check_same_data)
    if getattr(model, "dtype_name", None):  # what it computed in, whatever was asked (#33)
        summary["dtype"] = model.dtype_name
    from .models import scoring_note

    summary["scoring"] = scoring_note.describe(model)  # what scoring the run got, not just what was asked (#30)
    if task.kind == "generation" and not config.get("multitask"):  # the stop rule an artifact must record
        summary["max_new_tokens"] = scorer.max_new_tokens(task)
    if getattr(model, "stats", None) is not None:
        summary["served"] = dict(model.stats)
    if scoring_note.note(model):
        summary["scoring_note"] = scoring_note.note(model)
        log.warning(summary["scoring_note"])
    store.write_summary(summary)
    return summary
