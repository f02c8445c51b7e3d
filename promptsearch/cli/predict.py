"""`promptsearch predict`: an exported prompt applied to new, unlabelled inputs, one JSON line out per input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ..errors import PromptSearchError
from .common import emit, model_options, reporting, setup

LINE_FORM = 'each line must be a JSON string or an object with an "input" string'


def read_inputs(path: str) -> list[str]:
    """Inputs from a JSONL file or stdin ('-'): each line a JSON object with an "input" string (other fields are
    ignored) or a JSON string; from a ``.txt`` file, each line as it is (no JSON: a line that looks like JSON is
    still text). A bad line is one error naming it. Blank lines are skipped."""
    from ..files import decode, parse_json, read_bytes, read_stdin

    raw = read_stdin() if path == "-" else read_bytes(path)
    where = "stdin" if path == "-" else str(path)
    plain = path != "-" and Path(path).suffix.lower() == ".txt"  # what a newcomer writes first: a line an input
    texts = []
    for lineno, line in enumerate(raw.splitlines(), 1):
        line = decode(line, where, lineno)
        if not line.strip():
            continue
        if plain:
            texts.append(line.rstrip("\r"))
            continue
        try:
            row = parse_json(line, f"{where}:{lineno}")
        except PromptSearchError as e:  # most often plain text: say what a line must be, and where plain text goes
            other = ("give the inputs as arguments, or in a *.txt file" if path == "-" else "name the file *.txt")
            raise PromptSearchError(f"{e}; {LINE_FORM}, such as {{\"input\": \"a gripping film\"}} (or {other}: "
                                    "a line an input, as it is)") from None
        text = row.get("input") if isinstance(row, dict) else row
        if not isinstance(text, str):
            raise PromptSearchError(f"{where}:{lineno}: {LINE_FORM}")
        texts.append(text)
    if not texts:
        raise PromptSearchError(f"{where}: no inputs")
    return texts


@click.command()
@click.option("--artifact", "artifact_file", required=True, type=click.Path(),
              help="An exported prompt (promptsearch export): scored exactly as the search scored it.")
@click.argument("inputs", nargs=-1)
@click.option("--input-file", default=None, help="JSONL of inputs ({\"input\": ...} or a JSON string a line), a .txt "
              "file (a line an input, as it is), or - for stdin (JSONL). Or give the inputs as arguments.")
@click.option("--output", "-o", "out", type=click.Path(dir_okay=False), default=None,
              help="Write the predictions here (JSONL, written whole or not at all) instead of stdout.")
@click.option("--allow-other-model", is_flag=True, help="Predict with a model whose weights differ from the recorded ones.")
@model_options
@reporting
def predict(artifact_file, inputs, input_file, out, allow_other_model, model, model_name, concurrency, scoring, timeout,
            device, dtype, chat, batch_size, as_json, quiet):
    """Predict new inputs with an exported prompt: one JSON line per input (prediction; label probabilities
    and scores for classification). The inputs are arguments (promptsearch predict --artifact prompt.json
    "a gripping film" "dull") or a file (--input-file)."""
    setup(quiet)
    if bool(inputs) == bool(input_file):
        raise click.UsageError("give the inputs as arguments or as --input-file FILE (- for stdin), one of the two"
                               if inputs else "no inputs: give them as arguments (\"a gripping film\") or as "
                               "--input-file FILE (- for stdin)")
    from .. import artifact, monitor
    from ..models import is_served
    from ..prompt import Prompt

    if chat:
        raise PromptSearchError("--chat: the artifact records its chat mode; drop --chat")
    art = artifact.read(artifact_file)
    texts = list(inputs) if inputs else read_inputs(input_file)
    from ..files import check_text

    for n, text in enumerate(inputs, 1):  # bytes that are not UTF-8 on the command line: before the model loads
        check_text(text, f"input argument {n}")
    spec = model if model is not None else art.model["spec"]
    if model is None:
        from ..runner import require_named

        require_named(spec, [], "model")  # never connect (with the API key) to a URL read from the artifact
    from ..api import load_model

    loaded = load_model(spec, device=device, dtype=art.model["dtype"] if model is None else dtype,
                        model_name=model_name, concurrency=concurrency, scoring=scoring, timeout=timeout)
    monitor.check_model(art, artifact.model_fingerprint(spec, loaded=loaded if is_served(spec) else None), allow_other_model)
    prompt = Prompt.from_artifact(art, artifact_file)
    started = time.monotonic()
    predictions = prompt.predict(texts, loaded, batch_size=batch_size, progress=not quiet)
    seconds = time.monotonic() - started
    lines = [json.dumps(p.to_json(), ensure_ascii=False) for p in predictions]
    if out:
        artifact.atomic_write(Path(out), ("\n".join(lines) + "\n").encode("utf-8"))
    unanswered = sum(p.error is not None for p in predictions)
    report = {"artifact": str(artifact_file), "n": len(texts), "seconds": round(seconds, 3),
              "examples_per_second": round(len(texts) / seconds, 2) if seconds else None, "output": out,
              "text_alone": prompt.plain, "unanswered": unanswered}
    if unanswered and not quiet and not as_json:
        click.echo(f"note: {unanswered} of {len(texts)} inputs have no prediction: with this prompt they do not fit "
                   "the model's context (their lines say so)", err=True)
    if as_json:
        emit(True, report if out else {**report, "predictions": [p.to_json() for p in predictions]}, "")
    elif out:
        if not quiet:
            click.echo(f"wrote {len(lines)} predictions to {out} ({report['examples_per_second']} inputs/s)")
    else:
        click.echo("\n".join(lines))
