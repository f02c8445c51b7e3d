"""promptsearch model path: where the embedded model lies (a llama.cpp or vLLM server needs the GGUF file)."""

from __future__ import annotations

import click

from .common import emit, reporting


@click.group()
def model():
    """The embedded SmolLM2-135M-Instruct model."""


@model.command()
@reporting
def path(as_json, quiet):
    """Print the embedded GGUF file's path (to serve it: python -m llama_cpp.server --model PATH) and where
    its dequantised copy is cached."""
    from ..models.local import _gguf_cache_dir, embedded_gguf

    gguf = embedded_gguf()
    cached = _gguf_cache_dir(gguf)
    out = {"gguf": str(gguf), "cache": str(cached), "cached": (cached / "model.safetensors").exists()}
    note = "" if out["cached"] else " (not yet written: the first in-process load writes it)"
    emit(as_json, out, str(gguf) if quiet else f"{gguf}\ncached fp32 copy: {cached}{note}")
