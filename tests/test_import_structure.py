"""The package's layers: every import, lazy ones included, points down (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "spacetorch"

#: lowest first; a module may import its own part and the parts of lower levels only
LEVELS: list[set[str]] = [
    {"_files", "_workers", "_pickle", "__version__", "configs"},
    {"data", "analyses", "models.positions"},
    {"stimuli", "plots", "losses", "models"},
    {"maps", "checkpoints", "features", "runs"},
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


def test_the_allowed_upward_import_is_still_there() -> None:
    assert ALLOWED_UP <= set(imports())  # drop it from ALLOWED_UP once it is gone
