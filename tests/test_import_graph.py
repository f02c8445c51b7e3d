"""The package's import graph, read from the source (no imports run): no circle, nothing imports upward,
and a strategy reaches the core through public names only."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ((ROOT / "promptsearch", "promptsearch"), (ROOT / "strategies", "promptsearch.strategies"))

# What a layer may not import (module names without the "promptsearch." prefix; a name covers its submodules).
MODELS = ("models",)
SCORING = ("scoring",)
SEARCH = ("search", "multitask")
FORBIDDEN = {
    MODELS: ("scoring", "search", "multitask", "runner", "strategy", "strategies", "feedback", "cli"),
    SCORING: ("search", "multitask", "runner", "strategy", "strategies", "feedback", "cli"),
    SEARCH: ("runner", "strategies", "feedback", "cli"),
    ("results", "errors", "template", "candidate", "metrics"): ("scoring", "models", "search", "runner", "strategies"),
}


def modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for folder, package in PACKAGES:
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if package == "promptsearch" and parts[0] == "strategies":
                continue
            is_package = parts[-1] == "__init__"
            name = ".".join([package] + (parts[:-1] if is_package else parts))
            found[name] = (path, is_package)
    return found


MODULES = modules()


def imports(name: str, top_level_only: bool) -> set[str]:
    """The package's modules that ``name`` imports (at module level only, or anywhere)."""
    path, is_package = MODULES[name]
    tree = ast.parse(path.read_text())
    package = name if is_package else name.rsplit(".", 1)[0]
    out = set()
    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                out.add(sub if sub in MODULES else module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m in MODULES and m != name and m != "promptsearch"}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def short(name: str) -> str:
    return name.removeprefix("promptsearch.")


def within(name: str, prefixes) -> bool:
    return any(short(name) == p or short(name).startswith(p + ".") for p in prefixes)


def test_the_graph_is_read():
    graph = {m: imports(m, False) for m in MODULES}
    assert "promptsearch.models.hf_batching" in graph["promptsearch.models.local"]
    assert "promptsearch.scoring.calibration" in graph["promptsearch.scoring.scorer"]  # the scorer composes its layers
    assert "promptsearch.models.local" in graph["promptsearch.testing"]


def test_no_import_circle():
    assert circles({m: imports(m, True) for m in MODULES}) == []
    # also counting imports inside functions, but not a package importing its own submodules lazily
    graph = {m: {d for d in imports(m, False) if not d.startswith(m + ".")} for m in MODULES}
    assert circles(graph) == []


@pytest.mark.parametrize("layer", list(FORBIDDEN), ids=lambda layer: layer[0])
def test_no_upward_import(layer):
    bad = [(short(m), short(d)) for m in MODULES if within(m, layer)
           for d in imports(m, False) if within(d, FORBIDDEN[layer]) and not within(d, layer)]
    assert bad == []


def test_scoring_never_branches_on_the_kind_of_model():
    for path in (ROOT / "promptsearch" / "scoring").glob("*.py"):
        assert "white_box" not in path.read_text(), path.name
    assert "Scorer" not in (ROOT / "promptsearch" / "models" / "local.py").read_text()  # no model -> scorer callback


CORE_OBJECTS = ("scorer", "model", "ctx", "context", "task", "search", "store")  # what the core hands a strategy


def private_uses(path: Path) -> list[str]:
    """``_private`` names a strategy takes from the core: imported from it, read off a core module, or off an
    object the core handed it (its scorer, model, context, task...). Its own (``self._x``) and its sibling
    helper modules' names are its business."""
    tree = ast.parse(path.read_text())
    core_aliases, out = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("promptsearch"):
            if not node.module.startswith("promptsearch.strategies"):
                out += [f"import {a.name}" for a in node.names if a.name.startswith("_")]
                core_aliases.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Import):
            core_aliases.update(a.asname or a.name for a in node.names if a.name.startswith("promptsearch"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = ast.unparse(node.value)
            if owner in ("self", "cls"):
                continue
            if owner in core_aliases or any(word in owner.lower() for word in CORE_OBJECTS):
                out.append(ast.unparse(node))
    return out


def test_strategies_use_public_names_of_the_core_only():
    found = {path.name: private_uses(path) for path in sorted((ROOT / "strategies").glob("*.py"))}
    assert {name: uses for name, uses in found.items() if uses} == {}
