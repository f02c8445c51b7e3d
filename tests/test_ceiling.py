"""benchmarks/ceiling.py: the probe's fit-and-choose path on synthetic features, and the feature cache on the tiny model."""

import numpy as np
import pytest

from benchmarks import ceiling


def _separable(rows: int, seed: int, classes: int = 2, layers: int = 2, dim: int = 10):
    """Features where only the last layer holds the label (a margin of 12 along one direction per class)."""
    rng = np.random.default_rng(seed)
    y = np.arange(rows) % classes
    x = rng.normal(size=(rows, layers, dim))
    x[np.arange(rows), -1, y] += 12.0
    return x, y


def test_probe_is_perfect_on_separable_features_and_picks_the_layer_that_holds_the_label():
    x, y = _separable(64, seed=0, classes=4)  # 16 rows a class, as a few-label draw has
    fitted = ceiling.fit_probe(x, y, layer_names=(15, 30))
    assert fitted["layer"] == 30 and fitted["folds"] == 5 and fitted["cv_accuracy"] == 1.0
    x_test, y_test = _separable(400, seed=1, classes=4)
    result = ceiling.score(fitted, x_test, y_test)
    assert result["accuracy"] == 1.0 and result["n"] == 400 and result["ci95"][0] > 0.98


def test_probe_is_at_chance_on_shuffled_labels():
    x, y = _separable(64, seed=0)
    shuffled = np.random.default_rng(2).permutation(y)
    fitted = ceiling.fit_probe(x, shuffled)
    x_test, y_test = _separable(2000, seed=3)
    assert abs(ceiling.score(fitted, x_test, y_test)["accuracy"] - 0.5) < 0.1


def test_folds_follow_the_smallest_class():
    x, y = _separable(12, seed=0)
    y = np.array([0] * 9 + [1] * 3)
    assert ceiling.fit_probe(x, y)["folds"] == 3


def test_feature_cache_round_trips_and_batching_does_not_change_a_row(tiny, tmp_path, monkeypatch):
    texts = ["a great film", "bad", "the plot was thin and the acting worse", "ok"]
    prompt = "Review: {input}\nSentiment:"
    layers = ceiling.probe_layers(tiny)
    assert layers == (1, 2)  # the tiny model's 2 layers: middle, final
    batched = ceiling.features(tiny, prompt, texts, cache=tmp_path)
    assert batched.shape == (4, 2, tiny.model.config.hidden_size) and batched.dtype == np.float32
    assert len(list(tmp_path.glob("*.npy"))) == 4
    alone = ceiling.features(tiny, prompt, texts, cache=tmp_path / "alone", batch_rows=1)
    np.testing.assert_allclose(batched, alone, atol=1e-5)  # right padding never reaches a real token

    def no_forward(*a, **k):
        raise AssertionError("a cached row ran the model")

    monkeypatch.setattr(tiny.model, "forward", no_forward)
    np.testing.assert_array_equal(ceiling.features(tiny, prompt, texts[::-1], cache=tmp_path), batched[::-1])
    with pytest.raises(AssertionError, match="cached row"):  # another prompt is another key
        ceiling.features(tiny, "Text: {input}\nLabel:", texts[:1], cache=tmp_path)
