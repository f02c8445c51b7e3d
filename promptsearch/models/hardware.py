"""Which dtype a local model computes in when the user says ``--dtype auto`` (the default).

bf16 is the fast path only where the CPU has bf16 arithmetic units: AMX (``amx_bf16``, Intel Sapphire Rapids
and later) or the AVX-512 bf16 dot products (``avx512_bf16``: AMD Zen 4 and later, Intel Cooper Lake). On an AMX
CPU SmolLM2 scored SST-2 2.6x faster in bf16 than in fp32 with 119 of 120 predictions equal (0.992, 95% CI
[0.954, 0.999]); on an AMD EPYC with ``avx512_bf16`` and no AMX, 2.95x faster with 592 of 600 equal (0.987
[0.974, 0.993]; benchmarks/studies/dtype_probe.py, the development split of SST-2, TREC and AG News, plain and
with nearest demonstrations). On a CPU with neither, bf16 ran at 0.67x fp32's speed (torch then emulates it).
GPUs with bf16 (Ampere and later) are fast in it too. So the choice is a capability check, not a guess: no
timing at start-up, and the same answer on every run of one machine.
"""

from __future__ import annotations

from pathlib import Path

DTYPES = ("auto", "float32", "bfloat16", "float16")
# CPU flags (/proc/cpuinfo) of bf16 arithmetic units, each with the words a run's summary uses for it
BF16_UNITS = {"amx_bf16": "the CPU has AMX (amx_bf16)",
              "avx512_bf16": "the CPU has AVX-512 bf16 dot products (avx512_bf16)"}


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo cannot be read."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def auto_dtype(device: str, flags: set[str] | None = None) -> tuple[str, str]:
    """(dtype, why) for ``device`` ("cpu", "cuda", "cuda:N")."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_bf16_supported():
            return "bfloat16", "the GPU computes bf16 natively"
        return "float32", "the GPU has no native bf16"
    flags = cpu_flags() if flags is None else flags
    for flag, why in BF16_UNITS.items():
        if flag in flags:
            return "bfloat16", why
    return "float32", "the CPU has no bf16 units (amx_bf16, avx512_bf16), where bf16 is slower than fp32"


def resolve_dtype(dtype: str, device: str) -> tuple[str, str]:
    """The dtype to load in and why: ``auto`` is decided by the hardware, anything else is the user's."""
    if dtype == "auto":
        return auto_dtype(device)
    return dtype, "asked for"


DEFAULT_DTYPE = "auto"  # the one place the default lives: the CLI's --dtype and runner.DEFAULTS both read it


def name_of(torch_dtype) -> str:
    """"bfloat16" for torch.bfloat16: the spelling configs, summaries and artifacts use."""
    return str(torch_dtype).removeprefix("torch.")


def host_dtype(dtype: str, device: str, flags: set[str] | None = None) -> tuple[str, str | None]:
    """The dtype to score a recorded artifact or run with on this host, and a one-line note when it is
    not the recorded one. Reproducing scores matters more than speed here, so a dtype the host merely
    computes slowly is kept (bf16 without AMX, float16 on a CPU: torch runs both, just slower); only one
    the device cannot compute natively at all is replaced by float32, the dtype every device has."""
    if dtype == "auto":
        return auto_dtype(device, flags)[0], None
    if device.startswith("cuda") and dtype == "bfloat16":
        import torch

        if not torch.cuda.is_bf16_supported():
            return "float32", "this GPU has no bf16: scoring in float32 instead of the recorded bfloat16"
    return dtype, None
