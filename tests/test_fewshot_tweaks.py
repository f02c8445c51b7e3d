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
    assert fewshot.tweak_spec("ensemble-5+contrast") == {"final_ensemble": 5, "options": {"clarify": {"contrast": True}}}
    assert fewshot.tweak_spec("") == {}


def test_an_unknown_tweak_is_one_error_line():
    import pytest

    with pytest.raises(SystemExit, match="unknown tweak 'nope'"):
        fewshot.tweak_spec("similar-16+nope")


def test_merge_renames_a_method_of_one_file_and_drops_another(tmp_path):
    import json

    def part(name, methods):
        row = {"task": "sum", "draw": 0, "test_rows": 2, "methods": methods}
        (tmp_path / name).write_text(json.dumps({"results": [row]}))
        return str(tmp_path / name)

    run = {"test": {"score": 0.5, "n": 2, "ci_low": 0.0, "ci_high": 1.0, "outcomes": [1.0, 0.0]},
           "devsplit": {"score": 0.5}, "dev": {"score": 0.5}, "estimate": {"score": 0.5},
           "estimate_gap": 0.0, "dev_gap": 0.0}
    old = part("old.json", {"default/auto": {**run, "devsplit": {"score": 0.25}}, "default/auto-morning": run,
                            "seed": {"score": 0.0, "n": 2, "outcomes": [0.0, 0.0]}})
    new = part("new.json", {"default/auto": run})
    out = tmp_path / "merged.json"
    assert fewshot.main(["--merge", old, new, "--rename", old, "default/auto", "default/before",
                         "--drop", "default/auto-morning", "--out", str(out)]) == 0
    merged = json.loads(out.read_text())
    methods = merged["results"][0]["methods"]
    assert sorted(methods) == ["default/auto", "default/before", "seed"]  # today's run not overwritten by the old one
    assert methods["default/before"]["devsplit"]["score"] == 0.25 and methods["default/auto"]["devsplit"]["score"] == 0.5
    assert merged["development_split"][0]["mean_difference"] == -0.25  # before - auto, read on the development split
    # a rename that matches nothing is a typo: one line, before anything is written
    import pytest

    for bad, says in (([str(tmp_path / "other.json"), "default/auto", "x"], "not one of the --merge files"),
                      ([old, "default/autoo", "x"], "old.json has no method 'default/autoo'")):
        with pytest.raises(SystemExit, match=says):
            fewshot.main(["--merge", old, new, "--rename", *bad, "--out", str(tmp_path / "bad.json")])
    assert not (tmp_path / "bad.json").exists()


def test_merge_compares_with_the_probe_only_when_the_parts_ran_on_the_probes_model(tmp_path, capsys):
    """The latest ceiling file is the embedded model's probe: parts run on another model (--model) are not held
    against it unless --ceiling names one."""
    import json

    run = {"test": {"score": 0.75, "n": 4, "ci_low": 0.3, "ci_high": 0.95, "outcomes": [1.0, 1.0, 1.0, 0.0]},
           "devsplit": {"score": 0.5}, "dev": {"score": 0.5}, "estimate": {"score": 0.5},
           "estimate_gap": 0.0, "dev_gap": 0.0}
    ceiling = tmp_path / "ceiling.json"
    ceiling.write_text(json.dumps({"tasks": {"sst2": {"few_mean": 0.5, "few_std": 0.1, "many": {"accuracy": 0.9}}}}))

    def part(name, extra):
        row = {"task": "sst2", "draw": 0, "test_rows": 4,
               "methods": {"default/auto": run, "seed": {"score": 0.25, "n": 4, "outcomes": [1.0, 0.0, 0.0, 0.0]}}}
        (tmp_path / name).write_text(json.dumps({"results": [row], **extra}))
        return str(tmp_path / name)

    other = part("other.json", {"model_spec": "/models/other.gguf"})
    embedded = part("embedded.json", {})  # parts from before --model ran on the embedded model
    for files, args, compared in (([other], [], False), ([other], ["--ceiling", str(ceiling)], True),
                                  ([embedded], ["--ceiling", str(ceiling)], True)):
        assert fewshot.main(["--merge", *files, *args, "--out", str(tmp_path / "m.json")]) == 0
        text = capsys.readouterr().out
        targets = json.loads((tmp_path / "m.json").read_text())["targets"]["auto"]
        assert ("vs_many_probe_mean" in targets) is compared
        assert ("vs probe on the same rows" in text) is compared
        assert ("no probe comparison" in text) is (not compared)
    assert abs(targets["vs_many_probe_mean"] - (0.75 - 0.9)) < 1e-12
