"""benchmarks/analyses/default_across_seeds.py: the default against the best single strategy, over search seeds."""
import json

import pytest

from benchmarks.analyses import default_across_seeds as across


def _run(tmp_path, name, keys, scores):
    """A run directory as the runner leaves it: summary.json names the winner, test.jsonl holds its rows."""
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "summary.json").write_text(json.dumps({"best": {"id": "win"}}))
    rows = [{"candidate": {"id": "seed"}, "keys": keys, "results": [[0.0, "", None, []] for _ in keys]},
            {"candidate": {"id": "win"}, "keys": keys, "results": [[s, "", None, []] for s in scores]}]
    (d / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(d)


def _board(tmp_path, seed, rows):
    path = tmp_path / f"board-{seed}.json"
    path.write_text(json.dumps({"limits": {"seed": seed}, "rows": [
        {"task": t, "strategy": s, "status": "ok", "metric": "exact_match", "run_dir": d,
         "best_test": {"score": sum(sc) / len(sc)}} for t, s, d, sc in rows]}))
    return path


def test_means_over_seeds_and_a_paired_test_pooled_over_them(tmp_path, capsys):
    keys = ["k1", "k2", "k3", "k4"]
    runs = {  # (task, strategy, seed): per-example test outcomes of the winner
        ("a", "clarify", 0): [1, 1, 1, 0], ("a", "default", 0): [1, 0, 0, 0],
        ("a", "clarify", 1): [1, 0, 0, 0], ("a", "default", 1): [1, 1, 0, 1],
        ("a", "templates", 0): [0, 0, 0, 0], ("a", "templates", 1): [1, 1, 1, 1],
        ("a", "evolution", 0): [1, 1, 1, 1],  # one seed only: not comparable with two-seed means, left out
    }
    boards = []
    for seed in (0, 1):
        rows = [(t, s, _run(tmp_path, f"{t}-{s}-{k}", keys, sc), sc) for (t, s, k), sc in runs.items() if k == seed]
        boards.append(_board(tmp_path, seed, rows))
    out = tmp_path / "out.json"
    across.main([str(b) for b in boards] + ["--strategies", "clarify,default,templates,evolution", "--json", str(out)])
    item = json.loads(out.read_text())["tasks"][0]
    assert item["seeds"] == [0, 1] and item["scores"]["default"] == [0.25, 0.75] and "evolution" not in item["scores"]
    # means: clarify 0.5, default 0.5, templates 0.5 -> clarify is first among the tied single strategies
    assert item["best_single"] == "clarify" and item["mean_gap"] == pytest.approx(0.0)
    # seed spread: clarify 0.75, 0.25 and default 0.25, 0.75 -> variance 0.125 each, / 2 seeds, summed: SE 0.354
    assert item["gap_se"] == pytest.approx((0.125 / 2 + 0.125 / 2) ** 0.5)
    # seed 0: clarify alone right on k2, k3; seed 1: default alone right on k2, k4 -> 2 vs 2 discordant over 8 pairs
    assert item["pooled_n"] == 8 and item["paired"]["detail"] == "2 vs 2 discordant" and item["paired"]["p_value"] == 1.0
    assert "within 0.02 of the best single strategy's mean over seeds on 1 of 1 tasks" in capsys.readouterr().out


def test_a_gap_beyond_two_points_is_named_and_unpaired_rows_are_refused(tmp_path, capsys):
    keys = ["k1", "k2", "k3", "k4"]
    board = _board(tmp_path, 0, [("a", "clarify", _run(tmp_path, "c", keys, [1, 1, 1, 1]), [1, 1, 1, 1]),
                                 ("a", "default", _run(tmp_path, "d", keys, [1, 1, 1, 0]), [1, 1, 1, 0])])
    across.main([str(board)])
    assert "behind: a" in capsys.readouterr().out
    other = _board(tmp_path, 1, [("a", "clarify", _run(tmp_path, "c1", keys, [1, 1, 1, 1]), [1, 1, 1, 1]),
                                 ("a", "default", _run(tmp_path, "d1", ["x"] + keys[1:], [1, 1, 1, 0]), [1, 1, 1, 0])])
    with pytest.raises(SystemExit, match="a seed 1: the two runs were tested on different rows"):
        across.main([str(other)])
    with pytest.raises(SystemExit, match="appears twice"):
        across.main([str(board), str(board)])


def test_holm_names_only_the_gaps_that_survive_testing_every_task(tmp_path, capsys):
    keys = [f"k{i}" for i in range(12)]
    rows = [("b", "clarify", _run(tmp_path, "bc", keys, [1] * 12), [1] * 12),  # default wrong on all 12: p = 2 / 2**12
            ("b", "default", _run(tmp_path, "bd", keys, [0] * 12), [0] * 12),
            ("c", "clarify", _run(tmp_path, "cc", keys, [1] * 6 + [0] * 6), [1] * 6 + [0] * 6),  # 3 vs 1: p = 0.625
            ("c", "default", _run(tmp_path, "cd", keys, [1] * 3 + [0] * 8 + [1]), [1] * 3 + [0] * 8 + [1])]
    out = tmp_path / "out.json"
    across.main([str(_board(tmp_path, 0, rows)), "--json", str(out)])
    tasks = {t["task"]: t["paired"] for t in json.loads(out.read_text())["tasks"]}
    assert tasks["b"]["p_holm"] == pytest.approx(2 * 2 / 2**12) and tasks["c"]["p_holm"] == pytest.approx(0.625)
    assert "after Holm's adjustment over 2 tasks (p < 0.05): behind on b; ahead on none" in capsys.readouterr().out
