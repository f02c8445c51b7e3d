"""What every command shares: one-line errors, logging set-up, the --json/--quiet and model options."""

from __future__ import annotations

import json
import logging
import sys

import click

from ..errors import PromptSearchError
from ..models.hardware import DEFAULT_DTYPE, DTYPES


class Group(click.Group):
    """Turns PromptSearchError, and a command's usage errors (a bad flag value), into one line on stderr and
    exit status 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PromptSearchError as e:
            # one line whatever the message holds: a model id, a token or a file name read from a server or a
            # file may carry a newline or a carriage return
            click.echo("error: " + " ".join(str(e).replace("\r", "\n").splitlines()), err=True)
            sys.exit(2)
        except click.UsageError as e:
            command = (e.ctx or ctx).command_path  # the whole path: "promptsearch tasks import", not "... import"
            message = " ".join(e.format_message().split())
            click.echo(f"error: {message} (see {command} --help)", err=True)
            sys.exit(2)


class Limited(click.ParamType):
    """A number on the command line under the rule ``limits.RULES[rule]`` that the same setting in a file keeps."""

    def __init__(self, rule: str):
        from ..limits import RULES

        self.rule, self.whole = rule, RULES[rule][0]
        self.name = "integer" if self.whole else "float"

    def convert(self, value, param, ctx):
        from ..limits import check

        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(value) if self.whole else float(value)
            except ValueError:
                self.fail(f"{value!r} is not {'a whole number' if self.whole else 'a number'}", param, ctx)
        try:
            return check(self.rule, number, "")
        except PromptSearchError as e:
            self.fail(str(e).lstrip(": "), param, ctx)


def setup(quiet: bool) -> None:
    import os
    import warnings

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING, format="%(levelname)s: %(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="transformers")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def stop_on_sigterm() -> None:
    """`kill PID` (SIGTERM) stops a command the way Ctrl-C does: a clean stop, nothing logged lost,
    and the command's own hint on how to continue."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def reporting(f):
    """--json and --quiet, taken by every command that reports."""
    f = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")(f)
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars or notes.")(f)


def examples_options(f):
    """Per-example outputs (input, expected, predicted, right or not) for `eval` and `show`."""
    f = click.option("--errors", is_flag=True, help="Print only the examples the prompt got wrong (all, or --examples N).")(f)
    return click.option("--examples", "n_examples", type=click.IntRange(0), default=None,
                        help="Print the first N examples: input, expected, predicted or generated, right or not.")(f)


def model_options(f):
    """The model to score with: in process, or served (``--model http://HOST:PORT/v1``; several URLs,
    comma-separated, are replicas). A served model's API key comes from PROMPTSEARCH_API_KEY or
    OPENAI_API_KEY in the environment, never from a flag."""
    f = click.option("--timeout", default=120.0, show_default=True, type=Limited("served.timeout"),
                     help="Served model: seconds to wait for one answer (then retried, with backoff).")(f)
    f = click.option("--scoring", default="auto", show_default=True,
                     type=click.Choice(["auto", "echo", "vllm", "sglang", "topk", "topk-chat", "generate"]),
                     help="Served model: how label words are scored (auto probes the server; see README).")(f)
    f = click.option("--concurrency", default=4, show_default=True, type=Limited("served.concurrency"),
                     help="Served model: requests in flight at once.")(f)
    f = click.option("--model-name", default=None, help="Served model: which model, where the server hosts several.")(f)
    f = click.option("--model", default=None, help="Local HF model directory, .gguf file, or http(s)://HOST:PORT/v1 "
                     "(comma-separated URLs: replicas) (default: embedded SmolLM2-135M-Instruct).")(f)
    f = click.option("--device", default="auto", show_default=True, help="cpu, cuda, or auto.")(f)
    f = click.option("--dtype", default=DEFAULT_DTYPE, show_default=True, type=click.Choice(DTYPES),
                     help="Local model: auto is bfloat16 on a CPU with AMX or AVX-512 bf16 or a GPU with bf16, else float32.")(f)
    f = click.option("--chat", is_flag=True, help="Render prompts through the tokenizer's chat template.")(f)
    return click.option("--batch-size", default=16, show_default=True, type=Limited("batch_size"))(f)


def unescape(prompt: str) -> str:
    """On the command line ``\\n`` and ``\\t`` stand for a newline and a tab (as users type them)."""
    return prompt.replace("\\n", "\n").replace("\\t", "\t")


def emit(as_json: bool, obj: dict, text: str) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False) if as_json else text)
