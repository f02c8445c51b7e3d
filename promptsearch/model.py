"""Kept so ``from promptsearch.model import FrozenModel`` still works: the models live in promptsearch/models/."""

from .models.local import (  # noqa: F401
    DTYPES, EMBEDDED_FILE, EMBEDDED_PACKAGE, FrozenModel, _start_ids, cache_root, embedded_gguf, pick_device, resolve,
)
