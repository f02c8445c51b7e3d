import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture(scope="session")
def tiny():
    from promptsearch.testing import tiny_model

    return tiny_model()


@pytest.fixture(scope="session")
def smollm():
    """The real embedded SmolLM2, loaded once per test session."""
    from promptsearch.model import FrozenModel

    return FrozenModel.load()


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTSEARCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def naive_loglik(model, context: str, continuation: str) -> float:
    """Reference: one sequence per forward pass, full logits, no batching, no caching."""
    import torch

    ctx, cont = model.encode(context), model.encode(continuation)
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logprobs = torch.log_softmax(model.model(ids).logits[0].float(), -1)
    return sum(logprobs[len(ctx) - 1 + i, t].item() for i, t in enumerate(cont))
