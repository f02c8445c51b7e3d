"""``python -m promptsearch``: the same as the ``promptsearch`` command."""

from .cli import main

main()
