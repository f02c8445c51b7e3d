"""Defaults the library and the CLI's help share, in a module light enough for `promptsearch --help` to import
(the runner pulls in numpy and the search)."""

BUDGET = {"max_candidates": 300, "max_evals": 6000, "max_seconds": 480}
FINAL_CHECK = 3  # candidates scored on all of dev at the end (config "top_k"; `run --final-check`)
