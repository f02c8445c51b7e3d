"""The scoreboard command: every strategy side by side on real tasks, same budget, fixed seeds.

    python benchmarks/run_all.py --quick     # 3 tasks, small dev/test/budget (what `make bench` runs)
    python benchmarks/run_all.py             # 21 tasks (sst2, agnews, trec + the 18 instruction-induction tasks)
    python benchmarks/run_all.py --mode targets     # issue 17's targets: sst2, agnews, trec; own dev, whole test
                                                    # (agnews 2,000 rows), 8,000 evals, the default chain
    python benchmarks/run_all.py --mode induction   # 18 induction tasks: default vs ape vs clarify, means vs seed
    python benchmarks/run_all.py --mode targets --strategies default,templates   # name other strategies
    # split over two processes (one per core), then merge:
    python benchmarks/run_all.py --threads 1 --tasks sst2,agnews --results-dir /tmp/a &
    python benchmarks/run_all.py --threads 1 --tasks trec,antonyms --results-dir /tmp/b
    python benchmarks/run_all.py --merge /tmp/a/scoreboard-full-*.json /tmp/b/scoreboard-full-*.json

The work is in ``scoreboard.py`` (what runs, merging) and ``scoreboard_render.py`` (Markdown, table, figure);
benchmarks/README.md says what is measured.
"""

if __package__:  # python -m benchmarks.run_all
    from .scoreboard import main
else:  # python benchmarks/run_all.py: benchmarks/ is first on the path
    from scoreboard import main

if __name__ == "__main__":
    main()
