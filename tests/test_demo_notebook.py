"""demo.ipynb runs top to bottom on a small project-made checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from model_helpers import SMALL_IMAGE_SIZE

NOTEBOOK = Path(__file__).resolve().parents[1] / "demo.ipynb"


@pytest.mark.slow
def test_demo_notebook_runs(small_model_files: tuple[Path, Path], tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "commit it without outputs"
    parameters = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1
    checkpoint, positions = small_model_files
    parameters[0].source = "\n".join(
        [
            f"checkpoint = {str(checkpoint)!r}",
            f"positions_dir = {str(positions)!r}",
            "arch = 'resnet18'",
            f"image_size = {SMALL_IMAGE_SIZE}",
            "spatial_frequencies = [4.0, 8.0, 16.0]",
            "exclude_border = 1  # at 64 px every layer2.0 unit's receptive field touches the border",
            "figures_dir = 'figures'",
        ]
    )
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    for name in ["response_map_layer2.0.png", "v1_layer2.0.png"]:
        assert (tmp_path / "figures" / name).stat().st_size > 10_000
    text = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "layer2.0: responses (1, 8192), coordinates (8192, 2)" in text
    assert "pinwheels" in text and "smoothness" in text
    assert len(json.dumps([cell.get("outputs", []) for cell in notebook.cells])) < 2_000_000  # outputs stay small
