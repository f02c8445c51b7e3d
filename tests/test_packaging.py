"""How promptsearch installs: built-ins under promptsearch.strategies, never a top-level ``strategies``;
third-party strategies register through the same entry-point group."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
BUILTINS = {"ape", "autoprompt", "clarify", "ensemble", "evolution", "refine", "soft-prompt", "templates"}


def test_pyproject_lists_every_package_folder():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {"promptsearch." + ".".join(p.parent.relative_to(ROOT / "promptsearch").parts)
               for p in (ROOT / "promptsearch").rglob("__init__.py")}
    folders = {f.rstrip(".") for f in folders} | {"promptsearch.strategies." + ".".join(p.parent.relative_to(ROOT / "strategies").parts)
                                                  for p in (ROOT / "strategies").rglob("__init__.py")}
    folders = {f.rstrip(".") for f in folders}
    assert set(config["packages"]) == folders
    assert config["package-dir"]["promptsearch.strategies"] == "strategies"
    points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["promptsearch.strategies"]
    assert set(points) == BUILTINS and all(v.startswith("promptsearch.strategies.") for v in points.values())


def _run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh virtual environment with promptsearch installed from a wheel built from this checkout
    (dependencies come from the surrounding environment, so nothing is downloaded)."""
    tmp = tmp_path_factory.mktemp("venv")
    wheels = tmp / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)])
    assert built.returncode == 0, built.stderr
    env_dir = tmp / "env"
    assert _run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)]).returncode == 0
    python = env_dir / "bin" / "python"
    wheel = next(wheels.glob("promptsearch-*.whl"))
    installed = _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)])
    assert installed.returncode == 0, installed.stderr
    return {"python": python, "wheel": wheel, "dir": tmp}


@pytest.mark.integration
def test_wheel_installs_strategies_under_promptsearch_only(venv):
    names = zipfile.ZipFile(venv["wheel"]).namelist()
    assert "promptsearch/strategies/templates.py" in names
    assert "promptsearch/tasks/sst2-mini/test.jsonl" in names
    assert {"promptsearch/ui/templates/run.html", "promptsearch/ui/static/ui.css", "promptsearch/ui/static/ui.js"} <= set(names)
    assert not [n for n in names if n.startswith("strategies/")]


@pytest.mark.integration
def test_installed_builtins_ignore_a_strategies_folder_in_the_working_directory(venv):
    work = venv["dir"] / "work"
    (work / "strategies").mkdir(parents=True)
    (work / "strategies" / "__init__.py").write_text("raise ImportError('the user\\'s own strategies folder')\n")
    python = str(venv["python"])
    env = {**os.environ, "PYTHONPATH": ""}
    assert _run([python, "-c", "import strategies"], cwd=venv["dir"], env=env).returncode != 0
    listed = _run([python, "-m", "promptsearch", "strategies", "--json"], cwd=work, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)["strategies"]}
    assert set(rows) == BUILTINS
    assert all(r["class"].startswith("promptsearch.strategies.") for r in rows.values())
    where = _run([python, "-c", "import promptsearch.strategies.templates as t; print(t.__file__)"], cwd=work, env=env)
    assert "site-packages" in where.stdout and str(ROOT) not in where.stdout


@pytest.mark.integration
def test_a_third_party_plugin_registers_through_the_entry_point_group(venv):
    plugin = venv["dir"] / "plugin"
    (plugin / "my_strategy").mkdir(parents=True)
    (plugin / "my_strategy" / "__init__.py").write_text(
        "from promptsearch.strategy import Strategy\n\n\n"
        "class Echo(Strategy):\n    name = 'echo'\n    description = 'proposes nothing'\n\n"
        "    def propose(self, context, n):\n        return []\n")
    (plugin / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "my-strategy"\nversion = "0.1"\n\n'
        '[project.entry-points."promptsearch.strategies"]\necho = "my_strategy:Echo"\n')
    python = str(venv["python"])
    # Built with this interpreter's setuptools (a new venv's own is too old to build wheels), installed in the venv.
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(plugin / "dist"), str(plugin)])
    assert built.returncode == 0, built.stderr
    done = _run([python, "-m", "pip", "install", "-q", "--no-deps", str(next((plugin / "dist").glob("*.whl")))])
    assert done.returncode == 0, done.stderr
    listed = _run([python, "-m", "promptsearch", "strategies", "--json"], cwd=venv["dir"])
    rows = {r["name"]: r for r in json.loads(listed.stdout)["strategies"]}
    assert rows["echo"]["description"] == "proposes nothing" and BUILTINS <= set(rows)
