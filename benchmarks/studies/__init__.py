"""Method studies: one-off comparisons of ways to do something, run to choose a default or an option.

Their numbers describe the code of the day they ran (benchmarks/RESULTS.md says which commit); they are kept
runnable (``python benchmarks/studies/X.py``) but not rerun as the code changes. A package so tests import them.
"""
