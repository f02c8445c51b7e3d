"""benchmarks/fewshot.py: design variants named as tweaks, alone or joined by "+"."""
from benchmarks import fewshot


def test_tweaks_joined_by_plus_merge_their_settings_strategy_by_strategy():
    both = fewshot.tweak_spec("labels-first+similar-16")
    assert both == {"options": {"templates": {"labels_at": "after-formats"},
                                "clarify": {"demo_rules": ["similar:4", "similar:8", "similar:16", "balanced:2"]}}}
    # two tweaks of one strategy: both options kept; a later tweak wins on the same option
    assert fewshot.tweak_spec("rules-last+similar-8")["options"]["clarify"] == {
        "rules_first": False, "demo_rules": ["similar:4", "similar:8", "balanced:2"]}
    assert fewshot.tweak_spec("similar-8+similar-4-only")["options"]["clarify"]["demo_rules"] == ["similar:4", "balanced:2"]
    assert fewshot.tweak_spec("eta-5+first-turn-round") == {"racing": {"eta": 5}, "first_turn": None}
    assert fewshot.tweak_spec("") == {}


def test_an_unknown_tweak_is_one_error_line():
    import pytest

    with pytest.raises(SystemExit, match="unknown tweak 'nope'"):
        fewshot.tweak_spec("similar-16+nope")
