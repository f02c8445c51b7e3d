"""The command line: parses, calls the library, prints. Heavy imports happen inside commands.

Every command is in the one list below; a module per command group."""

from __future__ import annotations

import click

from . import cache, feedback, model, predict, prompts, report, search, tasks, ui
from .common import Group


@click.group(cls=Group)
@click.version_option(package_name="promptsearch")
def main():
    """Find the hard prompt that makes a frozen language model do a task best."""


COMMANDS = [
    search.run, search.eval_, search.show, tasks.tasks, search.strategies,
    predict.predict,
    feedback.rate, feedback.refine,
    report.report,
    prompts.export, prompts.prompts,
    cache.cache,
    ui.ui,
    model.model,
]
for _command in COMMANDS:
    main.add_command(_command)
