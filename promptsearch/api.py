"""The public Python API: load a task and a model, score a prompt, search, and run what a search found.

    import promptsearch as ps
    task = ps.load_task("sst2-mini")
    model = ps.load_model()
    ps.evaluate(task, model, "Review: {input}\\nSentiment:", split="test")
    result = ps.search(task, model, budget=ps.Budget(max_evals=2000), run_dir="runs/sst2", seed=0)
    result.export("prompt.json")
    prompt = ps.load_prompt("prompt.json")
    prompt.predict(["a gripping film", "dull"])      # on the model it was scored with; or pass one

The CLI is a layer over the same pieces and the same defaults (``runner.make_config``): a search from here and
``promptsearch run`` with the same settings and seed run the same search and pick the same winner.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import runner
from .candidate import Candidate
from .errors import PromptSearchError
from .metrics import summarize
from .models.hardware import DEFAULT_DTYPE
from .prompt import Prediction, Prompt
from .search import Budget
from .task import BUNDLED_DIR, Example, Task

__all__ = ["Budget", "EvalResult", "Example", "Prediction", "Prompt", "SearchResult", "Task", "evaluate",
           "load_model", "load_prompt", "load_task", "search"]

# Settings that define a search: a run directory holding another value for any of them is not resumed.
SEARCH_FIELDS = ("strategies", "schedule", "options", "seed", "seed_prompt", "top_k", "budget", "racing", "plain",
                 "metric", "chat", "proposer")


def load_task(spec: str | None = None, seed: int = 0) -> Task:
    """A bundled task by name (default ``sst2-mini``) or a task folder. ``seed`` draws dev from train for a
    folder without a dev split. For your own rows: ``Task.from_records`` / ``Task.from_pandas``."""
    from .limits import check_given
    from .task import load_task as load

    check_given(seed=seed)
    return load(str(spec) if spec is not None else None, seed=seed)


def load_model(spec: str | None = None, device: str = "auto", dtype: str = DEFAULT_DTYPE, model_name: str | None = None,
               concurrency: int = 4, scoring: str = "auto", timeout: float = 120.0):
    """The embedded SmolLM2 (no spec), a Hugging Face model folder, a ``.gguf`` file, or an OpenAI-compatible
    server (``http://host:8000/v1``; API key from PROMPTSEARCH_API_KEY or OPENAI_API_KEY). The spec is kept on
    the model (``model.spec``) so a run's config names it and ``--resume`` or ``export`` can load it again."""
    from .models import load_model as load

    return load(spec, device=device, dtype=dtype, model_name=model_name, concurrency=concurrency, scoring=scoring,
                timeout=timeout)


def load_prompt(path: str | Path) -> Prompt:
    """An exported prompt artifact (``promptsearch export`` or ``SearchResult.export``), ready to predict."""
    from . import artifact

    _check_path(path, "path")
    return Prompt.from_artifact(artifact.read(path), path)


def _check_path(path, name: str) -> None:
    if not isinstance(path, (str, Path)) or not str(path):
        raise PromptSearchError(f"{name} {path!r:.40}: must be a path (a string or a pathlib.Path)")


def _check_chat(model, chat) -> None:
    """``chat`` as the CLI's --chat: true or false, and true only with a model that has a chat template."""
    if not isinstance(chat, bool):
        raise PromptSearchError(f"chat {chat!r:.40}: must be True or False")
    if chat:
        from .models import require_chat_template

        require_chat_template(model)


# ---- evaluate -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalResult:
    """A prompt's score on a split: the metric's mean with n and a 95% interval, and every example's result
    (id, input, prediction, score, and for classification each label's score)."""

    metric: str
    score: float
    n: int
    ci_low: float
    ci_high: float
    results: list[dict] = field(default_factory=list, repr=False)
    too_long: int = 0  # rows that with this prompt do not fit the model's context: scored as wrong

    def to_json(self) -> dict:
        return asdict(self)


def evaluate(task: Task | str | None, model, prompt: str | Prompt | Candidate | None = None, split: str = "dev",
             label_words=None, calibrate: str | None = None, demos: str | None = None, chat: bool = False,
             batch_size: int = 16, limit: int | None = None, metric: str | Callable | None = None,
             progress: bool = False) -> EvalResult:
    """Score a prompt (text with an ``{input}`` slot, a loaded ``Prompt``, or a ``Candidate``; default: the
    task's seed prompt) on a split, as a search scores it. ``metric``: a callable ``(prediction, example) ->
    [0, 1]`` or its ``module:function`` path, replacing the task's metric."""
    done = score_on_split(task, model, prompt, split, label_words, calibrate, demos, chat, batch_size, limit, metric,
                          progress)
    words = done.candidate.label_words or done.task.label_words
    rows = [{"id": ex.id, "input": ex.input, "prediction": r.prediction, "score": r.score,
             **({"label_scores": dict(zip(words, r.label_logprobs))} if done.task.kind == "classification" else {})}
            for ex, r in zip(done.examples, done.results)]
    score = done.score
    return EvalResult(score.metric, score.score, score.n, score.ci_low, score.ci_high, rows, done.too_long)


@dataclass(frozen=True)
class Scored:
    """One prompt scored on a split, with what scored it: ``evaluate``'s result and `promptsearch eval`'s."""

    task: Task  # as scored: the custom metric applied, a Prompt's demonstration pool in place
    examples: list
    candidate: Candidate
    results: list
    too_long: int
    score: object  # metrics.Score
    scorer: object


def score_on_split(task, model, prompt=None, split: str = "dev", label_words=None, calibrate=None, demos=None,
                   chat: bool = False, batch_size: int = 16, limit: int | None = None, metric=None,
                   progress: bool = False) -> Scored:
    """``evaluate``'s work, shared with the CLI's `eval` (which loads the model with its served options first)."""
    from .limits import check as check_rule
    from .limits import check_given
    from .scoring import Scorer
    from .scoring.scorer import evaluate_rows
    from .template import validate

    # every argument checked before a model is loaded or a row scored (limits.py: the rules of eval's flags)
    check_given(limit=limit)
    check_rule("batch_size", batch_size, "batch_size")
    if split not in ("train", "dev", "test"):
        raise PromptSearchError(f"split {split!r:.40}: use train, dev or test")
    if prompt is not None and not isinstance(prompt, (str, Prompt, Candidate)):
        raise PromptSearchError(f"prompt {prompt!r:.40}: text with an {{input}} slot, a Prompt or a Candidate")
    for name, value in (("calibrate", calibrate), ("demos", demos)):
        if value is not None and not isinstance(value, str):
            raise PromptSearchError(f"{name} {value!r:.40}: must be a string or None")
    if label_words is not None:
        from .task import check_label_words

        label_words = check_label_words(list(label_words) if isinstance(label_words, tuple) else label_words,
                                        "label_words")
    task = task if isinstance(task, Task) else load_task(task)
    model = _model(model)
    _check_chat(model, prompt.chat if isinstance(prompt, Prompt) else chat)
    if isinstance(prompt, Prompt):
        candidate, chat = prompt.candidate, prompt.chat
        task = prompt.task_on(task)
    elif isinstance(prompt, Candidate):
        candidate = prompt
    else:
        words = tuple(label_words) if label_words else None
        if words and (task.kind != "classification" or len(words) != len(task.label_words)):
            raise PromptSearchError(f"label_words: task {task.name} needs {len(task.label_words)} label words")
        candidate = Candidate(validate(prompt if prompt is not None else task.seed_prompt), words,
                              calibrate=calibrate, demos=demos)
    _check_options(task, candidate)
    scorer = Scorer(model, batch_size=batch_size, chat=chat)
    if metric is not None:
        from .custom_metric import apply

        task, scorer = apply(metric, task, scorer)
    examples = task.split(split)[:limit]
    results, too_long = evaluate_rows(scorer, task, candidate, examples, progress)  # a row too long: wrong, as a run scores it
    score = summarize(task.metric, results, examples, candidate.label_words or task.label_words)
    return Scored(task, examples, candidate, results, len(too_long), score, scorer)


def _check_options(task: Task, candidate: Candidate) -> None:
    if candidate.demos:
        from .scoring.demos import parse

        parse(candidate.demos)
    if candidate.calibrate:
        from .scoring.calibration import check

        check(task, candidate)


def model_spec(model) -> str | None:
    """The spec a model was loaded from (recorded in the run's config): ``model.spec`` when ps.load_model set it,
    else read from a local model's name (the embedded model's ``embedded:...``, or a path); a model built in memory
    has none, and its runs cannot be exported."""
    if hasattr(model, "spec"):
        return model.spec
    name = str(getattr(model, "name", ""))
    if name.startswith("embedded:"):
        return None
    if name and Path(name).exists():
        return name
    raise PromptSearchError(f"model {name or model!r} was not loaded from a path; load it with ps.load_model(spec), "
                            "so the run can name it")


def _model(model):
    """A loaded model, or one loaded from a spec (None: the embedded model)."""
    return model if model is not None and not isinstance(model, (str, Path)) else load_model(model)


# ---- search ---------------------------------------------------------------------------------------
class SearchResult:
    """A finished search: ``best`` (a ``Prompt`` that predicts), ``leaderboard`` (dicts, best first, with dev
    scores), ``summary`` (what ``promptsearch run --json`` prints), and ``export(path)`` for an artifact."""

    def __init__(self, summary: dict, run_dir: Path, task: Task, model, scorer, chat: bool):
        self.summary, self.run_dir, self._task, self._model, self._scorer, self._chat = summary, run_dir, task, model, scorer, chat

    def _prompt(self, record: dict) -> Prompt:
        prompt = Prompt.from_candidate(Candidate.from_json(record), self._task, self._chat,
                                       self.summary.get("max_new_tokens"),
                                       {k: record[k] for k in ("dev", "holdout", "test") if k in record})
        return prompt.attach(self._model, getattr(getattr(self._scorer, "calibration", None), "biases", None) or {})

    @property
    def best(self) -> Prompt:
        return self._prompt(self.summary["best"])

    @property
    def seed(self) -> Prompt:
        return self._prompt(self.summary["seed"])

    @property
    def leaderboard(self) -> list[dict]:
        return list(self.summary["leaderboard"])

    @property
    def estimate(self) -> dict:
        """What to expect of ``best`` on new rows: its score on the held-out labelled rows when the run kept some
        (``which``: ``holdout``), else its dev score, which the choice among many prompts biases upward (``dev``)."""
        return dict(self.summary.get("estimate") or {"which": "dev", **self.summary["best"]["dev"]})

    def export(self, path: str | Path, rank: int | None = None) -> Prompt:
        """Write the ``rank``-th prompt (default: the best) as an artifact file (what ``promptsearch export``
        writes); returns it loaded."""
        from .export import export_run

        export_run(self.run_dir, path, rank=rank, parts=(self._task, self._model, self._scorer))
        return load_prompt(path)

    @property
    def stopped(self) -> str:
        """Why the search stopped, and which strategies spent evaluations: the last line `promptsearch run` prints."""
        from .search.stopping import stop_line

        return stop_line(self.summary)

    def __repr__(self) -> str:
        from .format import options_note

        best, estimate = self.summary["best"], self.estimate
        # the options too: a winner whose text is the seed's may still differ from it (demonstrations, calibration)
        note = options_note(best).strip()
        return (f"SearchResult(best={best['prompt']!r}{' ' + note if note else ''}, estimate={estimate['score']:.3f} "
                f"({estimate['which']}, n={estimate['n']}), test={best['test']['score']:.3f}, "
                f"run_dir={str(self.run_dir)!r})")


def search(task: Task | str | None = None, model=None, budget: Budget | None = None, run_dir: str | Path | None = None,
           seed: int = 0, strategies: list[str] | None = None, schedule: str | None = None,
           options: dict | None = None, plain: bool = False, metric: str | Callable | None = None,
           seed_prompt: str | None = None, top_k: int = 3, chat: bool = False, batch_size: int = 16,
           proposer=None, progress: bool = False, selection: str = "auto",
           final_calibration: str | None = runner.DEFAULTS["final_calibration"],
           final_ensemble: int = runner.DEFAULTS["final_ensemble"]) -> SearchResult:
    """Search prompts for a task, as ``promptsearch run`` does with the same settings (same defaults: the default
    strategies under the bandit schedule, then an ensemble when the budget holds it). A ``run_dir`` that holds
    this search already is resumed (an unfinished one) or read back (a finished one), never overwritten.

    ``plain=True`` keeps only prompts whose text alone is the whole prompt. ``metric`` is a callable
    ``(prediction, example) -> score in [0, 1]`` or its ``module:function`` path; a resumed run needs it again
    (the config records its path). ``selection`` says which labelled rows choose the prompt and which estimate it
    (selection.py; ``auto``: with a small dev split, a quarter of the labelled rows is held out to estimate the
    winner, and dev alone chooses). ``final_calibration`` calibrates the winner's label scores after the search
    (classification; calibration.py): ``batch`` by default, None keeps the winner as found; with it, the final
    check's top ``final_ensemble`` prompts are combined into one uniform ensemble, each calibrated (1: the winner).
    ``proposer`` (a spec or a model from ``load_model``) writes the text the search proposes, as ``run --proposer``
    does; ape joins the default strategies then."""
    from .custom_metric import apply, importable, spec_of
    from .limits import check_given
    from .scoring import Scorer
    from .store import RunStore, default_run_dir

    check_given(seed=seed)  # before load_task draws dev with it; the rest is make_config's (limits.py)
    if budget is not None and not isinstance(budget, Budget):
        raise PromptSearchError(f"budget {budget!r:.40}: must be a ps.Budget(max_evals=...)")
    if final_calibration is not None and not isinstance(final_calibration, str):
        raise PromptSearchError(f"final_calibration {final_calibration!r:.40}: a calibration mode, or None")
    task = task if isinstance(task, Task) else load_task(task, seed=seed)
    model = _model(model)
    _check_chat(model, chat)
    proposer_model = None  # a loaded proposer is used as given; its spec is what the config records
    if hasattr(proposer, "generate") and not isinstance(proposer, (str, Path)):  # else make_config checks the spec
        proposer_model, proposer = proposer, model_spec(proposer)
    if run_dir is not None:
        _check_path(run_dir, "run_dir")
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(task.name)
    metric_spec = metric if isinstance(metric, str) or metric is None else spec_of(metric)
    config = runner.make_config(  # checked before _task_spec may save an in-memory task into run_dir
        model=model_spec(model), chat=chat, batch_size=batch_size,
        strategies=list(strategies) if isinstance(strategies, tuple) else strategies, schedule=schedule, options=options or {}, seed=seed,
        seed_prompt=seed_prompt, top_k=top_k, budget={k: v for k, v in asdict(budget or Budget()).items() if v is not None} or None,
        proposer=proposer, plain=plain, metric=metric_spec, selection=selection,
        final_calibration=final_calibration or "none", final_ensemble=final_ensemble)
    config["task"] = _task_spec(task, run_dir)
    if seed_prompt:
        task = task.with_seed_prompt(seed_prompt)
    if config.get("proposer") and proposer_model is None:  # as `run --proposer` loads it (runner.load_parts)
        proposer_model = runner.load_configured_model(config, config["proposer"], None)
    scorer = Scorer(model, batch_size=config["batch_size"], chat=chat, proposer=proposer_model)
    if metric is not None:
        fn = metric if callable(metric) else None
        if fn is not None and not importable(metric_spec):
            import logging

            logging.getLogger(__name__).warning("metric %s cannot be imported by another process: resume this run "
                                                "from Python, passing the function again", metric_spec)
        task, scorer = apply(metric_spec, task, scorer, fn=fn)
    parts = (task, model, scorer)  # runner.run prepares the task (selection.py); the result holds it as the run saw it
    task = runner.prepare_task(task, config)
    resume = (run_dir / "config.json").exists()
    if resume:
        store = RunStore.open(run_dir)
        runner.read_config(store)  # a damaged config.json: one line naming the field
        _same_search(store.config, config, run_dir)
        summary = store.checked_summary()  # likewise summary.json, before a SearchResult reads it
        if summary is not None:  # finished: read back, nothing scored again
            return SearchResult(summary, run_dir, task, model, scorer, chat)
    summary = runner.run(config, run_dir, resume=resume, progress=progress, parts=parts)
    return SearchResult(summary, run_dir, task, model, scorer, chat)


def _task_spec(task: Task, run_dir: Path) -> str:
    """What the config names the task by: a bundled task's name, its folder, or (a task built in memory) a copy
    saved in the run directory, so the CLI's ``--resume`` and ``export`` can read it too."""
    from .artifact import split_hash
    from .task_import import save_task

    source = Path(task.source) if task.source else None
    if source is not None and source.resolve().parent == BUNDLED_DIR.resolve():
        return source.name
    if source is not None and source.is_dir():
        return str(source.resolve())
    saved = run_dir / "task"
    if saved.exists():
        known = load_task(str(saved))
        if any(split_hash(known.split(s)) != split_hash(task.split(s)) for s in ("train", "dev", "test")):
            raise PromptSearchError(f"{run_dir} holds a search of other data; choose another run_dir")
        return str(saved.resolve())
    run_dir.mkdir(parents=True, exist_ok=True)
    return str(save_task(task, saved).resolve())


def _same_search(stored: dict, config: dict, run_dir: Path) -> None:
    for key in SEARCH_FIELDS + ("task",):
        if json.dumps(stored.get(key), sort_keys=True) != json.dumps(config.get(key), sort_keys=True):
            raise PromptSearchError(f"{run_dir} holds another search ({key}: {stored.get(key)!r} there, "
                                    f"{config.get(key)!r} here); choose another run_dir")
