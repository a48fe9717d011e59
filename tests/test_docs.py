"""The README's Python example runs as printed, and every page of docs/ is in the site's navigation."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_the_readme_python_example_runs_and_trains_one_step() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Python in 15 lines", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    assert len(code.strip().splitlines()) <= 17
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102  (our own README)
    assert set(namespace["per_layer"]) == {"layer1_0", "layer1_1", "layer2_0", "layer2_1", "layer3_0", "layer3_1", "layer4_0", "layer4_1"}
    assert all(0.0 <= float(v) <= 1.0 for v in namespace["per_layer"].values())
    assert namespace["loss"].requires_grad and all(p.grad is not None for p in namespace["trunk"].parameters())


def test_every_docs_page_is_in_the_navigation() -> None:
    def pages(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [p for value in node.values() for p in pages(value)]
        if isinstance(node, list):
            return [p for item in node for p in pages(item)]
        return []

    nav = pages(yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"])
    on_disk = sorted(str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md"))
    assert sorted(nav) == on_disk
