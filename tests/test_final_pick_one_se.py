"""benchmarks/studies/final_pick_one_se.py: the one-standard-error pick among a run's top prompts."""
from benchmarks.studies import final_pick_one_se as one_se


def _entry(id_, score, prompt="p {input}", edit="", demos=None, n=48):
    return {"id": id_, "prompt": prompt, "edit": edit, "demos": demos, "dev": {"score": score, "n": n}}


def test_demonstrations_counted_from_draws_and_rules():
    assert one_se.demonstrations(_entry("a", 0.5, edit="demos:8#0+clarifier:Be precise.")) == 8
    assert one_se.demonstrations(_entry("a", 0.5, edit="demos=similar:4", demos="similar:4")) == 4
    assert one_se.demonstrations(_entry("a", 0.5, edit="format")) == 0


def test_the_cheapest_prompt_within_one_standard_error_of_the_best():
    # best 0.75 on 48 rows: SE = sqrt(0.75 * 0.25 / 48) = 0.0625, so 0.6875 is in and 0.6667 is out
    best = _entry("best", 0.75, edit="demos:8#0")
    near = _entry("near", 0.6875, prompt="a longer prompt {input}", edit="format")
    nearer_short = _entry("short", 0.6875, prompt="{input}", edit="format")
    far = _entry("far", 0.6667, prompt="{input}", edit="")
    assert one_se.one_se_pick([best, near, far])["id"] == "near"
    assert one_se.one_se_pick([best, near, nearer_short])["id"] == "short"
    assert one_se.one_se_pick([best, far])["id"] == "best"


def test_the_paired_rule_uses_the_spread_of_per_row_differences():
    best = _entry("best", 0.75, edit="demos=balanced:2", demos="balanced:2", n=8)
    plain = _entry("plain", 0.5, prompt="{input}", edit="format", n=8)
    rows = {"best": dict(zip("abcdefgh", [1, 0, 1, 1, 1, 1, 1, 0]))}
    # ahead on 2 rows, behind on none: mean 0.25, per-row var 0.2143, SE sqrt(0.2143 / 8) = 0.164 -> best stays
    rows["plain"] = dict(zip("abcdefgh", [0, 0, 1, 1, 1, 1, 0, 0]))
    assert one_se.paired_se_pick([best, plain], rows)["id"] == "best"
    # ahead on 2, behind on 1: mean 0.125, var 0.4107, SE 0.227 -> the cheaper prompt
    rows["plain"] = dict(zip("abcdefgh", [0, 1, 1, 1, 1, 1, 0, 0]))
    assert one_se.paired_se_pick([best, plain], rows)["id"] == "plain"
    # ahead on 1 alone: mean 0.125, var 0.125, SE exactly 0.125 -> within one SE
    rows["plain"] = dict(rows["best"], a=0)
    assert one_se.paired_se_pick([best, plain], rows)["id"] == "plain"
