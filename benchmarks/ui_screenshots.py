"""Screenshots of every page of ``promptsearch ui`` over real runs, to look at (legible, nothing cut off).

Runs the embedded SmolLM2 (default chain) on a seeded slice of SST-2 and on one instruction-induction generation
task, unless those runs are already there; adds the SST-2 run's two best prompts to a registry as v1 and v2; serves
the folder on a loopback port and saves a full-page PNG of each page with Debian's Chromium.

    python benchmarks/ui_screenshots.py [--max-evals 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

OUT = common.result_path("ui_screenshots", suffix="")
TASKS = {"sst2": ("sst2", 64, 200), "antonyms": ("antonyms", 48, 100)}  # name: (data task, dev rows, test rows)


def make_runs(runs: Path, max_evals: int, threads: int) -> None:
    from promptsearch import runner
    from promptsearch.scoring import Scorer

    model = None
    for name, (data_task, dev, test) in TASKS.items():
        if (runs / name / "summary.json").exists():
            continue
        model = model or common.load_model(threads)
        task = common.load_bench_task(data_task, dev, test)
        config = runner.make_config(task=task.source, strategies=runner.default_strategies(None), schedule="bandit",
                                    budget={"max_evals": max_evals})
        started = time.time()
        summary = runner.run(config, runs / name, parts=(task, model, Scorer(model)))
        print(f"{name}: seed {summary['seed']['test']['score']:.3f} -> best {summary['best']['test']['score']:.3f} "
              f"on test, {time.time() - started:.0f} s", flush=True)


def fill_registry(runs: Path, registry: Path, threads: int) -> None:
    """The SST-2 run's runner-up as v1 and its winner as v2 (the runner-up is scored on test here: runs log
    test results for the winner and the seed only)."""
    from promptsearch.export import export_run
    from promptsearch.registry import Registry
    from promptsearch.scoring import Scorer

    data_task, dev, test = TASKS["sst2"]
    model = common.load_model(threads)
    parts = (common.load_bench_task(data_task, dev, test), model, Scorer(model))
    reg = Registry(registry)
    with tempfile.TemporaryDirectory() as tmp:
        for rank in (2, 1):
            out = Path(tmp) / f"rank{rank}.json"
            export_run(runs / "sst2", out, rank=rank, parts=parts)
            reg.add("sst2-sentiment", out.read_text(encoding="utf-8"))


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)


def shoot(driver, url: str, path: Path, width: int = 1400, max_height: int = 8000) -> None:
    """The whole page: the viewport is set to the page's own size through the DevTools protocol (a window's
    size includes the browser's frame, so sizing the window cuts the bottom off)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1,
                                                                 "mobile": False})
    driver.get(url)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": min(height, max_height),
                                                                 "deviceScaleFactor": 1, "mobile": False})
    time.sleep(0.3)
    driver.save_screenshot(str(path))
    print(f"{path.name}: {url} ({height} px tall)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-evals", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    runs = args.out / "runs"
    make_runs(runs, args.max_evals, args.threads)

    from promptsearch.store import RunStore
    from promptsearch.ui.server import Background

    with tempfile.TemporaryDirectory() as tmp:
        registry = Path(tmp) / "registry.db"
        fill_registry(runs, registry, args.threads)
        server = Background([runs], registry=registry).start()
        driver = browser()
        try:
            sst2 = RunStore(runs / "sst2").summary
            gen = RunStore(runs / "antonyms").summary
            pages = {
                "runs": "/",
                "run-sst2": "/run/sst2",
                "prompt-sst2-errors": f"/run/sst2/prompt/{sst2['best']['id']}?errors=1",
                "compare-sst2": f"/run/sst2/compare?a={sst2['seed']['id']}&b={sst2['best']['id']}",
                "rate-sst2": "/run/sst2/rate",
                "run-antonyms": "/run/antonyms",
                "prompt-antonyms-errors": f"/run/antonyms/prompt/{gen['best']['id']}?errors=1",
                "registry": "/registry",
                "registry-compare": "/registry/compare?a=sst2-sentiment@v1&b=sst2-sentiment@v2",
            }
            for name, path in pages.items():
                shoot(driver, server.url + path, args.out / f"{name}.png")
        finally:
            driver.quit()
            server.stop()


if __name__ == "__main__":
    main()
