"""The package's layers: every import, lazy ones included, points down (docs/architecture.md)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "spacetorch"

#: lowest first; a module may import its own part and the parts of lower levels only
LEVELS: list[set[str]] = [
    {"_files", "_workers", "_pickle", "__version__", "configs"},
    {"data", "analyses", "models.positions"},
    {"stimuli", "plots", "losses", "models"},
    {"maps", "checkpoints", "features", "runs", "evaluation"},
    {"methods"},
    {"panels"},
    {"vissl"},
    {"cli"},
    {"__main__"},
    {""},  # spacetorch/__init__.py, the package's face: with timm loaded it registers the model families
]
#: the one import that points up: the earlier path of two model-side functions, resolved on use
ALLOWED_UP = {("spacetorch.models.positions", "spacetorch.models")}  # ... import sheets


def part(module: str) -> str:
    names = module.split(".")[1:]
    if names[:2] == ["models", "positions"]:
        return "models.positions"
    return names[0] if names else ""


def level(module: str) -> int:
    return next(i for i, parts in enumerate(LEVELS) if part(module) in parts)


def imports() -> list[tuple[str, str]]:
    """``(importer, imported)`` for every spacetorch-to-spacetorch import in the package."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"spacetorch.{a.name}" for a in node.names] if node.module == "spacetorch" else [node.module]
            else:
                targets = []
            found += [(module, target) for target in targets if target.startswith("spacetorch.")]
    return found


def test_every_part_of_the_package_has_a_level() -> None:
    parts = {part(m) for pair in imports() for m in pair}
    assert parts <= set().union(*LEVELS), parts - set().union(*LEVELS)


def test_no_module_imports_a_module_above_it() -> None:
    found = imports()
    assert len(found) > 100  # the walk sees the package
    upward = sorted(
        (a, b) for a, b in found
        if (level(b) > level(a) or (level(b) == level(a) and part(a) != part(b))) and (a, b) not in ALLOWED_UP
    )
    assert upward == [], upward


def _modules() -> set[str]:
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__") for p in PACKAGE.rglob("*.py")}


def import_circles(edges: list[tuple[str, str]], modules: set[str]) -> list[list[str]]:
    """The groups of modules that import each other, directly or around a circle (the strongly
    connected components of more than one module); ``from a.b import c`` counts as importing
    ``a.b.c`` if that is a module, else ``a.b``."""
    graph: dict[str, set[str]] = {}
    for importer, imported in edges:
        while imported not in modules and "." in imported:
            imported = imported.rsplit(".", 1)[0]
        if imported != importer:
            graph.setdefault(importer, set()).add(imported)
    reach = {node: set() for node in graph}
    for node in graph:  # the modules each one leads to (a few hundred modules: a walk from each is enough)
        todo = list(graph[node])
        while todo:
            nxt = todo.pop()
            if nxt not in reach[node]:
                reach[node].add(nxt)
                todo += graph.get(nxt, ())
    circles = {frozenset({node} | {o for o in reach[node] if node in reach.get(o, ())}) for node in graph if node in reach[node]}
    return sorted(sorted(circle) for circle in circles)


def test_no_modules_import_each_other() -> None:
    assert import_circles(imports(), _modules()) == []


def test_the_circle_check_finds_a_circle() -> None:
    edges = [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d"), ("p.e", "p")]
    assert import_circles(edges, {"p", "p.a", "p.b", "p.c", "p.d", "p.e"}) == [["p.a", "p.b", "p.c"]]
    assert import_circles([("p", "p.x"), ("p.x", "p")], {"p", "p.x"}) == [["p", "p.x"]], "a package and its module"


def test_the_allowed_upward_import_is_still_there() -> None:
    assert ALLOWED_UP <= set(imports())  # drop it from ALLOWED_UP once it is gone


#: calls that delete, move or replace files: only spacetorch._files makes them (a guarded writer
#: that checks what it removes is spacetorch's own, never what the user put there)
DESTRUCTIVE = {("shutil", "rmtree"), ("shutil", "move"), ("os", "replace"), ("os", "rename"), ("os", "renames"),
               ("os", "removedirs")}


def destructive_calls() -> list[str]:
    """``module:line name`` of every ``shutil.rmtree`` / ``shutil.move`` / ``os.replace`` /
    ``os.rename`` call, and every ``Path.rename`` / ``Path.replace`` / ``rmtree`` / ``move`` imported
    by name, outside ``spacetorch._files``."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_files.py" and path.parent == PACKAGE:
            continue
        tree = ast.parse(path.read_text())
        by_name = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                   and node.module in ("shutil", "os") for alias in node.names if (node.module, alias.name) in DESTRUCTIVE}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = None
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and (func.value.id, func.attr) in DESTRUCTIVE:
                name = f"{func.value.id}.{func.attr}"
            elif isinstance(func, ast.Name) and func.id in by_name:
                name = func.id
            elif isinstance(func, ast.Attribute) and func.attr == "rename":  # Path.rename (str has none)
                name = ".rename"
            if name is not None:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {name}")
    return found


def test_only_the_guarded_writer_deletes_moves_or_replaces_files() -> None:
    assert destructive_calls() == []


def test_the_structure_check_finds_each_kind_of_call(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "spacetorch"
    package.mkdir()
    (package / "_files.py").write_text("import shutil\nshutil.rmtree('allowed here')\n")
    (package / "bad.py").write_text("import os, shutil\nfrom shutil import rmtree as r\nfrom pathlib import Path\n"
                                    "shutil.rmtree('a')\nshutil.move('a', 'b')\nos.replace('a', 'b')\nos.rename('a', 'b')\n"
                                    "r('a')\nPath('a').rename('b')\n'text'.replace('a', 'b')\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    lines = sorted(destructive_calls(), key=lambda text: int(text.split(":")[1].split()[0]))
    assert [line.split(" ", 1)[1] for line in lines] == ["shutil.rmtree", "shutil.move", "os.replace", "os.rename", "r", ".rename"]


def test_the_generic_model_modules_import_no_family() -> None:
    """Checkpoints, positions, capture and the registry work by name: a family registers its
    models and its weight layouts itself (the registry only imports the families' package to
    load them)."""
    generic = [(a, b) for a, b in imports() if a.startswith("spacetorch.models.") and not a.startswith("spacetorch.models.families")
               and b.startswith("spacetorch.models.families")]
    assert generic == [], generic
