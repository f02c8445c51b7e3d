"""`promptsearch tasks`: list or describe tasks, and `tasks import` to make one from your own table."""

from __future__ import annotations

import click

from .common import Limited, emit, reporting, setup


@click.group(invoke_without_command=True)
@click.option("--task", default=None, help="Bundled task name or a task directory (default: sst2-mini).")
@reporting
@click.pass_context
def tasks(ctx, task, as_json, quiet):
    """List bundled tasks (or describe one with --task); `tasks import` makes a task from your data."""
    if ctx.invoked_subcommand is not None:
        return
    from ..task import bundled_tasks, load_task

    names = [task] if task else bundled_tasks()
    rows = [describe(load_task(name)) for name in names]
    text = "\n".join(f"{r['name']:<14} {r['kind']:<15} {r['metric']:<12} train/dev/test {r['train']}/{r['dev']}/{r['test']}"
                     f"  {r['description']}" for r in rows)
    if task:  # one task described: what a prompt for it needs, not only with --json (#30)
        r = rows[0]
        text += "".join(f"\n  {k + ':':<13}{v}" for k, v in (
            ("label words", ", ".join(r["label_words"]) or "- (generation)"), ("seed prompt", unescaped(r["seed_prompt"])),
            ("source", r["source"])))
    emit(as_json, {"tasks": rows}, text)


def unescaped(prompt: str) -> str:
    """A prompt on one line as it is typed on the command line (newline as \\n)."""
    return prompt.replace("\n", "\\n").replace("\t", "\\t")


def describe(t) -> dict:
    return {"name": t.name, "kind": t.kind, "metric": t.metric, "label_words": list(t.label_words),
            "train": len(t.train), "dev": len(t.dev), "test": len(t.test), "seed_prompt": t.seed_prompt,
            "description": t.description, "source": t.source}


@tasks.command("import")
@click.argument("file", type=click.Path())
@click.option("--input", "input_col", multiple=True, help="The column holding each example's input text "
              "[default: input]; give it again for several columns (joined a line each, \"column: text\").")
@click.option("--output", "output_col", default="output", show_default=True,
              help="The column holding the answer (a label word or class index; for generation, a list of "
              "accepted answers may be given).")
@click.option("--label-words", default=None, help="Comma-separated label words: a classification task (else generation).")
@click.option("--split-ratios", default=None, help="train,dev,test shares of a seeded split [default: 0.6,0.2,0.2; "
              "stratified by label for classification].")
@click.option("--split-column", default=None, help="A column saying each row's split (train, dev or validation, test).")
@click.option("--seed", type=Limited("seed"), default=0, show_default=True, help="Seed of the drawn splits.")
@click.option("--name", default=None, help="The task's name [default: the --out folder's name].")
@click.option("--metric", default=None, help="accuracy or macro_f1 (classification); exact_match or contains (generation).")
@click.option("--seed-prompt", default=None, help="The task's starting prompt, with an {input} slot.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The task folder to write (new or empty).")
@reporting
def import_(file, input_col, output_col, label_words, split_ratios, split_column, seed, name, metric, seed_prompt, out,
            as_json, quiet):
    """Make a task folder from a CSV, JSONL or Parquet file, or a Hugging Face datasets save_to_disk folder."""
    setup(quiet)
    from ..errors import PromptSearchError
    from ..task_import import DEFAULT_RATIOS, import_file, parse_ratios
    from .common import unescape

    if split_ratios and split_column:
        raise PromptSearchError("--split-ratios draws the splits, --split-column reads them: give one")
    words = tuple(w.strip() for w in label_words.split(",")) if label_words else ()
    from ..task import label_gaps, load_task

    folder = import_file(file, out, input_col or ("input",), output_col, words, split_column,
                         parse_ratios(split_ratios) if split_ratios else DEFAULT_RATIOS, seed, name, metric,
                         unescape(seed_prompt) if seed_prompt else None)
    task = load_task(str(folder), seed=seed)
    row, gaps = describe(task), label_gaps(task)
    if not as_json:  # on stderr, as a run's warnings are; --json carries them
        for line in gaps:
            click.echo(f"warning: {line}", err=True)
    emit(as_json, {"task": row, "out": str(out), "warnings": gaps},
         f"wrote {out}: {row['kind']} ({row['metric']}), train/dev/test {row['train']}/{row['dev']}/{row['test']}")
