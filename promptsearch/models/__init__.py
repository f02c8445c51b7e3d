"""Models behind one interface (base.py): in process (local.py) or served over HTTP (served.py)."""

from __future__ import annotations

import os

from .base import Capabilities, Model, require_chat_template, require_white_box  # noqa: F401
from .hardware import DEFAULT_DTYPE


def is_served(spec: str | None) -> bool:
    return bool(spec) and str(spec).split(",")[0].strip().lower().startswith(("http://", "https://"))


def load_model(spec: str | None = None, device: str = "auto", dtype: str = DEFAULT_DTYPE, model_name: str | None = None,
               concurrency: int = 4, scoring: str = "auto", timeout: float = 120.0, cache: bool = True) -> Model:
    """The model a spec names: ``http(s)://HOST:PORT/v1`` (several, comma-separated, are replicas of one
    model) connects to a server; anything else (None, a directory, a .gguf file) loads in process."""
    from ..errors import PromptSearchError
    from ..limits import check_given
    from .dialects import ALL

    scorings = ("auto", *ALL)
    check_given(concurrency=concurrency, timeout=timeout)  # the rules of --concurrency and --timeout (limits.py)
    if scoring not in scorings:
        raise PromptSearchError(f"scoring {scoring!r:.40}: use one of {', '.join(scorings)}")
    if spec is not None and not isinstance(spec, (str, os.PathLike)):
        raise PromptSearchError(f"model {spec!r:.40}: a path, a .gguf file or http(s)://HOST:PORT/v1")
    if is_served(spec):
        from .served import ServedModel
        from .urls import split_urls

        model = ServedModel.connect(split_urls(spec), model_name=model_name,
                                    concurrency=concurrency, scoring=scoring, timeout=timeout, use_cache=cache)
    else:
        from .local import FrozenModel

        if model_name:
            raise PromptSearchError("--model-name picks a model on a server; it needs --model http://HOST:PORT/v1")
        model = FrozenModel.load(spec, device=device, dtype=dtype)
    # kept on the model, so a run's config names it and --resume, export or an artifact's check can load it again
    model.spec = str(spec) if spec is not None else None
    return model
