"""The documentation's code runs: every fenced shell and Python block of the pages, or a stated reason why not.

How a block is treated (docs/testing-docs.md says the same for people writing pages):

- Pages: ``docs/*.md`` and ``benchmarks/RESULTS.md`` (``DOC_FILES``). Languages checked: bash, sh, console,
  python; other fences (toml, json, text, unlabelled) are not run.
- ``<!-- not-run: REASON -->`` on the line before the fence skips the block; REASON must say why.
- Shell (bash, sh): one logical line at a time (backslash continuations joined). A line that starts with
  ``promptsearch`` runs in this process through click's test runner on the tiny random model
  (``promptsearch.testing.tiny_model``): ``--model TINY`` is added where the command takes ``--model`` and none
  is given, and ``run``/``refine`` get ``--max-evals`` of at most 100 (not with ``--resume``, which keeps the
  run's own). ``> FILE`` writes the command's stdout to FILE. It must exit 0, or the status its comment names
  (``# exit 1``). Lines that start with a plain file command (``mkdir``, ``cat``, ``cp``, ...; heredocs
  included) run through bash; ``export NAME=VALUE`` sets the environment for the rest of the page. Any other
  line (python, pip, make, curl, ...) fails the test: run it here or mark the block.
- Console: lines starting ``$ `` are commands, as above; the rest is output and is not compared.
- Python: executed in a fresh namespace, pointed at the tiny model as commands are: ``ps.load_model()`` with no
  model loads the tiny one, and ``max_evals=N`` is cut to 100 (the real model's 2,000 evaluations took 11
  minutes of a float32 host's suite; tests/test_integration.py runs the real model).
- Each page runs in its own empty folder, blocks in order, with its own model cache and prompt registry, so a
  later block can use what an earlier one wrote (``runs/sst2``, ``sst2.json``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "benchmarks" / "RESULTS.md", ROOT / "README.md"]
CHECKED = {"bash", "sh", "shell", "console", "python", "py", "python3"}
NOT_RUN = re.compile(r"<!--\s*not-run:(.*?)-->", re.DOTALL)
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
FILE_COMMANDS = {"mkdir", "cat", "cp", "mv", "ls", "echo", "printf", "head", "tail", "wc", "sed", "rm", "touch", "test"}
MAX_EVALS = 100


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        path = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{path}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Fenced blocks of a Markdown file, with the not-run marker on the line before each (blank lines allowed)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent, start = m["fence"], len(m["indent"]), i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1
        before = start - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        marker = NOT_RUN.search(lines[before]) if before >= 0 else None
        found.append(Block(path, start + 1, m["lang"].lower(), "\n".join(body), marker[1].strip() if marker else None))
    return found


def commands(block: Block) -> list[tuple[int, str]]:
    """The block's shell commands as (line offset, logical line): continuations joined, heredocs kept whole,
    console output dropped, blank and comment-only lines skipped."""
    raw = block.code.splitlines()
    out, i = [], 0
    while i < len(raw):
        line, at = raw[i], i
        i += 1
        if block.lang == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        while line.rstrip().endswith("\\") and i < len(raw):
            nxt = raw[i][2:] if block.lang == "console" and raw[i].startswith("> ") else raw[i]
            line = line.rstrip()[:-1].rstrip() + " " + nxt.strip()
            i += 1
        heredoc = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if heredoc:
            while i < len(raw):
                line += "\n" + raw[i]
                i += 1
                if raw[i - 1].strip() == heredoc[1]:
                    break
        if line.strip() and not line.strip().startswith("#"):
            out.append((at, line))
    return out


def expected_status(line: str) -> int:
    m = re.search(r"#.*\bexit (\d+)\b", line.split("\n")[0])
    return int(m[1]) if m else 0


def click_command(main, args: list[str]):
    cmd = main
    for token in args:
        sub = getattr(cmd, "commands", {}).get(token)
        if sub is None:
            break
        cmd = sub
    return cmd


def adapt(main, args: list[str], tiny_dir: str) -> list[str]:
    """Point a documented command at the tiny model and a small budget (see the module docstring)."""
    cmd = click_command(main, args)
    options = {o for p in getattr(cmd, "params", []) for o in getattr(p, "opts", [])}
    args = list(args)
    if "--help" in args:
        return args
    if "--model" in options and "--model" not in args and "--resume" not in args:
        args += ["--model", tiny_dir]
    if "--max-evals" in options and "--resume" not in args:
        if "--max-evals" in args:
            k = args.index("--max-evals") + 1
            args[k] = str(min(int(args[k]), MAX_EVALS))
        else:
            args += ["--max-evals", str(MAX_EVALS)]
    return args


def adapt_python(code: str, tiny_dir: str) -> str:
    """A documented Python block pointed at the tiny model and a small budget (see the module docstring)."""
    code = code.replace("ps.load_model()", f"ps.load_model({tiny_dir!r}, device='cpu')")
    return re.sub(r"max_evals=(\d+)", lambda m: f"max_evals={min(int(m.group(1)), MAX_EVALS)}", code)


def run_promptsearch(line: str, block: Block, tiny_dir: str, cwd: Path) -> None:
    from click.testing import CliRunner

    from promptsearch.cli import main

    args = shlex.split(line, comments=True)
    redirect = None
    if ">" in args:
        k = args.index(">")
        redirect, args = args[k + 1], args[:k]
    assert args[0] == "promptsearch"
    args = adapt(main, args[1:], tiny_dir)
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    want = expected_status(line)
    if result.exit_code != want:
        detail = result.output[-3000:]
        if result.exception and not isinstance(result.exception, SystemExit):
            import traceback

            detail += "".join(traceback.format_exception(result.exception))[-3000:]
        pytest.fail(f"{block.where}: `{line.strip()}` exited {result.exit_code} (expected {want}):\n{detail}")
    if redirect:
        (cwd / redirect).write_text(result.stdout)


def run_shell(line: str, block: Block, cwd: Path) -> None:
    first = line.split()[0]
    if first == "export":
        for assignment in shlex.split(line, comments=True)[1:]:
            name, _, value = assignment.partition("=")
            os.environ[name] = os.path.expandvars(value)
        return
    if first not in FILE_COMMANDS:
        pytest.fail(f"{block.where}: `{line.strip()}` cannot run in the docs test; run it with promptsearch or a file "
                    f"command, or mark the block <!-- not-run: REASON -->")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", line], cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False)
    if done.returncode != expected_status(line):
        pytest.fail(f"{block.where}: `{line.strip()}` exited {done.returncode}:\n{done.stdout}{done.stderr}")


def run_block(block: Block, tiny_dir: str, cwd: Path) -> None:
    if block.lang.startswith("py"):
        code = compile(adapt_python(block.code, tiny_dir), block.where, "exec")
        exec(code, {"__name__": "__docs__"})  # noqa: S102 - the docs' own example code
        return
    for _, line in commands(block):
        if line.lstrip().startswith("promptsearch"):
            run_promptsearch(line, block, tiny_dir, cwd)
        else:
            run_shell(line, block, cwd)


def checked(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.lang in CHECKED]


def test_every_page_is_found():
    assert len(DOC_FILES) > 10 and all(p.exists() for p in DOC_FILES)


def test_not_run_markers_give_a_reason():
    for path in DOC_FILES:
        for block in checked(path):
            if block.not_run is not None:
                assert len(block.not_run) >= 8, f"{block.where}: say why the block is not run"


def test_user_pages_do_not_send_users_to_the_workspace_data():
    """Users find data sets with `promptsearch tasks import` or the bundled task; only benchmarks read ../shared."""
    for path in sorted((ROOT / "docs").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text, f"{path.relative_to(ROOT)} mentions ../shared"


def test_the_rules_on_a_page(tmp_path, tiny_dir, monkeypatch):
    """A marked block is skipped, file commands and promptsearch run, and an unmarked block that cannot run fails."""
    monkeypatch.chdir(tmp_path)
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- not-run: needs a GPU for this example -->\n```bash\npython train.py --gpu\n```\n\n"
        "```console\n$ mkdir -p out \\\n>   && echo hi > out/a.txt\nhi\n$ promptsearch tasks --json > tasks.json  # list\n```\n\n"
        "```sh\npip install something\n```\n\n"
        "```toml\nnot = 'checked'\n```\n", encoding="utf-8")
    found = blocks(page)
    assert [(b.lang, b.not_run) for b in found] == [("bash", "needs a GPU for this example"), ("console", None),
                                                      ("sh", None), ("toml", None)]
    assert [line for _, line in commands(found[1])] == ["mkdir -p out && echo hi > out/a.txt",
                                                        "promptsearch tasks --json > tasks.json  # list"]
    run_block(found[1], tiny_dir, tmp_path)
    assert (tmp_path / "out" / "a.txt").read_text() == "hi\n" and "sst2-mini" in (tmp_path / "tasks.json").read_text()
    with pytest.raises(pytest.fail.Exception, match="cannot run in the docs test"):
        run_block(found[2], tiny_dir, tmp_path)


def test_commands_are_pointed_at_the_tiny_model():
    from promptsearch.cli import main

    assert adapt(main, ["run", "--max-evals", "3000"], "TINY") == ["run", "--max-evals", "100", "--model", "TINY"]
    assert adapt(main, ["run", "--resume", "runs/a"], "TINY") == ["run", "--resume", "runs/a"]
    assert adapt(main, ["eval", "--model", "m"], "TINY") == ["eval", "--model", "m"]
    assert adapt(main, ["prompts", "list"], "TINY") == ["prompts", "list"]
    assert adapt(main, ["run", "--help"], "TINY") == ["run", "--help"]
    code = "m = ps.load_model()\nr = ps.search(t, m, budget=ps.Budget(max_evals=2000))\nq = ps.Budget(max_evals=50)"
    assert adapt_python(code, "TINY") == ("m = ps.load_model('TINY', device='cpu')\n"
                                          "r = ps.search(t, m, budget=ps.Budget(max_evals=100))\nq = ps.Budget(max_evals=50)")


@pytest.mark.parametrize("path", [p for p in DOC_FILES if any(b.not_run is None for b in checked(p))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_page_code_runs(path, tiny_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, value in {"PROMPTSEARCH_CACHE": tmp_path / ".cache", "PROMPTSEARCH_REGISTRY": tmp_path / "registry.db",
                        "XDG_DATA_HOME": tmp_path / ".local", "HF_HUB_OFFLINE": "1"}.items():
        monkeypatch.setenv(name, str(value))
    saved = dict(os.environ)
    try:
        for block in checked(path):
            if block.not_run is None:
                run_block(block, tiny_dir, tmp_path)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_mkdocs_build_strict(tmp_path):
    """The site builds with no warning: a broken link or anchor, a page left out of the nav, a CLI reference or a
    docstring that no longer resolves. Skipped only where mkdocs is not installed and CI is unset."""
    import importlib.util

    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        if os.environ.get("CI"):
            pytest.fail("mkdocs is not installed in CI (pip install -e '.[docs]')")
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "cli" / "index.html").exists()
    assert "promptsearch run" in (tmp_path / "site" / "cli" / "index.html").read_text()
