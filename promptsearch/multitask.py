"""Universal prompts: one shared prompt searched for several tasks at once, and extended to a new task.

A multi-task run is an ordinary run whose task is a ``MultiTask``: its rows are the tasks' rows, each
tagged with the task it came from, and its dev split interleaves the tasks' seeded dev orders so that
every racing rung holds an equal share of each task. ``MultiScorer`` hands each row to the plain scorer
with its own task, so every task keeps its own label words, metric and answer length (a candidate's
``label_words`` stay None). ``MultiTaskObjective``, the Objective the one Search is given for such a run
(search/objective.py), ranks a candidate on a rung by its gain over each task's own seed prompt on the same
rows, aggregated by the objective (``mean``, or ``min``: the worst task).

Adding a task (``--extend``) starts from an earlier universal prompt; its old tasks are constrained:
a candidate that scores an old task below the 95% CI of the start prompt on the same rows ranks below
every feasible candidate. The config's ``multitask`` section records all of it, so ``--resume`` rebuilds
the same search; the baselines (each task's seed, the start prompt) are logged to ``baselines.jsonl``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .candidate import Candidate
from .errors import PromptSearchError
from .metrics import Z95, summarize
from .scoring import ExampleResult
from .scoring.protocol import WrappedScorer
from .search import Search, SingleTask
from .stats import outcomes, paired_test
from .task import Example, Task, default_seed_prompt, load_task

OBJECTIVES = ("mean", "min")
# Strategies that read one task's label words or train through one task's loss: no single task here.
REFUSED = ("autoprompt", "soft-prompt", "refine")
# An infeasible candidate's rung score is its objective minus this: below every feasible one, since gains of
# metrics on [0, 1] lie in [-1, 1] (log-likelihood gains are unbounded: then a far larger step), and still
# ordered by objective among the infeasible, and close enough that a report's plot keeps its scale.
INFEASIBLE = 3.0
INFEASIBLE_LOGLIK = 1e6


@dataclass(frozen=True)
class TaggedExample(Example):
    """A task's row inside a multi-task run: its key names the task, so equal rows of two tasks stay apart."""

    origin: str = ""

    @property
    def key(self) -> str:
        return hashlib.sha1(json.dumps([self.origin, super().key]).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class MultiTask(Task):
    """Several tasks as one: ``parts`` the tasks, ``constrained`` the names of the old tasks of an
    extension, ``compare`` single-task runs to report beside (task name -> run directory)."""

    parts: tuple[Task, ...] = ()
    objective: str = "mean"
    constrained: tuple[str, ...] = ()
    start_demos: str | None = None  # the start prompt's demonstration rule (an extension of a prompt with one)
    compare: dict = field(default_factory=dict, compare=False, hash=False)
    rows: dict = field(default_factory=dict, compare=False, hash=False, repr=False)  # key -> (part, plain row)

    def part(self, name: str) -> Task:
        return next(t for t in self.parts if t.name == name)

    def split_by_task(self, examples) -> dict[str, list[int]]:
        """Positions of the examples of each task, in task order (tasks with none left out)."""
        groups: dict[str, list[int]] = {t.name: [] for t in self.parts}
        for i, ex in enumerate(examples):
            groups[self.rows[ex.key][0].name].append(i)
        return {name: idx for name, idx in groups.items() if idx}


def _tag(task: Task, examples) -> list[TaggedExample]:
    return [TaggedExample(ex.input, ex.output, ex.outputs, ex.label, f"{task.name}:{ex.id}", origin=task.name)
            for ex in examples]


def _interleave(lists: list[list]) -> list:
    """Round robin: the first of each, then the second of each, ...; longer lists go on alone."""
    return [lst[i] for i in range(max(map(len, lists))) for lst in lists if i < len(lst)]


def build_multitask(parts: list[Task], seed: int, objective: str = "mean", seed_prompt: str | None = None,
                    constrained=(), compare: dict | None = None, start_demos: str | None = None) -> MultiTask:
    """The composite task; dev is each task's dev in a seeded order (as a single-task run would race it),
    interleaved, so every prefix of k x tasks rows holds k rows of each."""
    import random

    names = [t.name for t in parts]
    if len(set(names)) != len(names):
        raise PromptSearchError(f"two tasks are named {next(n for n in names if names.count(n) > 1)!r}; "
                                "give each task directory its own name")
    dev_orders = []
    for t in parts:
        order = list(range(len(t.dev)))
        random.Random(seed).shuffle(order)
        dev_orders.append(_tag(t, [t.dev[i] for i in order]))
    trains, tests = [_tag(t, t.train) for t in parts], [_tag(t, t.test) for t in parts]
    rows = {}  # tagged key -> (its task, the task's own row), how MultiScorer routes a row
    for t, *splits in zip(parts, trains, dev_orders, tests):
        plain = {ex.key: ex for ex in t.train + t.dev + t.test}
        for ex in (ex for split in splits for ex in split):
            rows[ex.key] = (t, plain[Example.key.fget(ex)])  # the row's own key, without the task
    kind = "classification" if all(t.kind == "classification" for t in parts) else "generation"
    seeds = {t.seed_prompt for t in parts}
    start = seed_prompt or (seeds.pop() if len(seeds) == 1 else default_seed_prompt(kind, ""))
    return MultiTask(name="+".join(names), kind=kind, train=tuple(_interleave(trains)), dev=tuple(_interleave(dev_orders)),
                     test=tuple(ex for lst in tests for ex in lst), metric=f"{objective} gain", seed_prompt=start,
                     label_words=(), description="", source=",".join(t.source for t in parts), parts=tuple(parts),
                     objective=objective, constrained=tuple(constrained), compare=dict(compare or {}), rows=rows,
                     start_demos=start_demos)


# ---- config -------------------------------------------------------------------------------------
def multitask_config(tasks: list[str], objective: str | None, extend: str | None, compare: list[str],
                     seed_prompt: str | None, strategies: list[str]) -> dict | None:
    """The ``multitask`` section of a new run's config from the command line (None: a single-task run).
    Bad combinations are one-line errors, before anything is written."""
    if extend is None and len(tasks) < 2:
        if objective:
            raise PromptSearchError("--objective needs two or more --task (or --extend RUN --task NEW)")
        if compare:
            raise PromptSearchError("--compare-run goes with a multi-task run (two or more --task, or --extend)")
        return None
    section = {"tasks": [_resolve(t) for t in tasks], "objective": objective or "mean", "extend": None, "compare": {}}
    if extend is not None:
        if not tasks:
            raise PromptSearchError("--extend needs the new task: --extend RUN_OR_ARTIFACT --task NEW")
        if seed_prompt is not None:
            raise PromptSearchError("--extend starts from the universal prompt it names; drop --seed-prompt")
        section["extend"] = extend_source(extend)
        old = section["extend"]["tasks"]
        clash = [t for t in section["tasks"] if t in old]
        if clash:
            raise PromptSearchError(f"--task {clash[0]}: already a task of {extend}; --task names the new task(s)")
        section["tasks"] = old + section["tasks"]
    for item in compare:
        name, sep, run_dir = item.partition("=")
        if not sep or not name or not run_dir:
            raise PromptSearchError(f"--compare-run {item!r} must look like TASK=RUN_DIR")
        section["compare"][name] = str(Path(run_dir).resolve())
    check_section(section, "the command line", strategies)
    return section


def _resolve(spec: str) -> str:
    from .task import resolve_task_dir

    path = resolve_task_dir(spec)
    return str(path.resolve()) if "/" in spec or Path(spec).is_dir() else spec


def extend_source(source: str) -> dict:
    """What ``--extend`` starts from: a finished run (multi- or single-task) or an exported artifact."""
    from .store import RunStore

    path = Path(source)
    if path.is_dir():
        store = RunStore.open(path)
        config, summary = store.config, store.checked_summary()  # damaged files: one line naming the field
        if summary is None:
            raise PromptSearchError(f"--extend {source}: the run has not finished; finish it with run --resume {source}")
        multi = config.get("multitask")
        where = str(store.dir / "config.json")
        if multi:
            check_section(multi, where, config.get("strategies") if isinstance(config.get("strategies"), list) else [])
        elif config.get("task") is not None and not isinstance(config["task"], str):
            raise PromptSearchError(f"{where}: field 'task' must name a task (a bundled task or a folder) or be null")
        tasks = list(multi["tasks"]) if multi else [_resolve(config["task"] or "sst2-mini")]
        best = summary["best"]
        kind = "run"
    elif path.is_file():
        from .artifact import read

        art = read(path)
        if not Path(art.task["source"]).is_dir():
            raise PromptSearchError(f"--extend {source}: the artifact's task folder {art.task['source']} is not here")
        tasks = [_resolve(art.task["source"])]
        own = load_task(tasks[0]).label_words
        best = {"prompt": art.prompt, "soft": art.soft, "demos": art.options.get("demos"),
                "label_words": list(art.label_words) if art.label_words and tuple(art.label_words) != own else None}
        kind = "artifact"
    else:
        raise PromptSearchError(f"--extend {source}: neither a run directory nor an artifact file")
    if best.get("soft") or best.get("label_words"):
        raise PromptSearchError(f"--extend {source}: its prompt has its own label words or a soft prompt; a universal "
                                "prompt is text and each task keeps its own label words")
    # a demonstration rule goes with the prompt: each task then draws its own rows (demos.py); in a config
    # written before rules were carried the key is absent, which reads as none
    return {"source": str(path.resolve()), "kind": kind, "prompt": best["prompt"], "tasks": tasks,
            "demos": best.get("demos")}


def check_section(section, where: str, strategies: list[str]) -> None:
    """A ``multitask`` config section, checked as strictly as the rest of config.json."""
    if not isinstance(section, dict) or set(section) != {"tasks", "objective", "extend", "compare"}:
        raise PromptSearchError(f"{where}: field 'multitask' must hold tasks, objective, extend and compare")
    if not isinstance(section["tasks"], list) or len(section["tasks"]) < 2 or not all(isinstance(t, str) for t in section["tasks"]):
        raise PromptSearchError(f"{where}: a multi-task run needs two or more tasks")
    if section["objective"] not in OBJECTIVES:
        raise PromptSearchError(f"{where}: objective must be one of {', '.join(OBJECTIVES)}, not {section['objective']!r}")
    ext = section["extend"]
    if ext is not None and (not isinstance(ext, dict) or not isinstance(ext.get("prompt"), str)
                            or not isinstance(ext.get("tasks"), list)):
        raise PromptSearchError(f"{where}: field 'multitask.extend' must hold the start prompt and the old tasks")
    if ext is not None and ext.get("demos") is not None:
        from .scoring.demos import parse

        parse(ext["demos"])  # a bad rule is a one-line error here, not a traceback mid-run
    if not isinstance(section["compare"], dict):
        raise PromptSearchError(f"{where}: field 'multitask.compare' must map task names to run directories")
    refused = [s for s in strategies if s in REFUSED]
    if refused:
        raise PromptSearchError(f"strategy {refused[0]!r} does not run on several tasks at once (it reads one task's "
                                "label words or loss); use templates, clarify, evolution")


def load_multitask(config: dict) -> MultiTask:
    section = config["multitask"]
    check_section(section, "config", config["strategies"])
    if config.get("feedback"):
        raise PromptSearchError("refine (ratings) does not run on a multi-task run")
    parts = [load_task(t, seed=config["seed"]) for t in section["tasks"]]
    ext = section["extend"]
    old = [load_task(t).name for t in ext["tasks"]] if ext else []
    names = [t.name for t in parts]
    unknown = [n for n in section["compare"] if n not in names]
    if unknown:
        raise PromptSearchError(f"--compare-run {unknown[0]}=...: no task of this run is named {unknown[0]!r} "
                                f"(tasks: {', '.join(names)})")
    return build_multitask(parts, config["seed"], section["objective"], (ext or {}).get("prompt") or config.get("seed_prompt"),
                           constrained=old, compare=section["compare"], start_demos=(ext or {}).get("demos"))


# ---- scoring ------------------------------------------------------------------------------------
class MultiScorer(WrappedScorer):
    """The plain scorer, seen through a multi-task run: each row goes to its own task. Everything else
    (the model, rendering, completion for strategies) is the wrapped scorer's."""

    def __init__(self, inner, task: MultiTask):
        super().__init__(inner)
        self.multi = task

    def evaluate(self, task, candidate, examples) -> list[ExampleResult]:
        if not isinstance(task, MultiTask):
            return self.inner.evaluate(task, candidate, examples)
        out: list = [None] * len(examples)
        for name, idx in task.split_by_task(examples).items():
            plain = [task.rows[examples[i].key][1] for i in idx]
            for i, r in zip(idx, self.inner.evaluate(task.part(name), candidate, plain)):
                out[i] = r
        return out

    def preload(self, task, candidate, results: dict) -> None:
        if not isinstance(task, MultiTask):
            return self.inner.preload(task, candidate, results)
        by_task: dict[str, dict] = {}
        for key, r in results.items():
            if key in task.rows:  # rows the task no longer has are ignored
                part, plain = task.rows[key]
                by_task.setdefault(part.name, {})[plain.key] = r
        for name, rs in by_task.items():
            self.inner.preload(task.part(name), candidate, rs)

    def prefetch(self, task, pairs) -> None:
        prefetch = getattr(self.inner, "prefetch", None)
        if prefetch is None:
            return
        for part in task.parts:
            prefetch(part, [(c, [task.rows[ex.key][1] for ex in exs if task.rows[ex.key][0] is part]) for c, exs in pairs])


@dataclass(frozen=True)
class MultiScore:
    """A candidate's objective on some rows (gain over each task's seed, aggregated; approximate normal
    95% CI from the per-example paired differences) and its per-task scores behind it."""

    metric: str
    score: float
    n: int
    ci_low: float
    ci_high: float
    objective: float
    feasible: bool
    tasks: dict

    def to_json(self) -> dict:
        return {"metric": self.metric, "score": self.score, "n": self.n, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "objective": self.objective, "feasible": self.feasible, "tasks": self.tasks}


def aggregate(objective: str, gains: dict[str, float], variances: dict[str, float]) -> tuple[float, float, float]:
    """The objective over tasks' gains and its approximate 95% CI: the mean (variance of a mean of
    independent task means) or the minimum (the CI of the worst task)."""
    if objective == "mean":
        value = sum(gains.values()) / len(gains)
        half = Z95 * math.sqrt(sum(variances.values())) / len(gains)
    else:
        worst = min(gains, key=gains.get)
        value, half = gains[worst], Z95 * math.sqrt(variances[worst])
    return value, value - half, value + half


class MultiTaskObjective(SingleTask):
    """The objective of a ``MultiTask`` run: rungs are whole rounds of the tasks, a rung's score is the
    objective over the tasks' gains over their own seeds (scored first, as baselines), only text prompts are
    admitted, and the summary reports every task on its own."""

    headline = "objective"

    def __init__(self):
        self._baselines: set[tuple[str, str]] = set()  # (candidate id, task) scored or read from the log
        self._tested: set[tuple[str, str]] = set()  # (candidate id, task) logged to test.jsonl

    @property
    def task(self) -> MultiTask:
        return self.search.task

    # ---- set-up: routing, row order, rungs ------------------------------------------------------------
    def wrap_scorer(self, scorer):
        return scorer if isinstance(scorer, MultiScorer) else MultiScorer(scorer, self.task)

    def dev_order(self, task, seed: int) -> list:
        return list(task.dev)  # already seeded and interleaved (build_multitask)

    def rungs(self, racing, n_dev: int) -> list[int]:
        k = len(self.task.parts)  # whole rounds of the tasks, so every rung holds an equal share of each
        return sorted({min(n_dev, math.ceil(s / k) * k) for s in racing.rungs(n_dev)})

    def admit(self, candidates: list[Candidate]) -> list[Candidate]:
        """A universal prompt is text: candidates with their own label words or a soft prompt are dropped."""
        return [c for c in candidates if c.label_words is None and c.soft is None]

    # ---- baselines: each task's own seed prompt, and the start prompt of an extension --------------
    def start_candidate(self) -> Candidate:
        """The start prompt, with the demonstration rule of the universal prompt an extension starts from."""
        return Candidate(self.task.seed_prompt, demos=self.task.start_demos)

    def baseline_candidates(self) -> list[tuple[Candidate, Task]]:
        start = self.start_candidate()
        pairs = [(Candidate(t.seed_prompt), t) for t in self.task.parts]
        return pairs + [(start, self.task.part(n)) for n in self.task.constrained]

    def before_run(self) -> None:
        """The baselines first; then the start prompt is raced whatever they cost (it is always reported);
        the loop then races it again as the seed, which scores nothing twice."""
        self._score_baselines()
        self.search.limits = (math.inf,) * 4
        self.search.tell([self.start_candidate()])

    def _score_baselines(self) -> None:
        """Score the baselines on all of their task's dev once; logged, and charged whether computed now
        or read back, so a resumed run counts exactly as the first did. The start prompt is not charged
        here: it is raced on all of dev next, and counted there."""
        search, start = self.search, self.start_candidate().id
        for c, t in self.baseline_candidates():
            results = search.scorer.evaluate(t, c, t.dev)
            if c.id != start:
                search.charge(len(t.dev))
            if search.store is not None and (c.id, t.name) not in self._baselines:
                search.store.append("baselines.jsonl", {"candidate": c.to_json(), "task": t.name,
                                                        "results": {ex.key: r.to_json() for ex, r in zip(t.dev, results)}})
            self._baselines.add((c.id, t.name))

    def resume(self, store) -> None:
        names = [t.name for t in self.task.parts]
        for rec in store.read("baselines.jsonl"):
            if isinstance(rec, dict) and rec.get("task") in names and isinstance(rec.get("results"), dict):
                c = Candidate.from_json(rec["candidate"])
                self.search.scorer.preload(self.task.part(rec["task"]), c,
                                           {k: ExampleResult.from_json(v) for k, v in rec["results"].items()})
                self._baselines.add((c.id, rec["task"]))

    # ---- the objective ----------------------------------------------------------------------------
    def __call__(self, c: Candidate, results, examples, penalize: bool = True) -> MultiScore:
        """Gain of each task over its own seed prompt on the same rows, aggregated; an old task of an
        extension scored below the start prompt's 95% CI on the same rows makes the candidate infeasible."""
        task, scorer = self.task, self.search.scorer
        gains, variances, detail, feasible = {}, {}, {}, True
        for name, idx in task.split_by_task(examples).items():
            part = task.part(name)
            rows = [task.rows[examples[i].key][1] for i in idx]
            mine = [results[i] for i in idx]
            seed = scorer.evaluate(part, Candidate(part.seed_prompt), rows)
            s, b = (summarize(part.metric, rs, rows, part.label_words) for rs in (mine, seed))
            diffs = [m.score - o.score for m, o in zip(mine, seed)]
            mean = sum(diffs) / len(diffs)
            variances[name] = (sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs)) if len(diffs) > 1 else 0.0
            gains[name] = s.score - b.score
            detail[name] = {"score": s.to_json(), "seed": b.to_json(), "gain": gains[name]}
            if name in task.constrained:
                before = summarize(part.metric, scorer.evaluate(part, self.start_candidate(), rows), rows,
                                   part.label_words)
                detail[name]["before"] = before.to_json()
                if s.score < before.ci_low:
                    feasible = False
        value, lo, hi = aggregate(task.objective, gains, variances)
        step = INFEASIBLE_LOGLIK if any(t.metric == "loglik" for t in task.parts) else INFEASIBLE
        penalty = 0.0 if feasible or not penalize else step
        return MultiScore(task.metric, value - penalty, len(examples), lo - penalty, hi - penalty, value, feasible, detail)

    def on_test(self, c: Candidate) -> MultiScore:
        """The objective on the test rows (reported, never used to choose; an old task that falls below
        its CI there is shown as infeasible but not penalised). The baselines' test results are logged."""
        for t in self.task.parts:
            self.test_results(Candidate(t.seed_prompt), t)
        for name in self.task.constrained:
            self.test_results(self.start_candidate(), self.task.part(name))
        rows = list(self.task.test)
        self.test_results(c, None)
        return self(c, self.search.scorer.evaluate(self.task, c, rows), rows, penalize=False)

    def final_extra_evals(self) -> int:
        return len(self.task.test)  # each task's seed on its test split too

    # ---- the summary ------------------------------------------------------------------------------
    def test_results(self, c: Candidate, part: Task | None) -> list[ExampleResult]:
        """A candidate's test results on one task (all tasks when ``part`` is None), logged once to
        ``test.jsonl`` with the task's name."""
        store = self.search.store
        out = []
        for t in [part] if part is not None else list(self.task.parts):
            results = self.search.scorer.evaluate(t, c, t.test)
            key = (c.id, t.name)
            if store is not None and key not in self._tested:
                store.append("test.jsonl", {"candidate": c.to_json(), "task": t.name, "keys": [ex.key for ex in t.test],
                                            "results": [r.to_json() for r in results]})
            self._tested.add(key)
            out += results
        return out

    def task_report(self, best: Candidate, start: Candidate) -> list[dict]:
        """Per task: its own seed, the start prompt and the best, on all of its dev and on test, with the
        gains, a paired test of best vs seed on test, the constraint of an extension and a single-task run."""
        from .multitask_report import single_task_best

        rows = []
        for t in self.task.parts:
            seed = Candidate(t.seed_prompt)
            entry = {"name": t.name, "metric": t.metric, "source": t.source, "seed_prompt": t.seed_prompt,
                     "old": t.name in self.task.constrained}
            outs = {}
            for label, c in (("seed", seed), ("start", start), ("best", best)):
                dev = self.search.scorer.evaluate(t, c, t.dev)
                test = self.test_results(c, t)
                entry[label] = {"dev": summarize(t.metric, dev, t.dev, t.label_words).to_json(),
                                "test": summarize(t.metric, test, t.test, t.label_words).to_json()}
                outs[label] = outcomes(test, t.test, t.label_words)
            entry["gain"] = {s: entry["best"][s]["score"] - entry["seed"][s]["score"] for s in ("dev", "test")}
            entry["paired_test"] = paired_test(t.metric, outs["seed"], outs["best"]).to_json()
            if entry["old"]:
                entry["change"] = {s: entry["best"][s]["score"] - entry["start"][s]["score"] for s in ("dev", "test")}
                entry["within_ci"] = {s: bool(entry["best"][s]["score"] >= entry["start"][s]["ci_low"]) for s in ("dev", "test")}
                entry["paired_test_vs_start"] = paired_test(t.metric, outs["start"], outs["best"]).to_json()
            if t.name in self.task.compare:
                entry["single_task"] = single_task_best(self.task.compare[t.name], t)
            rows.append(entry)
        return rows

    def report(self, best: Candidate, seed: Candidate) -> dict:
        """The per-task rows first (they log the test results), then best and seed on the objective."""
        task = self.task
        tasks = self.task_report(best, seed)
        multitask = {"objective": task.objective, "tasks": [t.name for t in task.parts],
                     "old_tasks": list(task.constrained),
                     "new_tasks": [t.name for t in task.parts if t.name not in task.constrained]
                     if task.constrained else []}
        return {"multitask": multitask, "best": self.search.describe(best, test=True),
                "seed": self.search.describe(seed, test=True), "tasks": tasks}

    def paired_test(self, best: Candidate, seed: Candidate) -> None:
        return None  # per task, in "tasks"


class MultiSearch(Search):
    """A Search with the multi-task objective, for code that builds one by hand (the runner passes
    ``objective=MultiTaskObjective()`` to a plain Search); it changes nothing of the loop."""

    def __init__(self, task: MultiTask, scorer, *args, **kwargs):
        super().__init__(task, scorer, *args, objective=MultiTaskObjective(), **kwargs)

    def baseline_candidates(self) -> list[tuple[Candidate, Task]]:
        return self.objective.baseline_candidates()
