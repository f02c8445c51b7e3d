"""Reports on runs: best-so-far dev score against example-evaluations (PNG) and Markdown tables.

Works on finished runs (``summary.json`` present) and on unfinished ones (only ``candidates.jsonl``,
possibly with a torn last line): the curves come from the log, the test scores from the summary.

**What the curve shows.** Racing scores a new candidate on a small dev prefix first (16 examples by
default), so a score at a small rung is noisy and a lucky 16-example score must not count as "best".
At every logged rung the curve takes the candidate the search itself would return if stopped right
then: each candidate counts with its score at the *largest rung it has reached so far*, and candidates
are ranked the way the search's leaderboard ranks them (most dev examples first, then the metric,
then the mean gold log-likelihood, then age). The seed prompt climbs to all of dev first (its first
few points), after which the overall curve is the dev score of the best prompt checked on all of dev
so far and never goes down.
A per-strategy line applies the same rule to that strategy's candidates only; it can step down when
one of its candidates first reaches a larger rung (its best is then judged on more examples).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PromptSearchError
from .format import fmt, md_cell, missing, options_note
from .store import best_records, tie_value

OVERALL = "overall"


@dataclass
class RunData:
    """What a run directory holds, read once."""

    dir: Path
    config: dict
    records: list[dict]
    summary: dict | None
    name: str = ""
    strategies: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.summary is not None

    @property
    def task(self) -> str:
        if self.summary:
            return self.summary["task"]
        return Path(self.config.get("task") or "sst2-mini").name

    @property
    def spent(self) -> list[str]:
        """The configured strategies that spent evaluations: the summary's stages where recorded, else those
        with a logged candidate. A title must not claim a strategy that never ran (#30)."""
        stages = (self.summary or {}).get("stages")
        if stages is not None:
            ran = {st["strategy"] for st in stages if st.get("evals", 0) > 0}
        else:
            ran = {r["candidate"].get("strategy") for r in self.records}
        return [s for s in self.strategies if s in ran]

    def strategies_text(self, sep: str = " + ") -> str:
        idle = [s for s in self.strategies if s not in self.spent]
        text = sep.join(self.spent) or "no strategy"
        return text + (f" ({', '.join(idle)}: 0 evaluations)" if idle else "")

    @property
    def metric(self) -> str:
        if self.summary:
            return self.summary["metric"]
        return self.records[0]["score"]["metric"]


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory; a directory that is not a run, or a run with nothing scored, is an error."""
    from .store import RunStore

    path = Path(run_dir)
    if not path.is_dir():
        raise PromptSearchError(f"{run_dir}: no such run directory")
    store = RunStore.open(path)
    from .runner import read_config

    config = read_config(store)  # checked: a damaged config.json is one line, not a TypeError in a plot
    records = [r for r in store.read("candidates.jsonl") if _valid(r)]
    if not records:
        raise PromptSearchError(f"{run_dir}: no scored candidates yet (candidates.jsonl is missing or empty)")
    return RunData(dir=path, config=config, records=records, summary=store.checked_summary(), name=path.name,
                   strategies=list(config.get("strategies") or []))


def _valid(rec) -> bool:
    return isinstance(rec, dict) and {"candidate", "size", "score", "evals_used"} <= set(rec)


def curves(run: RunData) -> dict[str, list[tuple[int, float]]]:
    """Best-so-far dev score after each logged rung, as (example-evaluations, score) points.

    Keys: ``overall`` (all candidates, the seed included) and one per proposing strategy (``seed``
    included). A line gets a point only when its incumbent's score changes."""
    return {k: [(x, y) for x, y, _ in v] for k, v in sized_curves(run).items()}


def drops(points: list[tuple[int, float, int]]) -> list[tuple[int, float, float, int, int]]:
    """Where a best-so-far line falls: (evaluations, from, to, dev rows before, dev rows now). It falls only
    when its best is judged on more dev rows; the plot marks each fall and says so (#30)."""
    return [(x, y0, y, n0, n) for (_, y0, n0), (x, y, n) in itertools.pairwise(points) if y < y0]


def sized_curves(run: RunData) -> dict[str, list[tuple[int, float, int]]]:
    """``curves`` with the dev rows the incumbent was judged on at each point."""
    known: dict[str, tuple] = {}  # candidate id -> (size, score, tie, -order, strategy)
    out: dict[str, list[tuple[int, float]]] = {}
    for rec in run.records:
        cand = rec["candidate"]
        cid, size = cand["id"], rec["size"]
        if cid in known and size < known[cid][0]:
            continue
        order = known[cid][3] if cid in known else -len(known)
        known[cid] = (size, rec["score"]["score"], tie_value(rec.get("tie")), order, cand.get("strategy") or "seed")
        for line in (OVERALL, known[cid][4]):
            pool = [k for k in known.values() if line == OVERALL or k[4] == line]
            best = max(pool, key=lambda k: k[:4])
            points = out.setdefault(line, [])
            if not points or points[-1][1] != best[1]:
                points.append((rec["evals_used"], best[1], best[0]))
    return out


def incumbent(run: RunData) -> dict:
    """The candidate record the search ranks first given the log so far (the summary's best when finished)."""
    return best_records(run.records)[0]


def prompt_text(cand: dict) -> str:
    """A candidate as one would read it: soft prompts and custom label words are named."""
    text = cand.get("prompt") or ""
    if cand.get("soft"):
        text = f"[soft prompt {cand['soft']}] " + text
    if cand.get("label_words"):
        text += f"  (label words: {', '.join(cand['label_words'])})"
    return text + options_note(cand)


def run_row(run: RunData) -> dict:
    """One table row: seed and best test scores (finished runs), dev, evaluations, seconds, best prompt."""
    last = run.records[-1]
    s = run.summary
    row = {"run": str(run.dir), "name": run.name, "task": run.task, "metric": run.metric,
           "strategies": run.strategies, "strategies_run": run.spent, "strategies_text": run.strategies_text("+"),
           "finished": run.finished}
    if s:
        row.update(seed_test=s["seed"].get("test"), best_test=s["best"].get("test"), seed_dev=s["seed"]["dev"],
                   best_dev=s["best"]["dev"], estimate=s.get("estimate"), evals=s["budget_used"]["evals"],
                   seconds=s["budget_used"]["seconds"], candidates=s["budget_used"]["candidates"],
                   best_prompt=prompt_text(s["best"]), best_strategy=s["best"].get("strategy"))
    else:
        top = incumbent(run)
        seed = [r for r in run.records if r["candidate"].get("strategy") == "seed"]
        seed_dev = max(seed, key=lambda r: r["size"])["score"] if seed else None
        row.update(seed_test=None, best_test=None, seed_dev=seed_dev, best_dev=top["score"], estimate=None,
                   evals=max(r["evals_used"] for r in run.records), seconds=last.get("seconds"),
                   candidates=len({r["candidate"]["id"] for r in run.records}),
                   best_prompt=prompt_text(top["candidate"]), best_strategy=top["candidate"].get("strategy"))
    if s and s.get("multitask"):
        row["universal"] = universal_means(s)
    row["curves"] = {k: [list(p) for p in v] for k, v in curves(run).items()}
    return row


def universal_means(s: dict) -> dict:
    """A universal run's raw scores for the main table: the mean over its tasks of each task's own seed on test,
    and of the universal best on test and dev; the gain is the run's objective (#30: its summary's seed and best
    "scores" are gains, which sat beside other runs' raw scores in the same columns)."""
    tasks = s["tasks"]
    mean = lambda f: sum(f(t) for t in tasks) / len(tasks)
    return {"seed_test": mean(lambda t: t["seed"]["test"]["score"]), "best_test": mean(lambda t: t["best"]["test"]["score"]),
            "best_dev": mean(lambda t: t["best"]["dev"]["score"]), "gain_test": s["improvement"]["test"], "tasks": len(tasks),
            "objective": s["multitask"]["objective"]}


def gain_text(r: dict) -> str:
    if r.get("universal"):
        return f"{r['universal']['gain_test']:+.3f} ({r['universal']['objective']} over tasks)"
    if missing(r.get("seed_test")) or missing(r.get("best_test")):
        return "-"
    return f"{r['best_test']['score'] - r['seed_test']['score']:+.3f}"


def estimate_text(r: dict) -> str:
    """The winner's estimate as ``run`` prints it, with n, CI and which rows gave it: the held-out rows no choice
    saw, or the dev rows that chose it (biased upward by that choice; also an unfinished run's leader). The table
    showed the dev score alone, without n or CI, where the run had printed a held-out estimate beside it."""
    est = r.get("estimate")
    if est and not missing(est):
        which = "held-out" if est.get("which") == "holdout" else "dev, chose it"
        return f"{fmt(est, ci=True, n=True)} ({which})"
    return "-" if missing(r.get("best_dev")) else f"{fmt(r['best_dev'], ci=True, n=True)} (dev, chose it)"


# ---- Markdown -----------------------------------------------------------------------------------
def markdown_table(rows: list[dict], prompt_width: int = 80) -> str:
    """Rows from ``run_row`` as a Markdown table."""
    header = ("| run | task | strategies | seed test | best test [95% CI] | best estimate [95% CI] | gain (test) | evals | "
              "seconds | best prompt |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = r["name"] + ("" if r["finished"] else " (unfinished)")
        seconds = f"{r['seconds']:.0f}" if r.get("seconds") is not None else "-"
        u = r.get("universal")
        if u:  # raw scores in the raw-score columns: each the mean over the run's tasks
            mean = f" (mean of {u['tasks']} tasks)"
            scores = (f"{u['seed_test']:.3f}{mean} | {u['best_test']:.3f}{mean} | "
                      f"{u['best_dev']:.3f} (mean of {u['tasks']} tasks; dev, chose it)")
        else:
            scores = f"{fmt(r['seed_test'], n=True)} | {fmt(r['best_test'], ci=True, n=True)} | {estimate_text(r)}"
        strategies = r.get("strategies_text") or "+".join(r["strategies"])
        lines.append(f"| {md_cell(name)} | {md_cell(r['task'])} | {md_cell(strategies)} | {scores} | {gain_text(r)} | "
                     f"{r['evals']} | {seconds} | `{md_cell(r['best_prompt'], prompt_width)}` |")
    return "\n".join(lines)


# ---- plots --------------------------------------------------------------------------------------
def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # Agg: no display, no pyplot global state
    return fig


COLORS = {"templates": "tab:blue", "clarify": "tab:orange", "autoprompt": "tab:green", "evolution": "tab:red",
          "soft-prompt": "tab:purple", "refine": "tab:brown", "seed": "tab:gray", "default": "black"}
EXTRA_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
                "tab:cyan", "black"]
LINESTYLES = ["-", "--", "-.", ":"]


def _color(name: str, i: int) -> str:
    return COLORS.get(name, EXTRA_COLORS[i % len(EXTRA_COLORS)])


def _step(ax, points, end: int, **kw) -> None:
    if not points:
        return
    xs = [p[0] for p in points] + [max(end, points[-1][0])]
    ys = [p[1] for p in points] + [points[-1][1]]
    ax.step(xs, ys, where="post", **kw)


def plot_run(run: RunData, path: str | Path) -> Path:
    return _save(run_figure(run), path)


def run_figure(run: RunData):
    """One run: the overall best-so-far, one line per strategy, and every scored rung as a dot. The overall
    line is drawn wide and pale underneath, so a strategy's line that coincides with it stays visible."""
    lines = curves(run)
    end = max(r["evals_used"] for r in run.records)
    fig = _figure(9, 5.2)
    ax = fig.add_subplot(1, 1, 1)
    names = [n for n in lines if n != OVERALL]
    for i, name in enumerate(names):
        recs = [r for r in run.records if (r["candidate"].get("strategy") or "seed") == name]
        ax.scatter([r["evals_used"] for r in recs], [r["score"]["score"] for r in recs],
                   s=[8 + 40 * r["size"] / max(x["size"] for x in run.records) for r in recs],
                   color=_color(name, i), alpha=0.25, linewidths=0)
        _step(ax, lines[name], end, color=_color(name, i), lw=1.6, label=name, zorder=3)
    _step(ax, lines[OVERALL], end, color="black", lw=5, alpha=0.3, label="overall (what the search returns)", zorder=2)
    for x, y0, y, n0, n in drops(sized_curves(run)[OVERALL]):
        ax.annotate(f"falls: best now judged on {n} dev rows, not {n0}", (x, y), xytext=(6, -12),
                    textcoords="offset points", fontsize=7, color="dimgray", arrowprops={"arrowstyle": "-", "color": "gray"})
    status = "" if run.finished else " (unfinished)"
    ax.set_title(f"{run.task}: {run.strategies_text()}{status}", fontsize=11)
    ax.set_xlabel("example-evaluations (forward passes)")
    ax.set_ylabel(f"best-so-far dev {run.metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.text(0.01, 0.01, "dots: every scored rung (size ~ dev examples); lines: best candidate at its largest rung so far",
             fontsize=7, color="dimgray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def plot_compare(runs: list[RunData], path: str | Path, labels: list[str] | None = None, title: str = "",
                 columns: int = 3) -> Path:
    """Several runs: one panel per task, one line per run (its overall best-so-far dev score)."""
    labels = labels or [run.name for run in runs]
    tasks = list(dict.fromkeys(run.task for run in runs))
    cols = min(columns, len(tasks))
    rows = math.ceil(len(tasks) / cols)
    ncol = min(len(set(labels)), 3 * cols)
    legend_h = 0.3 * math.ceil(len(set(labels)) / ncol) + 0.15
    if title:
        import textwrap

        title = textwrap.fill(title, width=int(80 * cols))
    title_h = 0.3 * (title.count("\n") + 1) + 0.1 if title else 0.0
    height = 3.9 * rows + legend_h + title_h
    fig = _figure(5.4 * cols, height)
    styles = {}
    for k, task in enumerate(tasks):
        ax = fig.add_subplot(rows, cols, k + 1)
        group = [(run, label) for run, label in zip(runs, labels) if run.task == task]
        for run, label in group:
            end = max(r["evals_used"] for r in run.records)  # each line stops where its run stopped
            if label not in styles:
                styles[label] = (_color(label, len(styles)), LINESTYLES[len(styles) % len(LINESTYLES)])
            color, style = styles[label]
            _step(ax, curves(run)[OVERALL], end, color=color, ls=style, lw=1.8, label=label, alpha=0.85)
        ax.set_title(f"{task} ({group[0][0].metric})", fontsize=10)
        ax.set_xlabel("example-evaluations", fontsize=8)
        ax.set_ylabel("best-so-far dev", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    handles = {}
    for ax in fig.axes:  # one legend for all panels, below them
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.05 / height, va="top")
    fig.tight_layout(rect=(0, legend_h / height, 1, 1))  # (tight_layout makes room for the suptitle)
    return _save(fig, path)


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def unique_names(dirs: list[Path]) -> list[str]:
    """Short distinct names for run directories: the folder name, with parents added where two clash."""
    parts = [Path(d).resolve().parts for d in dirs]
    depth = 1
    while depth < max(len(p) for p in parts):
        names = ["-".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            break
        depth += 1
    names = ["-".join(p[-depth:]) for p in parts]
    return [re.sub(r"[^A-Za-z0-9._+-]+", "_", n) for n in names]


def report(run_dirs: list[str | Path], out: str | Path | None = None) -> dict:
    """Plots and a Markdown table for runs. One run: ``curve.png`` and ``report.md`` in ``out`` (default
    the run directory). Several: ``NAME.png`` per run, ``compare.png`` (one panel per task) and
    ``report.md`` in ``out`` (default ``./promptsearch-report``)."""
    if not run_dirs:
        raise PromptSearchError("give at least one RUN_DIR")
    runs = [load_run(d) for d in run_dirs]
    names = unique_names([r.dir for r in runs])
    for run, name in zip(runs, names):
        run.name = name
    out = Path(out) if out else (runs[0].dir if len(runs) == 1 else Path("promptsearch-report"))
    if out.exists() and not out.is_dir():
        raise PromptSearchError(f"{out}: not a directory")
    figures = []
    if len(runs) == 1:
        figures.append(plot_run(runs[0], out / "curve.png"))
    else:
        figures += [plot_run(run, out / f"{name}.png") for run, name in zip(runs, names)]
        figures.append(plot_compare(runs, out / "compare.png", labels=names))
    rows = [run_row(run) for run in runs]
    table = markdown_table(rows)
    multi = [(run, row) for run, row in zip(runs, rows) if run.summary and run.summary.get("multitask")]
    if multi:  # a universal prompt: each task beside its own seed (multitask_report.py)
        from .multitask_report import markdown_tasks

        for run, row in multi:
            row["tasks"] = run.summary["tasks"]
        table += "\n\n" + "\n\n".join(markdown_tasks(run.name, run.summary) for run, _ in multi)
    md = out / "report.md"
    md.write_text("# promptsearch report\n\n" + table + "\n\n" + "\n".join(f"![{f.stem}]({f.name})" for f in figures)
                  + "\n", encoding="utf-8")
    return {"runs": rows, "figures": [str(f) for f in figures], "markdown": str(md), "table": table}
