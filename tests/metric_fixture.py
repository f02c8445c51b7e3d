"""A user's own metric, importable as ``tests.metric_fixture:...`` (``--metric`` and config.json name it so)."""


def says_positive(prediction, example):
    """1 when the prompt answers 'positive', whatever the gold label: a metric no accuracy search would chase."""
    return 1.0 if prediction == "positive" else 0.0


def half(prediction, example):
    """Half credit for a right answer: scores between 0 and 1."""
    return 0.5 if prediction == example.output else 0.0


def out_of_range(prediction, example):
    return 2.0
